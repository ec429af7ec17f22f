//! PostgreSQL's SQL where it differs from SQLite's, for the roles whose differences are only
//! SQL text (and one step, telling a new secret from a replaced one).

use vireo_core::{Name, SecretName, StoreError};

use super::PgStore;
use crate::roles::Conn;
use crate::roles::catalog::CatalogDialect;
use crate::roles::key_value::KvDialect;
use crate::roles::schedules::SchedulesDialect;
use crate::roles::secrets::SecretsDialect;
use crate::roles::tenants::TenantsDialect;
use crate::sql::Statement;

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

/// PostgreSQL prepares one statement per query, so a batch's statements go one at a time.
impl KvDialect for PgStore {}

impl SchedulesDialect for PgStore {
    const UNPAUSED: &'static str = "NOT s.paused";
}

/// A row the upsert inserted has no deleting transaction (`xmax = 0`); one it updated has.
/// Exact while another node puts the same secret at the same time, where a check before the
/// upsert would not be.
#[async_trait::async_trait]
impl SecretsDialect for PgStore {
    async fn put_secret(
        conn: &mut Conn<Self>,
        mut put: Statement<'_>,
        _namespace: &Name,
        _name: &SecretName,
    ) -> Result<bool, StoreError> {
        put.push(" RETURNING xmax = 0 AS inserted");
        put.scalar(conn, "storing secret").await
    }
}
