//! SQLite's SQL where it differs from PostgreSQL's, for the roles whose differences are only
//! SQL text (and one step, telling a new secret from a replaced one).

use super::SqliteStore;
use crate::roles::catalog::CatalogDialect;

impl CatalogDialect for SqliteStore {
    const FUNCTION_QUOTA: &'static str =
        "SELECT (SELECT COUNT(*) FROM functions WHERE namespace = $1),
        (SELECT json_extract(quotas, '$.max_functions') FROM namespaces WHERE name = $1)";
    /// Writes take turns on the one writer connection, so nothing needs locking.
    const NEXT_VERSION: &'static str = "SELECT COALESCE(
        (SELECT MAX(version) FROM versions WHERE namespace = $1 AND function = $2), 0) + 1
    FROM functions WHERE namespace = $1 AND name = $2";
}
