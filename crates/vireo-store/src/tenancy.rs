//! The SQLite implementation of [`Tenancy`]: namespaces with their quotas, and API keys.

use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;
use vireo_core::auth::{ApiKey, Role};
use vireo_core::time::now_micros;
use vireo_core::{Name, NamespaceInfo, NamespaceQuotas, StoreError, Tenancy};

use crate::sqlite::{SqliteStore, backend, column, commit, name_column, parsed_column};

const NAMESPACE_SELECT: &str = "SELECT n.name, n.created_at_us, n.quotas,
    (SELECT COUNT(*) FROM functions f WHERE f.namespace = n.name) AS functions
    FROM namespaces n";

#[async_trait::async_trait]
impl Tenancy for SqliteStore {
    async fn create_namespace(
        &self,
        name: &Name,
        quotas: &NamespaceQuotas,
    ) -> Result<NamespaceInfo, StoreError> {
        let mut tx = self.write().await?;
        let inserted = sqlx::query(
            "INSERT INTO namespaces (name, created_at_us, quotas) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )
        .bind(name.as_str())
        .bind(now_micros())
        .bind(encode(quotas)?)
        .execute(&mut *tx)
        .await
        .map_err(backend("creating namespace"))?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::NamespaceExists(name.clone()));
        }
        let created = namespace(&mut tx, name).await?;
        commit(tx).await?;
        Ok(created)
    }

    async fn list_namespaces(&self) -> Result<Vec<NamespaceInfo>, StoreError> {
        let rows = sqlx::query(&format!("{NAMESPACE_SELECT} ORDER BY n.name"))
            .fetch_all(&self.reader)
            .await
            .map_err(backend("listing namespaces"))?;
        rows.iter().map(namespace_from_row).collect()
    }

    async fn get_namespace(&self, name: &Name) -> Result<NamespaceInfo, StoreError> {
        let mut tx = self.read().await?;
        namespace(&mut tx, name).await
    }

    async fn set_quotas(
        &self,
        name: &Name,
        quotas: &NamespaceQuotas,
    ) -> Result<NamespaceInfo, StoreError> {
        let mut tx = self.write().await?;
        let updated = sqlx::query("UPDATE namespaces SET quotas = ?2 WHERE name = ?1")
            .bind(name.as_str())
            .bind(encode(quotas)?)
            .execute(&mut *tx)
            .await
            .map_err(backend("setting quotas"))?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NamespaceNotFound(name.clone()));
        }
        let changed = namespace(&mut tx, name).await?;
        commit(tx).await?;
        Ok(changed)
    }

    async fn delete_namespace(&self, name: &Name) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        namespace(&mut tx, name).await?;
        let (functions, schedules, secrets): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM functions WHERE namespace = ?1),
                    (SELECT COUNT(*) FROM schedules WHERE namespace = ?1),
                    (SELECT COUNT(*) FROM secrets WHERE namespace = ?1)",
        )
        .bind(name.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend("counting namespace contents"))?;
        if functions + schedules + secrets > 0 {
            return Err(StoreError::NamespaceNotEmpty {
                namespace: name.clone(),
                what: format!("{functions} functions, {schedules} schedules and {secrets} secrets"),
            });
        }
        // Keys naming the namespace are revoked: a namespace created later under the same name
        // must not inherit them.
        sqlx::query(
            "UPDATE api_keys SET revoked_at_us = COALESCE(revoked_at_us, ?2)
             WHERE EXISTS (SELECT 1 FROM json_each(api_keys.namespaces) WHERE value = ?1)",
        )
        .bind(name.as_str())
        .bind(now_micros())
        .execute(&mut *tx)
        .await
        .map_err(backend("revoking the namespace's keys"))?;
        // What has no foreign key to the namespace goes with it.
        for sql in [
            "DELETE FROM logs WHERE namespace = ?1",
            "DELETE FROM invocations WHERE namespace = ?1",
            "DELETE FROM async_pending WHERE namespace = ?1",
            "DELETE FROM namespaces WHERE name = ?1",
        ] {
            sqlx::query(sql)
                .bind(name.as_str())
                .execute(&mut *tx)
                .await
                .map_err(backend("deleting namespace"))?;
        }
        commit(tx).await
    }

    async fn create_key(&self, key: &ApiKey) -> Result<(), StoreError> {
        let namespaces: Vec<&str> = key.namespaces.iter().map(Name::as_str).collect();
        let mut tx = self.write().await?;
        for namespace_name in &key.namespaces {
            namespace(&mut tx, namespace_name).await?;
        }
        sqlx::query(
            "INSERT INTO api_keys (id, role, namespaces, description, secret_sha256, created_at_us, expires_at_us, revoked_at_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .bind(&key.id)
        .bind(key.role.as_str())
        .bind(serde_json::to_string(&namespaces).map_err(|e| StoreError::Backend(e.to_string()))?)
        .bind(&key.description)
        .bind(&key.secret_sha256)
        .bind(key.created_at_us)
        .bind(key.expires_at_us)
        .bind(key.revoked_at_us)
        .execute(&mut *tx)
        .await
        .map_err(backend("creating API key"))?;
        commit(tx).await
    }

    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_at_us, id")
            .fetch_all(&self.reader)
            .await
            .map_err(backend("listing API keys"))?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_key(&self, id: &str, at_us: i64) -> Result<ApiKey, StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(
            "UPDATE api_keys SET revoked_at_us = COALESCE(revoked_at_us, ?2) WHERE id = ?1",
        )
        .bind(id)
        .bind(at_us)
        .execute(&mut *tx)
        .await
        .map_err(backend("revoking API key"))?;
        let row = sqlx::query("SELECT * FROM api_keys WHERE id = ?1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend("reading API key"))?
            .ok_or_else(|| StoreError::KeyNotFound(id.to_string()))?;
        let revoked = key_from_row(&row)?;
        commit(tx).await?;
        Ok(revoked)
    }
}

