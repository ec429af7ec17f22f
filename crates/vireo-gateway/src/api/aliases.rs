//! `/v1/namespaces/{namespace}/functions/{function}/aliases/{alias}`: point an alias at a version.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use vireo_core::{AliasName, Name};

use super::function_path;
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath};
use crate::views::FunctionView;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAlias {
    pub version: u32,
}

fn alias_path(
    (ns, f, alias): (String, String, String),
) -> Result<(Name, Name, AliasName), ApiError> {
    let (ns, f) = function_path(&(ns, f))?;
    let alias = AliasName::parse(&alias)?;
    if alias.is_latest() {
        return Err(ApiError::bad_request(
            "`latest` always points at the newest version and cannot be changed",
        ));
    }
    Ok((ns, f, alias))
}

#[utoipa::path(put, path = "/v1/namespaces/{namespace}/functions/{function}/aliases/{alias}", tag = "aliases",
    params(("namespace" = String, Path), ("function" = String, Path), ("alias" = String, Path)),
    request_body = SetAlias,
    responses((status = 200, body = FunctionView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<(String, String, String)>,
    ApiJson(body): ApiJson<SetAlias>,
) -> Result<Json<FunctionView>, ApiError> {
    let (ns, f, alias) = alias_path(path)?;
    state
        .deployer
        .set_alias(&ns, &f, &alias, body.version)
        .await?;
    let info = state.catalog.get_function(&ns, &f).await?;
    Ok(Json(super::functions::view(&state, info)))
}

#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/functions/{function}/aliases/{alias}", tag = "aliases",
    params(("namespace" = String, Path), ("function" = String, Path), ("alias" = String, Path)),
    responses((status = 204, description = "Alias removed"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(path): ApiPath<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let (ns, f, alias) = alias_path(path)?;
    state.deployer.delete_alias(&ns, &f, &alias).await?;
    Ok(StatusCode::NO_CONTENT)
}
