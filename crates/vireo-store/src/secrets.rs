//! The SQLite implementation of [`SecretStore`]: rows of nonce and ciphertext, never a value.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::QueryBuilder;
use sqlx::sqlite::SqliteRow;
use vireo_core::{
    Name, SealedSample, SealedSecret, SecretInfo, SecretName, SecretStore, StoreError,
};

use crate::sqlite::{
    SqliteStore, backend, check_namespace, column, commit, name_column, parsed_column,
};

#[async_trait::async_trait]
impl SecretStore for SqliteStore {
    async fn put_secret(
        &self,
        namespace: &Name,
        name: &SecretName,
        sealed: &SealedSecret,
        at_us: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        check_namespace(&mut tx, namespace).await?;
        let existed: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM secrets WHERE namespace = ?1 AND name = ?2)",
        )
        .bind(namespace.as_str())
        .bind(name.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend("checking secret"))?;
        sqlx::query(
            "INSERT INTO secrets (namespace, name, nonce, ciphertext, created_at_us, updated_at_us)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)
             ON CONFLICT (namespace, name) DO UPDATE SET nonce = excluded.nonce,
                 ciphertext = excluded.ciphertext, updated_at_us = excluded.updated_at_us",
        )
        .bind(namespace.as_str())
        .bind(name.as_str())
        .bind(&sealed.nonce)
        .bind(&sealed.ciphertext)
        .bind(at_us)
        .execute(&mut *tx)
        .await
        .map_err(backend("storing secret"))?;
        commit(tx).await?;
        Ok(!existed)
    }

    async fn list_secrets(&self, namespace: &Name) -> Result<Vec<SecretInfo>, StoreError> {
        let mut tx = self.read().await?;
        check_namespace(&mut tx, namespace).await?;
        let rows = sqlx::query(
            "SELECT namespace, name, created_at_us, updated_at_us FROM secrets
             WHERE namespace = ?1 ORDER BY name",
        )
        .bind(namespace.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(backend("listing secrets"))?;
        rows.iter().map(info_from_row).collect()
    }

    async fn sealed_secrets(
        &self,
        namespace: &Name,
        names: &BTreeSet<SecretName>,
    ) -> Result<BTreeMap<SecretName, SealedSecret>, StoreError> {
        if names.is_empty() {
            return Ok(BTreeMap::new());
        }
        let mut sql =
            QueryBuilder::new("SELECT name, nonce, ciphertext FROM secrets WHERE namespace = ");
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
                let name = secret_name_column(row)?;
                let sealed = SealedSecret {
                    nonce: column(row, "nonce")?,
                    ciphertext: column(row, "ciphertext")?,
                };
                Ok((name, sealed))
            })
            .collect()
    }

    async fn delete_secret(&self, namespace: &Name, name: &SecretName) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_namespace(&mut tx, namespace).await?;
        let deleted = sqlx::query("DELETE FROM secrets WHERE namespace = ?1 AND name = ?2")
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
        commit(tx).await
    }

    async fn sample_sealed(&self, limit: u32) -> Result<SealedSample, StoreError> {
        let mut tx = self.read().await?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM secrets")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend("counting secrets"))?;
        let rows = sqlx::query(
            "SELECT namespace, name, nonce, ciphertext FROM secrets
             ORDER BY updated_at_us DESC LIMIT ?1",
        )
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend("sampling secrets"))?;
        let secrets = rows
            .iter()
            .map(|row| {
                let sealed = SealedSecret {
                    nonce: column(row, "nonce")?,
                    ciphertext: column(row, "ciphertext")?,
                };
                Ok((
                    name_column(row, "namespace")?,
                    secret_name_column(row)?,
                    sealed,
                ))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(SealedSample {
            total: u64::try_from(total).unwrap_or(0),
            secrets,
        })
    }
}

fn info_from_row(row: &SqliteRow) -> Result<SecretInfo, StoreError> {
    Ok(SecretInfo {
        namespace: name_column(row, "namespace")?,
        name: secret_name_column(row)?,
        created_at_us: column(row, "created_at_us")?,
        updated_at_us: column(row, "updated_at_us")?,
    })
}

fn secret_name_column(row: &SqliteRow) -> Result<SecretName, StoreError> {
    parsed_column(row, "name", |value| SecretName::parse(value).ok())
}
