//! Vireo's HTTP surface: `/fn/...` invokes functions, `/v1/...` is the admin API (with its
//! OpenAPI document at `/v1/openapi.json`), `/ui` the web dashboard over the same seams.
//! Handlers are thin: parse, call a core seam, answer.

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
mod presigned;
mod probes;
mod published;
mod routes;
mod state;
mod ui;
pub mod views;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{any, get};

pub use body::Pace;
pub use presigned::PresignKey;
pub use published::{ROUTE_DURATION, ROUTE_REQUESTS};
pub use state::{AppState, RenderMetrics, SharedState, SourceServices};
pub use ui::UiSettings;

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
    /// The largest key and value the key-value API takes.
    pub key_value: vireo_core::KeyValueLimits,
    /// The largest object the buckets API takes.
    pub objects: vireo_core::ObjectLimits,
    /// The server's bound on a namespace's queued async invocations, which bucket
    /// notifications count against.
    pub max_pending_per_namespace: u64,
}

pub fn router(state: AppState) -> Router {
    let limits = state.limits();
    let admin = routes::admin(&state)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            limits.body_pace,
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
        .route("/healthz", get(probes::healthz))
        .route("/readyz", get(probes::readyz));
    let head_limits = heads::HeadLimits {
        max_url_bytes: limits.max_url_bytes,
        max_header_bytes: limits.max_header_bytes,
    };
    let mut routes = admin.merge(invoke).merge(health).merge(presigned::router());
    if let Some(dashboard) = ui::router(&state) {
        routes = routes.merge(dashboard);
    }
    routes
        // Everything else may be a published route; the rest is 404 JSON.
        .fallback(published::fallback)
        .layer(axum::middleware::from_fn_with_state(
            head_limits,
            heads::limit,
        ))
        .with_state(state)
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
