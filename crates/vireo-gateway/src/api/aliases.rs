//! `/v1/namespaces/{namespace}/functions/{function}/aliases/{alias}`: point an alias at a version.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use vireo_core::{Catalog, Deployer};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{AliasPath, ApiJson};
use crate::views::FunctionView;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAlias {
    pub version: u32,
}

#[utoipa::path(put, path = "/v1/namespaces/{namespace}/functions/{function}/aliases/{alias}", tag = "aliases",
    params(("namespace" = String, Path), ("function" = String, Path), ("alias" = String, Path)),
    request_body = SetAlias,
    responses((status = 200, body = FunctionView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set(
    State(catalog): State<Arc<dyn Catalog>>,
    State(deployer): State<Arc<dyn Deployer>>,
    AliasPath {
        namespace,
        function,
        alias,
    }: AliasPath,
    ApiJson(body): ApiJson<SetAlias>,
) -> Result<Json<FunctionView>, ApiError> {
    deployer
        .set_alias(&namespace, &function, &alias, body.version)
        .await?;
    let info = catalog.get_function(&namespace, &function).await?;
    Ok(Json(super::functions::view(deployer.as_ref(), info)))
}

#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/functions/{function}/aliases/{alias}", tag = "aliases",
    params(("namespace" = String, Path), ("function" = String, Path), ("alias" = String, Path)),
    responses((status = 204, description = "Alias removed"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(deployer): State<Arc<dyn Deployer>>,
    AliasPath {
        namespace,
        function,
        alias,
    }: AliasPath,
) -> Result<StatusCode, ApiError> {
    deployer.delete_alias(&namespace, &function, &alias).await?;
    Ok(StatusCode::NO_CONTENT)
}
