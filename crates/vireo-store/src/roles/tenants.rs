//! The [`TenantStore`]: namespaces with their quotas, and API keys.

use vireo_core::auth::ApiKey;
use vireo_core::{Change, Name, NamespaceInfo, NamespaceQuotas, StoreError, TenantStore};

use super::{Dialect, SqlStore};
use crate::sql::{Sql, query};
use crate::{codec, plan, rows};

/// Where the dialects differ for tenants.
pub(crate) trait TenantsDialect: Dialect {
    /// Revokes (binding the namespace, then the time) the keys naming the namespace: a
    /// namespace created later under the same name must not inherit them.
    const REVOKE_NAMESPACE_KEYS: &'static str;
    /// What has no foreign key to the namespace (bound as `$1`) goes with it, the namespace last.
    const DELETE_NAMESPACE: &'static [&'static str];
}

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
const CREATE_KEY: &str = "INSERT INTO api_keys (id, role, namespaces, description, secret_sha256, created_at_us, expires_at_us, revoked_at_us)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
const LIST_KEYS: &str = "SELECT * FROM api_keys ORDER BY created_at_us, id";
const REVOKE_KEY: &str =
    "UPDATE api_keys SET revoked_at_us = COALESCE(revoked_at_us, $2) WHERE id = $1";
const GET_KEY: &str = "SELECT * FROM api_keys WHERE id = $1";

#[async_trait::async_trait]
impl<D: TenantsDialect> TenantStore for SqlStore<D> {
    async fn create_namespace(
        &self,
        name: &Name,
        quotas: &NamespaceQuotas,
        at_us: i64,
    ) -> Result<NamespaceInfo, StoreError> {
        let mut tx = self.write().await?;
        let inserted = query(CREATE_NAMESPACE)
            .bind(name.as_str())
            .bind(at_us)
            .bind(codec::encode_quotas(quotas)?)
            .execute(&mut *tx, "creating namespace")
            .await?;
        if inserted == 0 {
            return Err(StoreError::NamespaceExists(name.clone()));
        }
        let created = namespace(&mut *tx, name).await?;
        self.commit_change(tx, Change::Tenants).await?;
        Ok(created)
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceInfo>, StoreError> {
        let rows = query(LIST_NAMESPACES)
            .fetch_all(&mut *self.reader().await?, "listing namespaces")
            .await?;
        rows.iter().map(rows::namespace_info).collect()
    }

    async fn get_namespace(&self, name: &Name) -> Result<NamespaceInfo, StoreError> {
        let mut tx = self.read().await?;
        namespace(&mut *tx, name).await
    }

    async fn set_quotas(
        &self,
        name: &Name,
        quotas: &NamespaceQuotas,
    ) -> Result<NamespaceInfo, StoreError> {
        let mut tx = self.write().await?;
        let updated = query(SET_QUOTAS)
            .bind(name.as_str())
            .bind(codec::encode_quotas(quotas)?)
            .execute(&mut *tx, "setting quotas")
            .await?;
        if updated == 0 {
            return Err(StoreError::NamespaceNotFound(name.clone()));
        }
        let changed = namespace(&mut *tx, name).await?;
        self.commit_change(tx, Change::Tenants).await?;
        Ok(changed)
    }

    async fn delete_namespace(&self, name: &Name, at_us: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        namespace(&mut *tx, name).await?;
        // No function can be added while the namespace's contents are counted.
        D::lock_namespace(&mut tx, name).await?;
        let contents = query(NAMESPACE_CONTENTS)
            .bind(name.as_str())
            .fetch_one(&mut *tx, "counting namespace contents")
            .await?;
        plan::admit_namespace_deletion(
            name,
            codec::unsigned(rows::column(&contents, 0)?),
            codec::unsigned(rows::column(&contents, 1)?),
            codec::unsigned(rows::column(&contents, 2)?),
        )?;
        query(D::REVOKE_NAMESPACE_KEYS)
            .bind(name.as_str())
            .bind(at_us)
            .execute(&mut *tx, "revoking the namespace's keys")
            .await?;
        for sql in D::DELETE_NAMESPACE {
            query(sql)
                .bind(name.as_str())
                .execute(&mut *tx, "deleting namespace")
                .await?;
        }
        self.commit_change(tx, Change::Tenants).await
    }

    async fn create_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let namespaces = codec::encode_key_namespaces(&key.namespaces)?;
        let mut tx = self.write().await?;
        for namespace_name in &key.namespaces {
            namespace(&mut *tx, namespace_name).await?;
        }
        query(CREATE_KEY)
            .bind(key.id.as_str())
            .bind(key.role.as_str())
            .bind(namespaces)
            .bind(key.description.as_deref())
            .bind(key.secret_sha256.as_str())
            .bind(key.created_at_us)
            .bind(key.expires_at_us)
            .bind(key.revoked_at_us)
            .execute(&mut *tx, "creating API key")
            .await?;
        self.commit_change(tx, Change::Tenants).await
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = query(LIST_KEYS)
            .fetch_all(&mut *self.reader().await?, "listing API keys")
            .await?;
        rows.iter().map(rows::api_key).collect()
    }

    async fn revoke_key(&self, id: &str, at_us: i64) -> Result<ApiKey, StoreError> {
        let mut tx = self.write().await?;
        query(REVOKE_KEY)
            .bind(id)
            .bind(at_us)
            .execute(&mut *tx, "revoking API key")
            .await?;
        let row = query(GET_KEY)
            .bind(id)
            .fetch_optional(&mut *tx, "reading API key")
            .await?
            .ok_or_else(|| StoreError::KeyNotFound(id.to_string()))?;
        let revoked = rows::api_key(&row)?;
        self.commit_change(tx, Change::Tenants).await?;
        Ok(revoked)
    }
}

/// The namespace, or `NamespaceNotFound`.
async fn namespace(conn: &mut impl Sql, name: &Name) -> Result<NamespaceInfo, StoreError> {
    let row = query(GET_NAMESPACE)
        .bind(name.as_str())
        .fetch_optional(conn, "reading namespace")
        .await?
        .ok_or_else(|| StoreError::NamespaceNotFound(name.clone()))?;
    rows::namespace_info(&row)
}
