//! The [`MasterKeyRecord`]: one row holding the fingerprint of the key that seals the secrets.

use vireo_core::{MasterKeyRecord, StoreError};

use super::{Dialect, SqlStore, commit};
use crate::sql::query;

/// The first fingerprint recorded stays.
const RECORD_MASTER_KEY: &str =
    "INSERT INTO master_key (id, fingerprint) VALUES (1, $1) ON CONFLICT (id) DO NOTHING";
const MASTER_KEY: &str = "SELECT fingerprint FROM master_key WHERE id = 1";

#[async_trait::async_trait]
impl<D: Dialect> MasterKeyRecord for SqlStore<D> {
    async fn record_master_key(&self, fingerprint: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut tx = self.write().await?;
        query(RECORD_MASTER_KEY)
            .bind(fingerprint)
            .execute(&mut *tx, "recording the master key's fingerprint")
            .await?;
        let recorded = query(MASTER_KEY)
            .scalar(&mut *tx, "reading the master key's fingerprint")
            .await?;
        commit::<D>(tx).await?;
        Ok(recorded)
    }
}
