//! `/v1/namespaces/{namespace}/secrets`: set, list and delete secrets. There is deliberately no
//! route that answers a value: only functions granted a secret ever see it.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vireo_core::time::rfc3339;
use vireo_core::{SecretInfo, SecretManager, SecretValue};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, NamespacePath, SecretPath};

/// No `Debug`: the value must never be printed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSecret {
    /// The value, at most 64 KiB of UTF-8, not empty, without NUL bytes.
    pub value: String,
}

/// A secret as the API shows it: its name and times, never its value.
#[derive(Serialize, ToSchema)]
pub struct SecretView {
    pub namespace: String,
    pub name: String,
    pub created_at: String,
    pub created_at_us: i64,
    pub updated_at: String,
    pub updated_at_us: i64,
}

impl From<SecretInfo> for SecretView {
    fn from(info: SecretInfo) -> Self {
        Self {
            namespace: info.namespace.to_string(),
            name: info.name.to_string(),
            created_at: rfc3339(info.created_at_us),
            created_at_us: info.created_at_us,
            updated_at: rfc3339(info.updated_at_us),
            updated_at_us: info.updated_at_us,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SecretList {
    pub secrets: Vec<SecretView>,
}

/// Creates or replaces a secret; invocations that start after the answer see the new value.
#[utoipa::path(put, path = "/v1/namespaces/{namespace}/secrets/{name}", tag = "secrets",
    params(("namespace" = String, Path), ("name" = String, Path, description = "Letters, digits and _, not starting with a digit")),
    request_body = SetSecret,
    responses(
        (status = 201, description = "Created"),
        (status = 204, description = "Replaced"),
        (status = 400, description = "Bad name, or an empty value or one with a NUL byte", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 413, description = "Value over 64 KiB", body = ErrorBody)))]
pub async fn set(
    State(secrets): State<Arc<dyn SecretManager>>,
    SecretPath { namespace, name }: SecretPath,
    ApiJson(body): ApiJson<SetSecret>,
) -> Result<StatusCode, ApiError> {
    let value = SecretValue::new(body.value)?;
    let created = secrets.set_secret(&namespace, &name, value).await?;
    Ok(if created {
        StatusCode::CREATED
    } else {
        StatusCode::NO_CONTENT
    })
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/secrets", tag = "secrets",
    params(("namespace" = String, Path)),
    responses((status = 200, description = "Names and times, by name; never values", body = SecretList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(secrets): State<Arc<dyn SecretManager>>,
    NamespacePath(ns): NamespacePath,
) -> Result<Json<SecretList>, ApiError> {
    let listed = secrets.list_secrets(&ns).await?;
    Ok(Json(SecretList {
        secrets: listed.into_iter().map(SecretView::from).collect(),
    }))
}

/// Deletes a secret; versions granted it fail to load (503 naming it) from then on.
#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/secrets/{name}", tag = "secrets",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(secrets): State<Arc<dyn SecretManager>>,
    SecretPath { namespace, name }: SecretPath,
) -> Result<StatusCode, ApiError> {
    secrets.delete_secret(&namespace, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