/// The namespace, or `NamespaceNotFound`.
async fn namespace(conn: &mut SqliteConnection, name: &Name) -> Result<NamespaceInfo, StoreError> {
    let row = sqlx::query(&format!("{NAMESPACE_SELECT} WHERE n.name = ?1"))
        .bind(name.as_str())
        .fetch_optional(conn)
        .await
        .map_err(backend("reading namespace"))?
        .ok_or_else(|| StoreError::NamespaceNotFound(name.clone()))?;
    namespace_from_row(&row)
}

fn encode(quotas: &NamespaceQuotas) -> Result<Option<String>, StoreError> {
    if *quotas == NamespaceQuotas::default() {
        return Ok(None);
    }
    serde_json::to_string(quotas)
        .map(Some)
        .map_err(|e| StoreError::Backend(format!("encoding quotas: {e}")))
}

fn namespace_from_row(row: &SqliteRow) -> Result<NamespaceInfo, StoreError> {
    let quotas: Option<String> = column(row, "quotas")?;
    let quotas = match quotas {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| StoreError::Backend(format!("stored quotas are unreadable: {e}")))?,
        None => NamespaceQuotas::default(),
    };
    let functions: i64 = column(row, "functions")?;
    Ok(NamespaceInfo {
        name: name_column(row, "name")?,
        created_at_us: column(row, "created_at_us")?,
        quotas,
        functions: u64::try_from(functions).unwrap_or(0),
    })
}

fn key_from_row(row: &SqliteRow) -> Result<ApiKey, StoreError> {
    let namespaces: String = column(row, "namespaces")?;
    let namespaces: Vec<String> = serde_json::from_str(&namespaces)
        .map_err(|e| StoreError::Backend(format!("stored key namespaces are unreadable: {e}")))?;
    Ok(ApiKey {
        id: column(row, "id")?,
        role: parsed_column(row, "role", Role::parse)?,
        namespaces: namespaces
            .iter()
            .map(|ns| Name::parse("namespace", ns))
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::Backend(e.to_string()))?,
        description: column(row, "description")?,
        secret_sha256: column(row, "secret_sha256")?,
        created_at_us: column(row, "created_at_us")?,
        expires_at_us: column(row, "expires_at_us")?,
        revoked_at_us: column(row, "revoked_at_us")?,
    })
}
