//! For operators, load balancers and orchestrators: liveness, readiness and the metrics
//! exposition.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::state::{Readiness, RenderMetrics};

/// `GET /metrics`: the Prometheus text exposition.
pub async fn metrics(State(render): State<RenderMetrics>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(),
    )
}

/// The process is alive and its HTTP server answers.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Ready for traffic: the store answered the node's last heartbeat (so its schema is migrated
/// and it is reachable) and the node is not shutting down; else 503, so a load balancer sends
/// requests elsewhere. Cheap: it reads what the heartbeat found, never the database.
pub async fn readyz(State(readiness): State<Readiness>) -> (StatusCode, Json<Value>) {
    if readiness.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        );
    }
    if let Err(reason) = &*readiness.store_health.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "store_unavailable", "reason": reason})),
        );
    }
    (StatusCode::OK, Json(json!({"status": "ready"})))
}
