//! SQLite's SQL where it differs from PostgreSQL's, for the roles whose differences are only
//! SQL text (and one step, telling a new secret from a replaced one).

use vireo_core::{Name, SecretName, StoreError};

use super::SqliteStore;
use crate::roles::Conn;
use crate::roles::catalog::CatalogDialect;
use crate::roles::schedules::SchedulesDialect;
use crate::roles::secrets::SecretsDialect;
use crate::roles::tenants::TenantsDialect;
use crate::sql::{Statement, query};

const SECRET_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM secrets WHERE namespace = $1 AND name = $2)";

impl CatalogDialect for SqliteStore {
    const FUNCTION_QUOTA: &'static str =
        "SELECT (SELECT COUNT(*) FROM functions WHERE namespace = $1),
        (SELECT json_extract(quotas, '$.max_functions') FROM namespaces WHERE name = $1)";
    /// Writes take turns on the one writer connection, so nothing needs locking.
    const NEXT_VERSION: &'static str = "SELECT COALESCE(
        (SELECT MAX(version) FROM versions WHERE namespace = $1 AND function = $2), 0) + 1
    FROM functions WHERE namespace = $1 AND name = $2";
}

impl TenantsDialect for SqliteStore {
    const REVOKE_NAMESPACE_KEYS: &'static str =
        "UPDATE api_keys SET revoked_at_us = COALESCE(revoked_at_us, $2)
        WHERE EXISTS (SELECT 1 FROM json_each(api_keys.namespaces) WHERE value = $1)";
    /// `async_pending` is kept by triggers and has no foreign key.
    const DELETE_NAMESPACE: &'static [&'static str] = &[
        "DELETE FROM logs WHERE namespace = $1",
        "DELETE FROM invocations WHERE namespace = $1",
        "DELETE FROM async_pending WHERE namespace = $1",
        "DELETE FROM namespaces WHERE name = $1",
    ];
}

/// The condition of the `schedules_due` partial index.
impl SchedulesDialect for SqliteStore {
    const UNPAUSED: &'static str = "s.paused = 0";
}

/// One writer at a time, so what the check sees is what the upsert replaces.
#[async_trait::async_trait]
impl SecretsDialect for SqliteStore {
    async fn put_secret(
        conn: &mut Conn<Self>,
        put: Statement<'_>,
        namespace: &Name,
        name: &SecretName,
    ) -> Result<bool, StoreError> {
        let existed: bool = query(SECRET_EXISTS)
            .bind(namespace.as_str())
            .bind(name.as_str())
            .scalar(conn, "checking secret")
            .await?;
        put.execute(conn, "storing secret").await?;
        Ok(!existed)
    }
}
