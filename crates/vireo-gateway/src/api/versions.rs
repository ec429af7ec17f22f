//! `/v1/namespaces/{namespace}/functions/{function}/versions`: deploy and list versions.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::multipart::MultipartError;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use utoipa::ToSchema;
use vireo_core::{
    AliasName, Catalog, Deployer, ErrorClass, Name, RequestBodyError, VersionSelector,
    VersionSettings,
};

use super::inherit;
use crate::GatewayLimits;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiMultipart, FunctionPath, VersionPath};
use crate::views::{VersionList, VersionView};

/// The multipart form of a deploy.
#[derive(ToSchema)]
#[allow(
    dead_code,
    reason = "describes the multipart form for the OpenAPI document only"
)]
pub struct DeployForm {
    /// JSON settings; missing fields keep the latest version's (the defaults for a function's
    /// first version: memory_mib 128, timeout_ms 10000).
    settings: Option<VersionSettings>,
    /// `true` to start from the defaults instead of the latest version's settings.
    reset_settings: Option<bool>,
    /// The component bytes (`application/wasm`), at most the server's upload limit (50 MiB).
    #[schema(value_type = String, format = Binary)]
    component: Vec<u8>,
}

#[utoipa::path(post, path = "/v1/namespaces/{namespace}/functions/{function}/versions", tag = "versions",
    params(("namespace" = String, Path), ("function" = String, Path)),
    request_body(content = DeployForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "A new version", body = VersionView),
        (status = 200, description = "Identical to the latest version, which is returned", body = VersionView),
        (status = 400, description = "Bad name, settings or form", body = ErrorBody),
        (status = 413, description = "Component over the upload limit", body = ErrorBody),
        (status = 422, description = "Not a component Vireo can run; the message says why", body = ErrorBody)))]
pub async fn deploy(
    State(deployer): State<Arc<dyn Deployer>>,
    State(catalog): State<Arc<dyn Catalog>>,
    State(limits): State<GatewayLimits>,
    FunctionPath {
        namespace,
        function,
    }: FunctionPath,
    headers: HeaderMap,
    ApiMultipart(mut form): ApiMultipart,
) -> Result<(StatusCode, Json<VersionView>), ApiError> {
    let limit = limits.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit + FORM_OVERHEAD) {
        return Err(too_large(limit));
    }

    let mut given = Bytes::new();
    let mut reset = false;
    let mut component: Option<Bytes> = None;
    while let Some(field) = form.next_field().await.map_err(|e| form_error(e, limit))? {
        match field.name() {
            Some("settings") => given = field.bytes().await.map_err(|e| form_error(e, limit))?,
            Some("reset_settings") => {
                let text = field.text().await.map_err(|e| form_error(e, limit))?;
                reset = match text.trim() {
                    "true" => true,
                    "false" => false,
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "reset_settings must be true or false, not {other:?}"
                        )));
                    }
                };
            }
            Some("component") => {
                component = Some(field.bytes().await.map_err(|e| form_error(e, limit))?)
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unexpected form field {:?}: send `settings` (JSON), `component` (bytes) and optionally `reset_settings`",
                    other.unwrap_or("")
                )));
            }
        }
    }
    let component = component.ok_or_else(|| {
        ApiError::bad_request("the form has no `component` field with the component bytes")
    })?;
    if component.len() as u64 > limit {
        return Err(too_large(limit));
    }
    let latest = latest_settings(catalog.as_ref(), &namespace, &function).await?;
    let base = if reset {
        VersionSettings::default()
    } else {
        latest.clone()
    };
    let settings = inherit::settings_over(&base, &given)?;
    let changed = inherit::changes(&latest, &settings);
    let deployed = deployer
        .deploy(&namespace, &function, component, settings)
        .await?;
    let status = if deployed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut view = VersionView::from(deployed.version);
    view.created = Some(deployed.created);
    view.settings_changed = Some(changed);
    Ok((status, Json(view)))
}

/// The settings of the function's latest version; the defaults when it has none (or does not
/// exist yet: its first deploy creates it).
async fn latest_settings(
    catalog: &dyn Catalog,
    namespace: &Name,
    function: &Name,
) -> Result<VersionSettings, ApiError> {
    let latest = VersionSelector::Alias(AliasName::latest());
    match catalog.resolve_version(namespace, function, &latest).await {
        Ok(version) => Ok(version.settings),
        Err(error) if error.class() == ErrorClass::NotFound => Ok(VersionSettings::default()),
        Err(error) => Err(error.into()),
    }
}

/// Room for the form's boundaries and the settings part on top of the component itself.
pub const FORM_OVERHEAD: u64 = 1 << 20;

fn too_large(limit: u64) -> ApiError {
    ApiError::payload_too_large(format!(
        "the component is larger than this server's upload limit of {} MiB",
        limit >> 20
    ))
}

fn form_error(error: MultipartError, limit: u64) -> ApiError {
    if let Some(fault) = RequestBodyError::find(&error) {
        return fault.clone().into();
    }
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(limit)
    } else {
        ApiError::bad_request(format!("invalid multipart form: {}", error.body_text()))
    }
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/functions/{function}/versions", tag = "versions",
    params(("namespace" = String, Path), ("function" = String, Path)),
    responses((status = 200, body = VersionList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(catalog): State<Arc<dyn Catalog>>,
    FunctionPath {
        namespace,
        function,
    }: FunctionPath,
) -> Result<Json<VersionList>, ApiError> {
    let versions = catalog.list_versions(&namespace, &function).await?;
    Ok(Json(VersionList {
        versions: versions.into_iter().map(VersionView::from).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/functions/{function}/versions/{version}", tag = "versions",
    params(("namespace" = String, Path), ("function" = String, Path), ("version" = String, Path, description = "A number or an alias")),
    responses((status = 200, body = VersionView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(catalog): State<Arc<dyn Catalog>>,
    VersionPath {
        namespace,
        function,
        selector,
    }: VersionPath,
) -> Result<Json<VersionView>, ApiError> {
    Ok(Json(
        catalog
            .resolve_version(&namespace, &function, &selector)
            .await?
            .into(),
    ))
}
