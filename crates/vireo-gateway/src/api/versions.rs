//! `/v1/namespaces/{namespace}/functions/{function}/versions`: deploy and list versions.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::extract::multipart::MultipartError;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use utoipa::ToSchema;
use vireo_core::{
    AliasName, Catalog, Deployer, ErrorClass, Name, RequestBodyError, VersionInfo, VersionSelector,
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
    /// The component bytes (`application/wasm`), at most the server's upload limit (50 MiB);
    /// without it, the new version keeps the latest version's component (new settings only).
    #[schema(value_type = String, format = Binary, required = false)]
    component: Option<Vec<u8>>,
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
    if component
        .as_ref()
        .is_some_and(|bytes| bytes.len() as u64 > limit)
    {
        return Err(too_large(limit));
    }
    let latest = latest_version(catalog.as_ref(), &namespace, &function).await?;
    let latest_settings = latest
        .as_ref()
        .map_or_else(VersionSettings::default, |version| version.settings.clone());
    let base = if reset {
        VersionSettings::default()
    } else {
        latest_settings.clone()
    };
    let settings = inherit::settings_over(&base, &given)?;
    let changed = latest_settings.changes_to(&settings);
    let deployed = match (component, &latest) {
        (Some(component), _) => {
            deployer
                .deploy(&namespace, &function, component, settings)
                .await?
        }
        (None, Some(latest)) => deployer.reconfigure(latest, settings).await?,
        (None, None) => {
            return Err(ApiError::bad_request(format!(
                "the form has no `component` field, and {namespace}/{function} has no version whose component a new version could keep"
            )));
        }
    };
    let status = if deployed.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut view = VersionView::from(deployed.version);
    view.created = Some(deployed.created);
    view.settings_changed = Some(changed);
    view.unimplemented_imports = Some(deployed.unimplemented_imports);
    view.warnings = Some(deployed.warnings);
    Ok((status, Json(view)))
}

/// The function's latest version; none when it has none (or does not exist yet: its first
/// deploy creates it).
async fn latest_version(
    catalog: &dyn Catalog,
    namespace: &Name,
    function: &Name,
) -> Result<Option<VersionInfo>, ApiError> {
    let latest = VersionSelector::Alias(AliasName::latest());
    match catalog.resolve_version(namespace, function, &latest).await {
        Ok(version) => Ok(Some(version)),
        Err(error) if error.class() == ErrorClass::NotFound => Ok(None),
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
