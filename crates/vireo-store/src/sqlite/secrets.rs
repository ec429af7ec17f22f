//! The SQLite [`SecretStore`]: rows of nonce and ciphertext, never a value.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::QueryBuilder;
use vireo_core::{
    Name, SealedSample, SealedSecret, SecretInfo, SecretName, SecretStore, StoreError,
};

use super::{SqliteStore, backend};
use crate::changes::secret;
use crate::codec;
use crate::roles::{Dialect as _, SqlStore, check_namespace};
use crate::rows::{self, name_column};

const SECRET_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM secrets WHERE namespace = ?1 AND name = ?2)";
/// A replacement keeps its creation time.
const PUT_SECRET: &str =
    "INSERT INTO secrets (namespace, name, nonce, ciphertext, created_at_us, updated_at_us)
    VALUES (?1, ?2, ?3, ?4, ?5, ?5)
    ON CONFLICT (namespace, name) DO UPDATE SET nonce = excluded.nonce,
        ciphertext = excluded.ciphertext, updated_at_us = excluded.updated_at_us";
const LIST_SECRETS: &str = "SELECT namespace, name, created_at_us, updated_at_us FROM secrets
    WHERE namespace = ?1 ORDER BY name";
/// Followed by the namespace and ` AND name IN (` the names `)`.
const SEALED_SECRETS: &str = "SELECT name, nonce, ciphertext FROM secrets WHERE namespace = ";
const DELETE_SECRET: &str = "DELETE FROM secrets WHERE namespace = ?1 AND name = ?2";
const COUNT_SECRETS: &str = "SELECT COUNT(*) FROM secrets";
const SAMPLE_SECRETS: &str = "SELECT namespace, name, nonce, ciphertext FROM secrets
    ORDER BY updated_at_us DESC LIMIT ?1";

#[async_trait::async_trait]
impl SecretStore for SqlStore<SqliteStore> {
    async fn put_secret(
        &self,
        namespace: &Name,
        name: &SecretName,
        sealed: &SealedSecret,
        at_us: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        check_namespace(&mut *tx, namespace).await?;
        let existed: bool = sqlx::query_scalar(SECRET_EXISTS)
            .bind(namespace.as_str())
            .bind(name.as_str())
            .fetch_one(&mut *tx)
            .await
            .map_err(backend("checking secret"))?;
        sqlx::query(PUT_SECRET)
            .bind(namespace.as_str())
            .bind(name.as_str())
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .bind(at_us)
            .execute(&mut *tx)
            .await
            .map_err(backend("storing secret"))?;
        self.commit_change(tx, secret(namespace, name)).await?;
        Ok(!existed)
    }

    async fn list_secrets(&self, namespace: &Name) -> Result<Vec<SecretInfo>, StoreError> {
        let mut tx = self.read().await?;
        check_namespace(&mut *tx, namespace).await?;
        let rows = sqlx::query(LIST_SECRETS)
            .bind(namespace.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(backend("listing secrets"))?;
        rows.iter().map(rows::secret_info).collect()
    }

    async fn sealed_secrets(
        &self,
        namespace: &Name,
        names: &BTreeSet<SecretName>,
    ) -> Result<BTreeMap<SecretName, SealedSecret>, StoreError> {
        if names.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut sql = QueryBuilder::new(SEALED_SECRETS);
        sql.push_bind(namespace.as_str()).push(" AND name IN (");
        let mut list = sql.separated(", ");
        for name in names {
            list.push_bind(name.as_str());
        }
        sql.push(")");
        let rows = sql
            .build()
            .fetch_all(&self.reader)
            .await
            .map_err(backend("reading secrets"))?;
        rows.iter()
            .map(|row| {
                let name = rows::secret_name(row)?;
                Ok((name, rows::sealed_secret(row)?))
            })
            .collect()
    }

    async fn delete_secret(&self, namespace: &Name, name: &SecretName) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_namespace(&mut *tx, namespace).await?;
        let deleted = sqlx::query(DELETE_SECRET)
            .bind(namespace.as_str())
            .bind(name.as_str())
            .execute(&mut *tx)
            .await
            .map_err(backend("deleting secret"))?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::SecretNotFound {
                namespace: namespace.clone(),
                name: name.clone(),
            });
        }
        self.commit_change(tx, secret(namespace, name)).await
    }

    async fn sample_sealed(&self, limit: u32) -> Result<SealedSample, StoreError> {
        let mut tx = self.read().await?;
        let total: i64 = sqlx::query_scalar(COUNT_SECRETS)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend("counting secrets"))?;
        let rows = sqlx::query(SAMPLE_SECRETS)
            .bind(limit)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend("sampling secrets"))?;
        let secrets = rows
            .iter()
            .map(|row| {
                Ok((
                    name_column(row, "namespace")?,
                    rows::secret_name(row)?,
                    rows::sealed_secret(row)?,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(SealedSample {
            total: codec::unsigned(total),
            secrets,
        })
    }
}
