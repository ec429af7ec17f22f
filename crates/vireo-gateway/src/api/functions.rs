//! `/v1/namespaces/{namespace}/functions`: create, list, get and delete functions.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use vireo_core::time::now_micros;
use vireo_core::{Catalog, Deployer, FunctionInfo};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, FunctionPath, NamespacePath, function};
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
    State(catalog): State<Arc<dyn Catalog>>,
    State(deployer): State<Arc<dyn Deployer>>,
    NamespacePath(ns): NamespacePath,
) -> Result<Json<FunctionList>, ApiError> {
    let functions = catalog.list_functions(&ns).await?;
    Ok(Json(FunctionList {
        functions: functions
            .into_iter()
            .map(|info| view(deployer.as_ref(), info))
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/namespaces/{namespace}/functions", tag = "functions",
    params(("namespace" = String, Path)), request_body = CreateFunction,
    responses((status = 201, body = FunctionView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(catalog): State<Arc<dyn Catalog>>,
    State(deployer): State<Arc<dyn Deployer>>,
    NamespacePath(ns): NamespacePath,
    ApiJson(body): ApiJson<CreateFunction>,
) -> Result<(StatusCode, Json<FunctionView>), ApiError> {
    let created = catalog
        .create_function(&ns, &function(&body.name)?, now_micros())
        .await?;
    Ok((StatusCode::CREATED, Json(view(deployer.as_ref(), created))))
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/functions/{function}", tag = "functions",
    params(("namespace" = String, Path), ("function" = String, Path)),
    responses((status = 200, body = FunctionView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(catalog): State<Arc<dyn Catalog>>,
    State(deployer): State<Arc<dyn Deployer>>,
    FunctionPath {
        namespace,
        function,
    }: FunctionPath,
) -> Result<Json<FunctionView>, ApiError> {
    let info = catalog.get_function(&namespace, &function).await?;
    Ok(Json(view(deployer.as_ref(), info)))
}

#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/functions/{function}", tag = "functions",
    params(("namespace" = String, Path), ("function" = String, Path)),
    responses((status = 204, description = "Deleted with its versions, aliases, invocation records and logs"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(deployer): State<Arc<dyn Deployer>>,
    FunctionPath {
        namespace,
        function,
    }: FunctionPath,
) -> Result<StatusCode, ApiError> {
    deployer.delete(&namespace, &function).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The stored function plus what this server has loaded of it.
pub(crate) fn view(deployer: &dyn Deployer, info: FunctionInfo) -> FunctionView {
    let warm = deployer.warm_versions(&info.namespace, &info.name);
    let serving_once = deployer.reuse_fallback_versions(&info.namespace, &info.name);
    FunctionView::new(info, warm, serving_once)
}
