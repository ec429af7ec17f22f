//! Vireo's HTTP surface: `/fn/...` invokes functions, `/v1/...` is the admin API (with its
//! OpenAPI document at `/v1/openapi.json`). Handlers are thin: parse, call a core seam, answer.

mod accept;
pub mod api;
mod auth;
mod body;
pub mod error;
mod extract;
mod heads;
mod invoke;
mod limits;
mod openapi;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, delete, get, post, put};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use vireo_core::buckets::Buckets;
use vireo_core::{
    AsyncSubmitter, Catalog, Deployer, Directory, Invoker, Name, QueueAdmin, Records,
    ScheduleStore, SecretManager,
};

pub use body::Pace;

/// Every response to an invocation carries its id here.
pub const INVOCATION_ID_HEADER: &str = "x-vireo-invocation-id";

/// Size limits the gateway enforces before anything reaches a function or the deployer.
#[derive(Debug, Clone, Copy)]
pub struct GatewayLimits {
    pub max_upload_bytes: u64,
    pub max_request_body_bytes: u64,
    /// Longer request targets (path and query) are answered 414.
    pub max_url_bytes: usize,
    /// Larger request heads are answered 431.
    pub max_header_bytes: usize,
    /// How fast every request body must arrive; slower ones are answered 408.
    pub body_pace: Pace,
}

/// What every handler shares. axum's `State` extractor clones it for each request (more than
/// once, with middleware), so it is one `Arc` rather than a dozen.
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl AppState {
    pub fn new(shared: SharedState) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

pub struct SharedState {
    pub catalog: Arc<dyn Catalog>,
    pub records: Arc<dyn Records>,
    pub deployer: Arc<dyn Deployer>,
    pub invoker: Arc<dyn Invoker>,
    /// The durable async queue, as the admin API reads and changes it.
    pub queue: Arc<dyn QueueAdmin>,
    pub schedules: Arc<dyn ScheduleStore>,
    /// Seals secrets and reloads what they are granted to; never answers a value.
    pub secrets: Arc<dyn SecretManager>,
    /// Stores `Prefer: respond-async` invocations.
    pub submitter: Arc<dyn AsyncSubmitter>,
    /// Bumped whenever new invocation records and log lines are committed.
    pub log_events: watch::Receiver<u64>,
    /// Cancelled when the server starts shutting down, so endless streams end.
    pub shutdown: CancellationToken,
    pub limits: GatewayLimits,
    /// Prices for the usage report.
    pub pricing: vireo_core::PricePlan,
    /// Namespaces' quotas and the API keys, in memory.
    pub directory: Arc<Directory>,
    /// One token bucket per (API key, namespace).
    pub key_buckets: Arc<Buckets<(String, Name)>>,
    /// Renders the Prometheus text exposition for `GET /metrics`.
    pub render_metrics: Arc<dyn Fn() -> String + Send + Sync>,
}

pub fn router(state: AppState) -> Router {
    let upload_limit =
        usize::try_from(state.limits.max_upload_bytes + api::versions::FORM_OVERHEAD)
            .unwrap_or(usize::MAX);
    let function = "/v1/namespaces/{namespace}/functions/{function}";
    let admin = Router::new()
        .route("/v1/openapi.json", get(openapi::document))
        .route(
            "/v1/namespaces",
            get(api::namespaces::list).post(api::namespaces::create),
        )
        .route(
            "/v1/namespaces/{namespace}",
            get(api::namespaces::get).delete(api::namespaces::delete),
        )
        .route(
            "/v1/namespaces/{namespace}/quotas",
            put(api::namespaces::set_quotas),
        )
        .route("/v1/keys", get(api::keys::list).post(api::keys::create))
        .route("/v1/keys/{id}", delete(api::keys::revoke))
        .route(
            "/v1/namespaces/{namespace}/functions",
            get(api::functions::list).post(api::functions::create),
        )
        .route(
            function,
            get(api::functions::get).delete(api::functions::delete),
        )
        .route(
            &format!("{function}/versions"),
            get(api::versions::list)
                .post(api::versions::deploy)
                .layer(DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            &format!("{function}/versions/{{version}}"),
            get(api::versions::get),
        )
        .route(
            &format!("{function}/aliases/{{alias}}"),
            put(api::aliases::set).delete(api::aliases::delete),
        )
        .route(
            &format!("{function}/invocations"),
            get(api::invocations::list),
        )
        .route(&format!("{function}/logs"), get(api::logs::read))
        .route(&format!("{function}/queue"), get(api::queue::counts))
        .route(&format!("{function}/dlq"), get(api::queue::dead))
        .route(
            &format!("{function}/dlq/redrive"),
            post(api::queue::redrive),
        )
        .route(
            &format!("{function}/retry-policy"),
            get(api::queue::policy).put(api::queue::set_policy),
        )
        .route("/v1/invocations/{id}", get(api::invocations::get))
        .route("/v1/usage", get(api::usage::report))
        .route(
            "/v1/namespaces/{namespace}/schedules",
            get(api::schedules::list).post(api::schedules::create),
        )
        .route(
            "/v1/namespaces/{namespace}/schedules/{name}",
            get(api::schedules::get).delete(api::schedules::delete),
        )
        .route(
            "/v1/namespaces/{namespace}/schedules/{name}/pause",
            post(api::schedules::pause),
        )
        .route(
            "/v1/namespaces/{namespace}/schedules/{name}/resume",
            post(api::schedules::resume),
        )
        .route(
            "/v1/namespaces/{namespace}/secrets",
            get(api::secrets::list),
        )
        .route(
            "/v1/namespaces/{namespace}/secrets/{name}",
            put(api::secrets::set).delete(api::secrets::delete),
        )
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::admin_routes,
        ))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.limits.body_pace,
            body::pace_admin_bodies,
        ));
    let invoke = Router::new()
        .route("/fn/{namespace}/{target}", any(invoke::root))
        .route("/fn/{namespace}/{target}/", any(invoke::root))
        .route("/fn/{namespace}/{target}/{*rest}", any(invoke::rest))
        // The invoke path enforces its own streaming limit instead of buffering.
        .layer(DefaultBodyLimit::disable());
    // For load balancers and orchestrators: no key, no store access, nothing to wait for.
    let health = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    let head_limits = heads::HeadLimits {
        max_url_bytes: state.limits.max_url_bytes,
        max_header_bytes: state.limits.max_header_bytes,
    };
    admin
        .merge(invoke)
        .merge(health)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            head_limits,
            heads::limit,
        ))
        .with_state(state)
}

async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        (state.render_metrics)(),
    )
}

/// The process is alive and its HTTP server answers.
async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Ready for traffic: 503 once shutdown has begun, so a load balancer stops sending requests.
async fn readyz(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    if state.shutdown.is_cancelled() {
        return (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"status": "draining"})),
        );
    }
    (
        axum::http::StatusCode::OK,
        axum::Json(serde_json::json!({"status": "ready"})),
    )
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not allowed on {}; the Allow header lists the methods that are",
            uri.path()
        ),
    )
}

async fn not_found(uri: axum::http::Uri) -> error::ApiError {
    error::ApiError::not_found(format!(
        "no route for {}: functions answer under /fn/{{namespace}}/{{function}}/..., the admin API under /v1 (see /v1/openapi.json)",
        uri.path()
    ))
}
