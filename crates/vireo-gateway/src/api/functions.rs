//! `/v1/namespaces/{namespace}/functions`: create, list, get and delete functions.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use vireo_core::FunctionInfo;
use vireo_core::time::now_micros;

use super::{function, function_path, namespace};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::views::{FunctionList, FunctionView};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFunction {
    /// `[a-z0-9][a-z0-9-]{0,62}`
    pub name: String,
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/functions", tag = "functions",
    params(("namespace" = String, Path)),
    responses((status = 200, body = FunctionList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    ApiPath(ns): ApiPath<String>,
) -> Result<Json<FunctionList>, ApiError> {
    let functions = state.catalog.list_functions(&namespace(&ns)?).await?;
    Ok(Json(FunctionList {
        functions: functions
            .into_iter()
            .map(|info| view(&state, info))
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/namespaces/{namespace}/functions", tag = "functions",
    params(("namespace" = String, Path)), request_body = CreateFunction,
    responses((status = 201, body = FunctionView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    ApiPath(ns): ApiPath<String>,
    ApiJson(body): ApiJson<CreateFunction>,
) -> Result<(StatusCode, Json<FunctionView>), ApiError> {
    let created = state
        .catalog
        .create_function(&namespace(&ns)?, &function(&body.name)?, now_micros())
        .await?;
    Ok((StatusCode::CREATED, Json(view(&state, created))))
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/functions/{function}", tag = "functions",
    params(("namespace" = String, Path), ("function" = String, Path)),
    responses((status = 200, body = FunctionView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<(String, String)>,
) -> Result<Json<FunctionView>, ApiError> {
    let (ns, f) = function_path(&path)?;
    let info = state.catalog.get_function(&ns, &f).await?;
    Ok(Json(view(&state, info)))
}

#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/functions/{function}", tag = "functions",
    params(("namespace" = String, Path), ("function" = String, Path)),
    responses((status = 204, description = "Deleted with its versions, aliases, invocation records and logs"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (ns, f) = function_path(&path)?;
    state.deployer.delete(&ns, &f).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The stored function plus what this server has loaded of it.
pub(crate) fn view(state: &AppState, info: FunctionInfo) -> FunctionView {
    let warm = state.deployer.warm_versions(&info.namespace, &info.name);
    FunctionView::new(info, warm)
}
