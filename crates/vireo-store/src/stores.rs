//! The store bundle: one handle per storage role, all on one backend, and the one place that
//! chooses the backend from configuration. Everything above this crate holds the roles as
//! trait objects and never learns which database is underneath.

use std::path::PathBuf;
use std::sync::Arc;

use vireo_core::{
    Catalog, ChangeFeed, Queue, QueueAdmin, Records, ScheduleStore, SecretStore, StoreError,
    TenantStore,
};

use crate::sqlite;

/// Which database holds Vireo's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// A SQLite file, created if missing; one server at a time may use it.
    Sqlite { path: PathBuf },
}

/// Every storage role of one store. Clones share the connections.
#[derive(Clone)]
pub struct Stores {
    pub catalog: Arc<dyn Catalog>,
    pub records: Arc<dyn Records>,
    pub queue: Arc<dyn Queue>,
    pub queue_admin: Arc<dyn QueueAdmin>,
    pub schedules: Arc<dyn ScheduleStore>,
    pub tenants: Arc<dyn TenantStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub changes: Arc<dyn ChangeFeed>,
    backend: Arc<dyn Backend>,
}

/// Opens the store `config` names, bringing its schema up to date.
pub async fn open(config: &StorageConfig) -> Result<Stores, StoreError> {
    match config {
        StorageConfig::Sqlite { path } => sqlite::open(path).await,
    }
}

/// A backend implements every role on one set of connections.
#[async_trait::async_trait]
pub(crate) trait Backend:
    Catalog + Records + Queue + QueueAdmin + ScheduleStore + TenantStore + SecretStore
{
    /// Closes every connection once the work using them is done.
    async fn close(&self);
}

impl Stores {
    pub(crate) fn new(backend: impl Backend, changes: Arc<dyn ChangeFeed>) -> Self {
        let backend = Arc::new(backend);
        Self {
            catalog: backend.clone(),
            records: backend.clone(),
            queue: backend.clone(),
            queue_admin: backend.clone(),
            schedules: backend.clone(),
            tenants: backend.clone(),
            secrets: backend.clone(),
            changes,
            backend,
        }
    }

    /// Closes every connection (SQLite checkpoints its write-ahead log); call at shutdown,
    /// after the last write. Every clone shares the connections, so it closes them all.
    pub async fn close(&self) {
        self.backend.close().await;
    }
}
