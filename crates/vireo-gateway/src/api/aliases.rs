//! `/v1/namespaces/{namespace}/functions/{function}/aliases/{alias}`: point an alias at a
//! version, or split its traffic over several by weight.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use vireo_core::{AliasTarget, Catalog, Deployer, StickyKey, WeightedVersion};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{AliasPath, ApiJson};
use crate::views::FunctionView;

/// Either `version` (all traffic to it) or `versions` with weights summing to 100, optionally
/// `sticky` so a caller's header or cookie keeps it on one version.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAlias {
    pub version: Option<u32>,
    pub versions: Option<Vec<WeightedVersion>>,
    pub sticky: Option<StickyKey>,
}

impl SetAlias {
    fn target(self) -> Result<AliasTarget, ApiError> {
        let target = match (self.version, self.versions) {
            (Some(version), None) => AliasTarget {
                sticky: self.sticky,
                ..AliasTarget::single(version)
            },
            (None, Some(versions)) => AliasTarget {
                versions,
                sticky: self.sticky,
            },
            _ => {
                return Err(ApiError::bad_request(
                    "give either `version` or `versions` (with weights summing to 100)",
                ));
            }
        };
        target
            .validate()
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(target)
    }
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
    let target = body.target()?;
    deployer
        .set_alias(&namespace, &function, &alias, &target)
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
