//! The store bundle: one handle per storage role, all on one backend, and the one place that
//! chooses the backend from configuration. Everything above this crate holds the roles as
//! trait objects and never learns which database is underneath.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vireo_core::{
    Catalog, ChangeFeed, ComponentStore, KeyValueStore, MasterKeyRecord, NodeRegistry, ObjectStore,
    Queue, QueueAdmin, Records, RouteStore, ScheduleStore, SecretStore, SourceStore, StoreError,
    TenantStore,
};

use crate::{postgres, sqlite};

/// Which database holds Vireo's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    /// A SQLite file, created if missing; one server at a time may use it. Component bytes are
    /// files in `components/` beside it.
    Sqlite { path: PathBuf },
    /// A PostgreSQL database, which any number of nodes may share.
    Postgres(PostgresConfig),
}

/// A PostgreSQL database and how one node uses it.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database?options`; shown without its password.
    pub url: String,
    /// The node's connections at most, one of which follows the change log.
    pub max_connections: u32,
    /// The longest one statement may run before the database cancels it.
    pub statement_timeout: Duration,
}

impl PostgresConfig {
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
    /// The change log's listener holds one connection and the key-value reader keeps one while
    /// it is busy; the rest of the work needs at least one more.
    pub const MIN_CONNECTIONS: u32 = 3;
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

    /// The database at `url`, with the default pool size and statement timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            statement_timeout: Self::DEFAULT_STATEMENT_TIMEOUT,
        }
    }
}

/// Without the password, which logs and error reports must not carry.
impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &postgres::redacted(&self.url))
            .field("max_connections", &self.max_connections)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// Every storage role of one store. Clones share the connections.
#[derive(Clone)]
pub struct Stores {
    pub catalog: Arc<dyn Catalog>,
    pub components: Arc<dyn ComponentStore>,
    pub records: Arc<dyn Records>,
    pub queue: Arc<dyn Queue>,
    pub queue_admin: Arc<dyn QueueAdmin>,
    pub schedules: Arc<dyn ScheduleStore>,
    pub sources: Arc<dyn SourceStore>,
    pub http_routes: Arc<dyn RouteStore>,
    pub tenants: Arc<dyn TenantStore>,
    pub secrets: Arc<dyn SecretStore>,
    pub key_value: Arc<dyn KeyValueStore>,
    pub objects: Arc<dyn ObjectStore>,
    pub master_key: Arc<dyn MasterKeyRecord>,
    pub changes: Arc<dyn ChangeFeed>,
    pub nodes: Arc<dyn NodeRegistry>,
    backend: Arc<dyn Backend>,
}

/// Opens the store `config` names, bringing its schema up to date.
pub async fn open(config: &StorageConfig) -> Result<Stores, StoreError> {
    match config {
        StorageConfig::Sqlite { path } => sqlite::open(path).await,
        StorageConfig::Postgres(config) => postgres::open(config).await,
    }
}

/// A backend implements every role on one set of connections.
#[async_trait::async_trait]
pub(crate) trait Backend:
    Catalog
    + Records
    + Queue
    + QueueAdmin
    + ScheduleStore
    + SourceStore
    + RouteStore
    + TenantStore
    + SecretStore
    + KeyValueStore
    + ObjectStore
    + MasterKeyRecord
    + NodeRegistry
{
    /// Closes every connection once the work using them is done.
    async fn close(&self);
}

impl Stores {
    pub(crate) fn new(
        backend: Arc<impl Backend>,
        components: Arc<dyn ComponentStore>,
        changes: Arc<dyn ChangeFeed>,
    ) -> Self {
        Self {
            catalog: backend.clone(),
            components,
            records: backend.clone(),
            queue: backend.clone(),
            queue_admin: backend.clone(),
            schedules: backend.clone(),
            sources: backend.clone(),
            http_routes: backend.clone(),
            tenants: backend.clone(),
            secrets: backend.clone(),
            key_value: backend.clone(),
            objects: backend.clone(),
            master_key: backend.clone(),
            changes,
            nodes: backend.clone(),
            backend,
        }
    }

    /// Closes every connection (SQLite checkpoints its write-ahead log); call at shutdown,
    /// after the last write. Every clone shares the connections, so it closes them all.
    pub async fn close(&self) {
        self.backend.close().await;
    }
}
