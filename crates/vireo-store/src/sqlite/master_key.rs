//! The SQLite [`MasterKeyRecord`].

use vireo_core::{MasterKeyRecord, StoreError};

use super::{SqliteStore, backend, commit};
use crate::sql::{MASTER_KEY, RECORD_MASTER_KEY};

#[async_trait::async_trait]
impl MasterKeyRecord for SqliteStore {
    async fn record_master_key(&self, fingerprint: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(RECORD_MASTER_KEY)
            .bind(fingerprint)
            .execute(&mut *tx)
            .await
            .map_err(backend("recording the master key's fingerprint"))?;
        let recorded = sqlx::query_scalar(MASTER_KEY)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend("reading the master key's fingerprint"))?;
        commit(tx).await?;
        Ok(recorded)
    }
}
