//! What the gateway is given, and the narrow pieces handlers take of it. The composition root
//! hands over every dependency once ([`SharedState`]); a handler names only the parts it uses
//! (`State<Arc<dyn Catalog>>`, `State<Access>`, …), each cut from the whole by a `FromRef`, so
//! what a handler can reach is written in its signature.

use std::sync::Arc;

use axum::extract::FromRef;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use vireo_core::buckets::Buckets;
use vireo_core::{
    AsyncSubmitter, Catalog, Deployer, Directory, Invoker, KeyValueStore, LiveRoutes, Name,
    NodeRegistry, ObjectStore, PricePlan, QueueAdmin, Records, RouteStore, ScheduleStore,
    SecretManager, SecretOpener, SourceMonitor, SourceProbe, SourceStore, SqliteDatabases,
};

use crate::GatewayLimits;

/// Renders the Prometheus text exposition for `GET /metrics`.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// Every dependency of the gateway, as the composition root wires them.
pub struct SharedState {
    pub catalog: Arc<dyn Catalog>,
    pub records: Arc<dyn Records>,
    pub deployer: Arc<dyn Deployer>,
    pub invoker: Arc<dyn Invoker>,
    /// The durable async queue, as the admin API reads and changes it.
    pub queue: Arc<dyn QueueAdmin>,
    pub schedules: Arc<dyn ScheduleStore>,
    /// Event sources: stored, probed at create, and their state on this node.
    pub sources: SourceServices,
    /// Routes and host claims, for the admin API.
    pub http_routes: Arc<dyn RouteStore>,
    /// The route table requests outside Vireo's own paths are matched against.
    pub published: Arc<LiveRoutes>,
    /// Seals secrets and reloads what they are granted to; never answers a value.
    pub secrets: Arc<dyn SecretManager>,
    /// The namespaces' key-value stores.
    pub key_value: Arc<dyn KeyValueStore>,
    /// The namespaces' object buckets.
    pub objects: Arc<dyn ObjectStore>,
    /// The namespaces' SQLite databases; none on a server sharing its store with others.
    pub sqlite: Option<Arc<dyn SqliteDatabases>>,
    /// Stores `Prefer: respond-async` invocations.
    pub submitter: Arc<dyn AsyncSubmitter>,
    /// Bumped whenever new invocation records and log lines are committed.
    pub log_events: watch::Receiver<u64>,
    /// Cancelled when the server starts shutting down, so endless streams end.
    pub shutdown: CancellationToken,
    /// The nodes sharing the store.
    pub nodes: Arc<dyn NodeRegistry>,
    /// Whether the store answered this node's last heartbeat: `Err` says why not.
    pub store_health: watch::Receiver<Result<(), String>>,
    pub limits: GatewayLimits,
    /// Prices for the usage report.
    pub pricing: PricePlan,
    /// Namespaces' quotas and the API keys, in memory.
    pub directory: Arc<Directory>,
    /// One token bucket per (API key, namespace).
    pub key_buckets: Arc<Buckets<(String, Name)>>,
    pub render_metrics: RenderMetrics,
    /// The web dashboard's settings; `None` turns it off.
    pub ui: Option<crate::UiSettings>,
    /// Signs and checks presigned object URLs.
    pub presign_key: crate::PresignKey,
}

/// What the sources API needs beside the catalog.
#[derive(Clone)]
pub struct SourceServices {
    pub store: Arc<dyn SourceStore>,
    pub probe: Arc<dyn SourceProbe>,
    pub monitor: Arc<dyn SourceMonitor>,
    /// Opens the secret a source names as its password, for the connection attempt.
    pub secrets: Arc<dyn SecretOpener>,
}

impl SharedState {
    fn access(&self) -> Access {
        Access {
            directory: self.directory.clone(),
            key_buckets: self.key_buckets.clone(),
        }
    }
}

/// The router's state. axum clones it for every request (more than once, with middleware), so
/// it is one `Arc`; handlers take their parts of it through the `FromRef`s below.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl AppState {
    pub fn new(shared: SharedState) -> Self {
        Self(Arc::new(shared))
    }

    pub(crate) fn limits(&self) -> GatewayLimits {
        self.0.limits
    }

    pub(crate) fn ui_settings(&self) -> Option<crate::UiSettings> {
        self.0.ui.clone()
    }
}

