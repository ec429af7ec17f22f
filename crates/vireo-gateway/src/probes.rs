//! For operators, load balancers and orchestrators: liveness, readiness and the metrics
//! exposition.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::state::RenderMetrics;

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

/// Ready for traffic: 503 once shutdown has begun, so a load balancer stops sending requests.
pub async fn readyz(State(shutdown): State<CancellationToken>) -> (StatusCode, Json<Value>) {
    if shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining"})),
        );
    }
    (StatusCode::OK, Json(json!({"status": "ready"})))
}
