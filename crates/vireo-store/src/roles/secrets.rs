//! The [`SecretStore`]: rows of nonce and ciphertext, never a value.

use std::collections::{BTreeMap, BTreeSet};

use vireo_core::{
    Name, SealedSample, SealedSecret, SecretInfo, SecretName, SecretStore, StoreError,
};

use super::{Conn, Dialect, SqlStore, check_namespace};
use crate::changes::secret;
use crate::codec;
use crate::rows::{self, name_column};
use crate::sql::{Statement, query};

/// Where the dialects differ for secrets.
#[async_trait::async_trait]
pub(crate) trait SecretsDialect: Dialect {
    /// Runs `put`, the upsert of the secret `namespace`/`name`; true when it stored a new
    /// secret rather than replacing one.
    async fn put_secret(
        conn: &mut Conn<Self>,
        put: Statement<'_>,
        namespace: &Name,
        name: &SecretName,
    ) -> Result<bool, StoreError>;
}

/// A replacement keeps its creation time.
const PUT_SECRET: &str =
    "INSERT INTO secrets (namespace, name, nonce, ciphertext, created_at_us, updated_at_us)
    VALUES ($1, $2, $3, $4, $5, $5)
    ON CONFLICT (namespace, name) DO UPDATE SET nonce = excluded.nonce,
        ciphertext = excluded.ciphertext, updated_at_us = excluded.updated_at_us";
const LIST_SECRETS: &str = "SELECT namespace, name, created_at_us, updated_at_us FROM secrets
    WHERE namespace = $1 ORDER BY name";
/// Followed by ` IN ` and the names.
const SEALED_SECRETS: &str =
    "SELECT name, nonce, ciphertext FROM secrets WHERE namespace = $1 AND name";
const DELETE_SECRET: &str = "DELETE FROM secrets WHERE namespace = $1 AND name = $2";
const COUNT_SECRETS: &str = "SELECT COUNT(*) FROM secrets";
const SAMPLE_SECRETS: &str = "SELECT namespace, name, nonce, ciphertext FROM secrets
    ORDER BY updated_at_us DESC LIMIT $1";

#[async_trait::async_trait]
impl<D: SecretsDialect> SecretStore for SqlStore<D> {
    async fn put_secret(
        &self,
        namespace: &Name,
        name: &SecretName,
        sealed: &SealedSecret,
        at_us: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        check_namespace(&mut *tx, namespace).await?;
        let put = query(PUT_SECRET)
            .bind(namespace.as_str())
            .bind(name.as_str())
            .bind(&sealed.nonce)
            .bind(&sealed.ciphertext)
            .bind(at_us);
        let created = D::put_secret(&mut tx, put, namespace, name).await?;
        self.commit_change(tx, secret(namespace, name)).await?;
        Ok(created)
    }

    async fn list_secrets(&self, namespace: &Name) -> Result<Vec<SecretInfo>, StoreError> {
        let mut tx = self.read().await?;
        check_namespace(&mut *tx, namespace).await?;
        let rows = query(LIST_SECRETS)
            .bind(namespace.as_str())
            .fetch_all(&mut *tx, "listing secrets")
            .await?;
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
        let mut sql = query(SEALED_SECRETS).bind(namespace.as_str());
        sql.push(" IN ")
            .push_list(names.iter().map(SecretName::as_str));
        let rows = sql
            .fetch_all(&mut *self.reader().await?, "reading secrets")
            .await?;
        rows.iter()
            .map(|row| Ok((rows::secret_name(row)?, rows::sealed_secret(row)?)))
            .collect()
    }

    async fn delete_secret(&self, namespace: &Name, name: &SecretName) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_namespace(&mut *tx, namespace).await?;
        let deleted = query(DELETE_SECRET)
            .bind(namespace.as_str())
            .bind(name.as_str())
            .execute(&mut *tx, "deleting secret")
            .await?;
        if deleted == 0 {
            return Err(StoreError::SecretNotFound {
                namespace: namespace.clone(),
                name: name.clone(),
            });
        }
        self.commit_change(tx, secret(namespace, name)).await
    }

    async fn sample_sealed(&self, limit: u32) -> Result<SealedSample, StoreError> {
        let mut tx = self.read().await?;
        let total: i64 = query(COUNT_SECRETS)
            .scalar(&mut *tx, "counting secrets")
            .await?;
        let rows = query(SAMPLE_SECRETS)
            .bind(limit)
            .fetch_all(&mut *tx, "sampling secrets")
            .await?;
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
