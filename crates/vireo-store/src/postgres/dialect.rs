//! PostgreSQL's SQL where it differs from SQLite's, for the roles whose differences are only
//! SQL text (and one step, telling a new secret from a replaced one).

use super::PgStore;
use crate::roles::catalog::CatalogDialect;
use crate::roles::tenants::TenantsDialect;

impl CatalogDialect for PgStore {
    const FUNCTION_QUOTA: &'static str =
        "SELECT (SELECT COUNT(*) FROM functions WHERE namespace = $1),
        (SELECT (quotas::jsonb ->> 'max_functions')::BIGINT FROM namespaces WHERE name = $1)";
    const NEXT_VERSION: &'static str = "SELECT COALESCE(
        (SELECT MAX(version) FROM versions WHERE namespace = $1 AND function = $2), 0) + 1
    FROM functions WHERE namespace = $1 AND name = $2 FOR NO KEY UPDATE";
}

impl TenantsDialect for PgStore {
    const REVOKE_NAMESPACE_KEYS: &'static str =
        "UPDATE api_keys SET revoked_at_us = COALESCE(revoked_at_us, $2)
        WHERE namespaces::jsonb ? $1";
    const DELETE_NAMESPACE: &'static [&'static str] = &[
        "DELETE FROM logs WHERE namespace = $1",
        "DELETE FROM invocations WHERE namespace = $1",
        "DELETE FROM namespaces WHERE name = $1",
    ];
}
