//! `/v1/namespaces`: the tenants of this server and their quotas. Admins create, change and
//! delete them; any key lists the namespaces it covers.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vireo_core::time::{now_micros, rfc3339};
use vireo_core::{Caller, Directory, NamespaceInfo, NamespaceQuotas, StoreError};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, NamespacePath, namespace};
use crate::state::FunctionSqlite;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNamespace {
    /// `[a-z0-9][a-z0-9-]{0,62}`
    pub name: String,
    #[serde(default, deserialize_with = "vireo_core::json::object")]
    pub quotas: NamespaceQuotas,
}

#[derive(Serialize, ToSchema)]
pub struct NamespaceView {
    pub name: String,
    pub created_at: String,
    pub quotas: NamespaceQuotas,
    /// Functions it holds now.
    pub functions: u64,
}

impl From<NamespaceInfo> for NamespaceView {
    fn from(info: NamespaceInfo) -> Self {
        Self {
            name: info.name.to_string(),
            created_at: rfc3339(info.created_at_us),
            quotas: info.quotas,
            functions: info.functions,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NamespaceList {
    pub namespaces: Vec<NamespaceView>,
}

#[utoipa::path(get, path = "/v1/namespaces", tag = "namespaces",
    responses((status = 200, body = NamespaceList, description = "The namespaces the key covers (all, for admin keys)")))]
pub async fn list(
    State(directory): State<Arc<Directory>>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<NamespaceList>, ApiError> {
    let namespaces = directory.store().list_namespaces().await?;
    Ok(Json(NamespaceList {
        namespaces: namespaces
            .into_iter()
            .filter(|ns| caller.sees(&ns.name))
            .map(NamespaceView::from)
            .collect(),
    }))
}

#[utoipa::path(post, path = "/v1/namespaces", tag = "namespaces", request_body = CreateNamespace,
    responses((status = 201, body = NamespaceView), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(directory): State<Arc<Directory>>,
    ApiJson(body): ApiJson<CreateNamespace>,
) -> Result<(StatusCode, Json<NamespaceView>), ApiError> {
    let name = namespace(&body.name)?;
    body.quotas.validate()?;
    let created = directory
        .create_namespace(&name, &body.quotas, now_micros())
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}", tag = "namespaces",
    params(("namespace" = String, Path)),
    responses((status = 200, body = NamespaceView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(directory): State<Arc<Directory>>,
    NamespacePath(ns): NamespacePath,
) -> Result<Json<NamespaceView>, ApiError> {
    let info = directory.store().get_namespace(&ns).await?;
    Ok(Json(info.into()))
}

#[utoipa::path(put, path = "/v1/namespaces/{namespace}/quotas", tag = "namespaces",
    params(("namespace" = String, Path)), request_body = NamespaceQuotas,
    responses((status = 200, body = NamespaceView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_quotas(
    State(directory): State<Arc<Directory>>,
    NamespacePath(ns): NamespacePath,
    ApiJson(quotas): ApiJson<NamespaceQuotas>,
) -> Result<Json<NamespaceView>, ApiError> {
    quotas.validate()?;
    let changed = directory.set_quotas(&ns, &quotas).await?;
    Ok(Json(changed.into()))
}

#[utoipa::path(delete, path = "/v1/namespaces/{namespace}", tag = "namespaces",
    params(("namespace" = String, Path)),
    responses((status = 204, description = "Deleted, with its records and logs; keys that named it are revoked"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "It still holds functions, schedules, secrets or SQLite databases")))]
pub async fn delete(
    State(directory): State<Arc<Directory>>,
    State(sqlite): State<FunctionSqlite>,
    NamespacePath(ns): NamespacePath,
) -> Result<StatusCode, ApiError> {
    if let Some(databases) = &sqlite.0 {
        // Data a function kept is not deleted by accident: the databases go first, by name.
        let held: Vec<String> = databases
            .list(&ns)
            .await?
            .into_iter()
            .filter(|database| database.bytes > 0)
            .map(|database| database.name.to_string())
            .collect();
        if !held.is_empty() {
            return Err(StoreError::NamespaceNotEmpty {
                namespace: ns,
                what: format!("SQLite databases ({})", held.join(", ")),
            }
            .into());
        }
    }
    directory.delete_namespace(&ns, now_micros()).await?;
    if let Some(databases) = &sqlite.0 {
        databases.forget_namespace(&ns).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
