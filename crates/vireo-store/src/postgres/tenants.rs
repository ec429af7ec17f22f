//! The PostgreSQL [`TenantStore`]: namespaces with their quotas, and API keys.

use sqlx::PgConnection;
use vireo_core::auth::ApiKey;
use vireo_core::{Change, Name, NamespaceInfo, NamespaceQuotas, StoreError, TenantStore};

use super::{PgStore, backend};
use crate::roles::{Dialect as _, SqlStore};
use crate::{codec, plan, rows};

/// A namespace's columns and how many functions it holds, for [`rows::namespace_info`].
macro_rules! namespace_select {
    () => {
        "SELECT n.name, n.created_at_us, n.quotas,
            (SELECT COUNT(*) FROM functions f WHERE f.namespace = n.name) AS functions
         FROM namespaces n"
    };
}

const CREATE_NAMESPACE: &str = "INSERT INTO namespaces (name, created_at_us, quotas) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const LIST_NAMESPACES: &str = concat!(namespace_select!(), " ORDER BY n.name");
const GET_NAMESPACE: &str = concat!(namespace_select!(), " WHERE n.name = $1");
const SET_QUOTAS: &str = "UPDATE namespaces SET quotas = $2 WHERE name = $1";
const NAMESPACE_CONTENTS: &str = "SELECT (SELECT COUNT(*) FROM functions WHERE namespace = $1),
        (SELECT COUNT(*) FROM schedules WHERE namespace = $1),
        (SELECT COUNT(*) FROM secrets WHERE namespace = $1)";
/// Keys naming the namespace are revoked: a namespace created later under the same name must
/// not inherit them.
const REVOKE_NAMESPACE_KEYS: &str =
    "UPDATE api_keys SET revoked_at_us = COALESCE(revoked_at_us, $2)
    WHERE namespaces::jsonb ? $1";
/// What has no foreign key to the namespace goes with it.
const DELETE_NAMESPACE: [&str; 3] = [
    "DELETE FROM logs WHERE namespace = $1",
    "DELETE FROM invocations WHERE namespace = $1",
    "DELETE FROM namespaces WHERE name = $1",
];
const CREATE_KEY: &str = "INSERT INTO api_keys (id, role, namespaces, description, secret_sha256, created_at_us, expires_at_us, revoked_at_us)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const LIST_KEYS: &str = "SELECT * FROM api_keys ORDER BY created_at_us, id";
const REVOKE_KEY: &str =
    "UPDATE api_keys SET revoked_at_us = COALESCE(revoked_at_us, $2) WHERE id = $1";
const GET_KEY: &str = "SELECT * FROM api_keys WHERE id = $1";

#[async_trait::async_trait]
impl TenantStore for SqlStore<PgStore> {
    async fn create_namespace(
        &self,
        name: &Name,
        quotas: &NamespaceQuotas,
        at_us: i64,
    ) -> Result<NamespaceInfo, StoreError> {
        let mut tx = self.write().await?;
        let inserted = sqlx::query(CREATE_NAMESPACE)
            .bind(name.as_str())
            .bind(at_us)
            .bind(codec::encode_quotas(quotas)?)
            .execute(&mut *tx)
            .await
            .map_err(backend("creating namespace"))?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NamespaceExists(name.clone()));
        }
        let created = namespace(&mut tx, name).await?;
        self.commit_change(tx, Change::Tenants).await?;
        Ok(created)
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceInfo>, StoreError> {
        let rows = sqlx::query(LIST_NAMESPACES)
            .fetch_all(&self.pool)
            .await
            .map_err(backend("listing namespaces"))?;
        rows.iter().map(rows::namespace_info).collect()
    }

    async fn get_namespace(&self, name: &Name) -> Result<NamespaceInfo, StoreError> {
        let mut tx = self.write().await?;
        namespace(&mut tx, name).await
    }

    async fn set_quotas(
        &self,
        name: &Name,
        quotas: &NamespaceQuotas,
    ) -> Result<NamespaceInfo, StoreError> {
        let mut tx = self.write().await?;
        let updated = sqlx::query(SET_QUOTAS)
            .bind(name.as_str())
            .bind(codec::encode_quotas(quotas)?)
            .execute(&mut *tx)
            .await
            .map_err(backend("setting quotas"))?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NamespaceNotFound(name.clone()));
        }
        let changed = namespace(&mut tx, name).await?;
        self.commit_change(tx, Change::Tenants).await?;
        Ok(changed)
    }

    async fn delete_namespace(&self, name: &Name, at_us: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        namespace(&mut tx, name).await?;
        // No function can be added while the namespace's contents are counted.
        PgStore::lock_namespace(&mut tx, name).await?;
        let (functions, schedules, secrets): (i64, i64, i64) = sqlx::query_as(NAMESPACE_CONTENTS)
            .bind(name.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(backend("counting namespace contents"))?;
        plan::admit_namespace_deletion(
            name,
            codec::unsigned(functions),
            codec::unsigned(schedules),
            codec::unsigned(secrets),
        )?;
        sqlx::query(REVOKE_NAMESPACE_KEYS)
            .bind(name.as_str())
            .bind(at_us)
            .execute(&mut *tx)
            .await
            .map_err(backend("revoking the namespace's keys"))?;
        for sql in DELETE_NAMESPACE {
            sqlx::query(sql)
                .bind(name.as_str())
                .execute(&mut *tx)
                .await
                .map_err(backend("deleting namespace"))?;
        }
        self.commit_change(tx, Change::Tenants).await
    }

    async fn create_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let namespaces = codec::encode_key_namespaces(&key.namespaces)?;
        let mut tx = self.write().await?;
        for namespace_name in &key.namespaces {
            namespace(&mut tx, namespace_name).await?;
        }
        sqlx::query(CREATE_KEY)
            .bind(&key.id)
            .bind(key.role.as_str())
            .bind(namespaces)
            .bind(&key.description)
            .bind(&key.secret_sha256)
            .bind(key.created_at_us)
            .bind(key.expires_at_us)
            .bind(key.revoked_at_us)
            .execute(&mut *tx)
            .await
            .map_err(backend("creating API key"))?;
        self.commit_change(tx, Change::Tenants).await
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(LIST_KEYS)
            .fetch_all(&self.pool)
            .await
            .map_err(backend("listing API keys"))?;
        rows.iter().map(rows::api_key).collect()
    }

    async fn revoke_key(&self, id: &str, at_us: i64) -> Result<ApiKey, StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(REVOKE_KEY)
            .bind(id)
            .bind(at_us)
            .execute(&mut *tx)
            .await
            .map_err(backend("revoking API key"))?;
        let row = sqlx::query(GET_KEY)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend("reading API key"))?
            .ok_or_else(|| StoreError::KeyNotFound(id.to_string()))?;
        let revoked = rows::api_key(&row)?;
        self.commit_change(tx, Change::Tenants).await?;
        Ok(revoked)
    }
}

/// The namespace, or `NamespaceNotFound`.
async fn namespace(conn: &mut PgConnection, name: &Name) -> Result<NamespaceInfo, StoreError> {
    let row = sqlx::query(GET_NAMESPACE)
        .bind(name.as_str())
        .fetch_optional(conn)
        .await
        .map_err(backend("reading namespace"))?
        .ok_or_else(|| StoreError::NamespaceNotFound(name.clone()))?;
    rows::namespace_info(&row)
}
