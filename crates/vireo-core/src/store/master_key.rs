//! Which master key seals a store's secrets. Every node of a store must hold the same key (a
//! node with another would seal secrets the others cannot open), so the first node records its
//! key's fingerprint, and a node whose key has another fingerprint refuses to start.

use super::StoreError;

#[async_trait::async_trait]
pub trait MasterKeyRecord: Send + Sync + 'static {
    /// Records `fingerprint` as the fingerprint of the store's master key unless one is recorded
    /// already; returns the one recorded, which a node compares with its own.
    async fn record_master_key(&self, fingerprint: &[u8]) -> Result<Vec<u8>, StoreError>;
}
