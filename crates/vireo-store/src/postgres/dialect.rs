//! PostgreSQL's SQL where it differs from SQLite's, for the roles whose differences are only
//! SQL text (and one step, telling a new secret from a replaced one).

use super::PgStore;
use crate::roles::catalog::CatalogDialect;

impl CatalogDialect for PgStore {
    const FUNCTION_QUOTA: &'static str =
        "SELECT (SELECT COUNT(*) FROM functions WHERE namespace = $1),
        (SELECT (quotas::jsonb ->> 'max_functions')::BIGINT FROM namespaces WHERE name = $1)";
    const NEXT_VERSION: &'static str = "SELECT COALESCE(
        (SELECT MAX(version) FROM versions WHERE namespace = $1 AND function = $2), 0) + 1
    FROM functions WHERE namespace = $1 AND name = $2 FOR NO KEY UPDATE";
}
