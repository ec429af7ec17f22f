//! A function's async queue: counts by status, the dead-letter queue and its redrive, and the
//! retry policy.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vireo_core::time::now_micros;
use vireo_core::{QueueAdmin, QueueCounts, RetryPolicy};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, FunctionPath, invocation_id};
use crate::views::{AsyncInvocationList, AsyncInvocationView};

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/functions/{function}/queue", tag = "async",
    params(("namespace" = String, Path), ("function" = String, Path)),
    responses((status = 200, body = QueueCounts), (status = 404, body = ErrorBody)))]
pub async fn counts(
    State(queue): State<Arc<dyn QueueAdmin>>,
    FunctionPath {
        namespace,
        function,
    }: FunctionPath,
) -> Result<Json<QueueCounts>, ApiError> {
    Ok(Json(queue.queue_counts(&namespace, &function).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeadParams {
    /// At most this many, oldest first (default 100, at most 1000).
    limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/functions/{function}/dlq", tag = "async",
    params(("namespace" = String, Path), ("function" = String, Path), DeadParams),
    responses((status = 200, body = AsyncInvocationList), (status = 404, body = ErrorBody)))]
pub async fn dead(
    State(queue): State<Arc<dyn QueueAdmin>>,
    FunctionPath {
        namespace,
        function,
    }: FunctionPath,
    ApiQuery(params): ApiQuery<DeadParams>,
) -> Result<Json<AsyncInvocationList>, ApiError> {
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let dead = queue.list_dead(&namespace, &function, limit).await?;
    Ok(Json(AsyncInvocationList {
        invocations: dead
            .into_iter()
            .map(|invocation| AsyncInvocationView::new(invocation, None))
            .collect(),
    }))
}

/// Which dead invocations to queue again: `ids`, or every one with `all`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redrive {
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub all: bool,
}

#[derive(Serialize, ToSchema)]
pub struct Redriven {
    /// Dead invocations queued again, with fresh attempts and event age.
    pub redriven: u64,
}

#[utoipa::path(post, path = "/v1/namespaces/{namespace}/functions/{function}/dlq/redrive", tag = "async",
    params(("namespace" = String, Path), ("function" = String, Path)), request_body = Redrive,
    responses((status = 200, body = Redriven), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn redrive(
    State(queue): State<Arc<dyn QueueAdmin>>,
    FunctionPath {
        namespace,
        function,
    }: FunctionPath,
    ApiJson(body): ApiJson<Redrive>,
) -> Result<Json<Redriven>, ApiError> {
    let ids = match (body.all, body.ids.is_empty()) {
        (true, true) => None,
        (false, false) => Some(
            body.ids
                .iter()
                .map(|id| invocation_id(id))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        _ => {
            return Err(ApiError::bad_request(
                "give either \"ids\" (a list of invocation ids) or \"all\": true",
            ));
        }
    };
    let redriven = queue
        .redrive(&namespace, &function, ids.as_deref(), now_micros())
        .await?;
    Ok(Json(Redriven { redriven }))
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/functions/{function}/retry-policy", tag = "async",
    params(("namespace" = String, Path), ("function" = String, Path)),
    responses((status = 200, body = RetryPolicy), (status = 404, body = ErrorBody)))]
pub async fn policy(
    State(queue): State<Arc<dyn QueueAdmin>>,
    FunctionPath {
        namespace,
        function,
    }: FunctionPath,
) -> Result<Json<RetryPolicy>, ApiError> {
    Ok(Json(queue.retry_policy(&namespace, &function).await?))
}

/// Replaces the policy; fields left out take their defaults.
#[utoipa::path(put, path = "/v1/namespaces/{namespace}/functions/{function}/retry-policy", tag = "async",
    params(("namespace" = String, Path), ("function" = String, Path)), request_body = RetryPolicy,
    responses((status = 200, body = RetryPolicy), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_policy(
    State(queue): State<Arc<dyn QueueAdmin>>,
    FunctionPath {
        namespace,
        function,
    }: FunctionPath,
    ApiJson(policy): ApiJson<RetryPolicy>,
) -> Result<Json<RetryPolicy>, ApiError> {
    policy.validate()?;
    queue
        .set_retry_policy(&namespace, &function, &policy)
        .await?;
    Ok(Json(policy))
}