/// Who a bearer token belongs to and what its key may still spend: the admin routes' guard and
/// the invoke path both consult it.
#[derive(Clone)]
pub struct Access {
    pub directory: Arc<Directory>,
    pub key_buckets: Arc<Buckets<(String, Name)>>,
}

/// The namespaces' SQLite databases, if this server has them.
#[derive(Clone)]
pub struct FunctionSqlite(pub Option<Arc<dyn SqliteDatabases>>);

impl FunctionSqlite {
    /// The databases, or why this server has none.
    pub fn databases(&self) -> Result<&dyn SqliteDatabases, vireo_core::StoreError> {
        self.0
            .as_deref()
            .ok_or(vireo_core::StoreError::SqliteUnavailable)
    }
}

/// What following a function's logs waits on.
#[derive(Clone)]
pub struct LogFeed {
    /// Bumped whenever new invocation records and log lines are committed.
    pub events: watch::Receiver<u64>,
    /// Cancelled when the server starts shutting down.
    pub shutdown: CancellationToken,
}

/// What `GET /readyz` checks: the node is not shutting down and its store answers.
#[derive(Clone)]
pub struct Readiness {
    pub shutdown: CancellationToken,
    pub store_health: watch::Receiver<Result<(), String>>,
}

/// What a namespace's dashboard page shows beside its functions.
#[derive(Clone)]
pub struct NamespaceResources {
    pub key_value: Arc<dyn KeyValueStore>,
    pub secrets: Arc<dyn SecretManager>,
    pub objects: Arc<dyn ObjectStore>,
    pub directory: Arc<Directory>,
    pub sources: SourceServices,
}

/// What `/fn/...` needs: run a call now or store it for later, under the caller's limits.
#[derive(Clone)]
pub struct Invoking {
    pub invoker: Arc<dyn Invoker>,
    pub submitter: Arc<dyn AsyncSubmitter>,
    pub access: Access,
    pub limits: GatewayLimits,
    pub published: Arc<LiveRoutes>,
}

/// One `FromRef` per piece a handler can ask for: `$piece` is cut from the shared state by
/// `$cut`.
macro_rules! pieces {
    ($($piece:ty => |$shared:ident| $cut:expr;)*) => {
        $(
            impl FromRef<AppState> for $piece {
                fn from_ref(state: &AppState) -> Self {
                    let $shared: &SharedState = &state.0;
                    $cut
                }
            }
        )*
    };
}

pieces! {
    Arc<dyn Catalog> => |shared| shared.catalog.clone();
    Arc<dyn Records> => |shared| shared.records.clone();
    Arc<dyn Deployer> => |shared| shared.deployer.clone();
    Arc<dyn QueueAdmin> => |shared| shared.queue.clone();
    Arc<dyn ScheduleStore> => |shared| shared.schedules.clone();
    SourceServices => |shared| shared.sources.clone();
    Arc<dyn SecretManager> => |shared| shared.secrets.clone();
    Arc<dyn KeyValueStore> => |shared| shared.key_value.clone();
    Arc<dyn ObjectStore> => |shared| shared.objects.clone();
    FunctionSqlite => |shared| FunctionSqlite(shared.sqlite.clone());
    Arc<dyn NodeRegistry> => |shared| shared.nodes.clone();
    Arc<Directory> => |shared| shared.directory.clone();
    GatewayLimits => |shared| shared.limits;
    PricePlan => |shared| shared.pricing;
    CancellationToken => |shared| shared.shutdown.clone();
    RenderMetrics => |shared| shared.render_metrics.clone();
    Access => |shared| shared.access();
    Readiness => |shared| Readiness {
        shutdown: shared.shutdown.clone(),
        store_health: shared.store_health.clone(),
    };
    LogFeed => |shared| LogFeed {
        events: shared.log_events.clone(),
        shutdown: shared.shutdown.clone(),
    };
    Invoking => |shared| Invoking {
        invoker: shared.invoker.clone(),
        submitter: shared.submitter.clone(),
        access: shared.access(),
        limits: shared.limits,
        published: shared.published.clone(),
    };
    Arc<dyn RouteStore> => |shared| shared.http_routes.clone();
    crate::PresignKey => |shared| shared.presign_key.clone();
    NamespaceResources => |shared| NamespaceResources {
        key_value: shared.key_value.clone(),
        secrets: shared.secrets.clone(),
        objects: shared.objects.clone(),
        directory: shared.directory.clone(),
        sources: shared.sources.clone(),
    };
}
