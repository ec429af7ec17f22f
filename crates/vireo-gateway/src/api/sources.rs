//! `/v1/namespaces/{namespace}/sources`: event sources, whose broker messages become async
//! invocations. A source is connected to once at create, so a wrong URL, refused credentials or
//! a missing stream is answered at once with what is wrong.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vireo_core::message_filter::MessageFilter;
use vireo_core::time::{now_micros, rfc3339};
use vireo_core::{
    Catalog, Name, NewSource, SecretName, Source, SourceKind, SourceProbeError, SourceSpec,
    SourceState, SourceStatus, StoreError, VersionSelector,
};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, NamespacePath, SourcePath};
use crate::state::SourceServices;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSource {
    /// Name of the source in the namespace.
    pub name: String,
    /// `function`, `function@alias` or `function@version`.
    pub function: String,
    #[schema(value_type = String, example = "redis")]
    pub kind: String,
    /// The broker's URL, without a password (`redis://127.0.0.1:6379/0`).
    pub url: String,
    /// What is read: a Redis stream key, a JetStream stream, an MQTT topic filter, a PostgreSQL
    /// table, a RabbitMQ queue.
    pub stream: String,
    /// JetStream only: read just the stream's subjects matching this filter (`orders.>`).
    pub subject: Option<String>,
    /// A namespace secret holding the broker's password.
    pub password_secret: Option<String>,
    /// Most messages taken per receive (default 100, at most 1000); when batching, most
    /// messages per invocation.
    pub batch_size: Option<u32>,
    /// Batch messages: each invocation gets a JSON array of up to `batch_size` messages,
    /// gathered for at most this many milliseconds (at most 5000); one invocation per message
    /// when absent.
    pub batch_window_ms: Option<u32>,
    /// Only messages whose JSON body matches invoke the function, the others are acknowledged
    /// and counted as filtered: an object naming fields, each a list of patterns (a value,
    /// `{"prefix": …}`, `{"suffix": …}`, `{"exists": bool}`, `{"numeric": [">", 0]}`,
    /// `{"anything-but": [...]}`) or an object of its own fields, in the style of Lambda's
    /// filter criteria.
    #[schema(value_type = Option<Object>, example = json!({"type": ["order.created"]}))]
    pub filter: Option<serde_json::Value>,
    /// MQTT only: the subscription's QoS, 0 (best effort: nothing is acknowledged, a message
    /// in flight when Vireo stops is lost) or 1 (at least once, the default).
    #[schema(minimum = 0, maximum = 1)]
    pub qos: Option<u8>,
}

#[derive(Serialize, ToSchema)]
pub struct SourceView {
    pub namespace: String,
    pub name: String,
    /// The function it invokes, with `@alias` or `@version` when not `latest`.
    pub function: String,
    pub kind: SourceKind,
    pub url: String,
    pub stream: String,
    pub subject: Option<String>,
    pub password_secret: Option<String>,
    pub batch_size: u32,
    pub batch_window_ms: Option<u32>,
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// MQTT only: the subscription's QoS (1 unless created with 0).
    pub qos: Option<u8>,
    pub paused: bool,
    /// On the node that answered: `running`, `paused` or `failing`; `starting` until its
    /// runner has first connected; `pausing` once paused, until its runner here has stopped.
    pub state: String,
    pub received: u64,
    pub acknowledged: u64,
    /// Messages acknowledged per second over the last 10 seconds, on the node that answered.
    pub acknowledged_per_second: f64,
    pub refused: u64,
    /// Messages acknowledged without an invocation: their body did not match the filter.
    pub filtered: u64,
    pub lag: Option<u64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub created_at: String,
}

impl SourceView {
    fn new(source: Source, status: Option<SourceStatus>) -> Self {
        let function = match &source.selector {
            VersionSelector::Alias(alias) if alias.is_latest() => source.function.to_string(),
            selector => format!("{}@{selector}", source.function),
        };
        let state = match (&status, source.paused) {
            // Its runner here stops at the next reread of the sources (`sources.poll_ms`).
            (Some(_), true) => "pausing",
            (None, true) => "paused",
            (Some(status), false) => match status.state {
                SourceState::Starting => "starting",
                SourceState::Running => "running",
                SourceState::Paused => "paused",
                SourceState::Failing => "failing",
            },
            (None, false) => "starting",
        };
        let status = status.as_ref();
        Self {
            namespace: source.namespace.to_string(),
            name: source.name.to_string(),
            function,
            kind: source.spec.kind,
            url: source.spec.url,
            stream: source.spec.stream,
            subject: source.spec.subject,
            password_secret: source.spec.password_secret.map(String::from),
            batch_size: source.spec.batch_size,
            batch_window_ms: source.spec.batch_window_ms,
            filter: source.spec.filter.map(|filter| filter.as_json().clone()),
            qos: match source.spec.kind {
                SourceKind::Mqtt => Some(source.spec.qos.unwrap_or(1)),
                _ => None,
            },
            paused: source.paused,
            state: state.to_string(),
            received: status.map_or(0, |s| s.received),
            acknowledged: status.map_or(0, |s| s.acknowledged),
            acknowledged_per_second: status.map_or(0.0, SourceStatus::acknowledged_per_second),
            refused: status.map_or(0, |s| s.refused),
            filtered: status.map_or(0, |s| s.filtered),
            lag: status.and_then(|s| s.lag),
            last_error: status.and_then(|s| s.last_error.clone()),
            last_error_at: status.and_then(|s| s.last_error_at_us).map(rfc3339),
            created_at: rfc3339(source.created_at_us),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SourceList {
    pub sources: Vec<SourceView>,
}

fn view(services: &SourceServices, source: Source) -> SourceView {
    let status = services.monitor.status(&source.namespace, &source.name);
    SourceView::new(source, status)
}

fn spec(body: &CreateSource) -> Result<SourceSpec, ApiError> {
    let kind = SourceKind::parse(&body.kind).ok_or_else(|| {
        let built: Vec<_> = SourceKind::ALL.iter().map(|kind| kind.as_str()).collect();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_source",
            format!(
                "kind {:?} is not supported; this server reads {}",
                body.kind,
                built.join(", ")
            ),
        )
    })?;
    let password_secret = body
        .password_secret
        .as_deref()
        .map(SecretName::parse)
        .transpose()?;
    let spec = SourceSpec {
        kind,
        url: body.url.clone(),
        stream: body.stream.clone(),
        subject: body.subject.clone(),
        password_secret,
        batch_size: body
            .batch_size
            .unwrap_or(vireo_core::source::DEFAULT_SOURCE_BATCH),
        batch_window_ms: body.batch_window_ms,
        filter: body
            .filter
            .clone()
            .map(MessageFilter::parse)
            .transpose()
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_source", e.to_string()))?,
        qos: body.qos,
    };
    spec.validate()
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_source", e.to_string()))?;
    Ok(spec)
}

/// The answer to a failed connection attempt: the broker is the client's to fix, so each is a
/// 422 with a code naming the cause.
fn probe_error(error: SourceProbeError) -> ApiError {
    let code = match &error {
        SourceProbeError::Unreachable { .. } => "source_unreachable",
        SourceProbeError::AuthRefused { .. } => "source_auth_refused",
        SourceProbeError::StreamMissing { .. } => "source_stream_missing",
        SourceProbeError::Invalid(_) => "invalid_source",
    };
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, error.to_string())
}

#[utoipa::path(post, path = "/v1/namespaces/{namespace}/sources", tag = "sources",
    params(("namespace" = String, Path)), request_body = CreateSource,
    responses((status = 201, body = SourceView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, description = "The broker is unreachable, refused the credentials, or has no such stream", body = ErrorBody)))]
pub async fn create(
    State(catalog): State<Arc<dyn Catalog>>,
    State(services): State<SourceServices>,
    NamespacePath(namespace): NamespacePath,
    ApiJson(body): ApiJson<CreateSource>,
) -> Result<(StatusCode, Json<SourceView>), ApiError> {
    let (function, selector) = VersionSelector::split_target(&body.function)?;
    let name = Name::parse("source", &body.name)?;
    let spec = spec(&body)?;
    catalog
        .resolve_version(&namespace, &function, &selector)
        .await?;
    if services.store.get_source(&namespace, &name).await.is_ok() {
        return Err(StoreError::SourceExists { namespace, name }.into());
    }
    let password = match &spec.password_secret {
        Some(secret) => Some(services.secrets.open_secret(&namespace, secret).await?),
        None => None,
    };
    let new = NewSource {
        namespace,
        name,
        function,
        selector,
        spec,
        created_at_us: now_micros(),
    };
    let candidate = Source {
        namespace: new.namespace.clone(),
        name: new.name.clone(),
        function: new.function.clone(),
        selector: new.selector.clone(),
        spec: new.spec.clone(),
        paused: false,
        created_at_us: new.created_at_us,
    };
    services
        .probe
        .probe(&candidate, password.as_ref())
        .await
        .map_err(probe_error)?;
    let created = services.store.create_source(&new).await?;
    Ok((StatusCode::CREATED, Json(view(&services, created))))
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/sources", tag = "sources",
    params(("namespace" = String, Path)),
    responses((status = 200, body = SourceList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(catalog): State<Arc<dyn Catalog>>,
    State(services): State<SourceServices>,
    NamespacePath(namespace): NamespacePath,
) -> Result<Json<SourceList>, ApiError> {
    if !catalog.namespace_exists(&namespace).await? {
        return Err(StoreError::NamespaceNotFound(namespace).into());
    }
    let listed = services.store.list_sources(&namespace).await?;
    Ok(Json(SourceList {
        sources: listed
            .into_iter()
            .map(|source| view(&services, source))
            .collect(),
    }))
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/sources/{name}", tag = "sources",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = SourceView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(services): State<SourceServices>,
    SourcePath { namespace, name }: SourcePath,
) -> Result<Json<SourceView>, ApiError> {
    let source = services.store.get_source(&namespace, &name).await?;
    Ok(Json(view(&services, source)))
}

#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/sources/{name}", tag = "sources",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 204, description = "Deleted; messages already accepted still run, the broker keeps the rest"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(services): State<SourceServices>,
    SourcePath { namespace, name }: SourcePath,
) -> Result<StatusCode, ApiError> {
    services.store.delete_source(&namespace, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/namespaces/{namespace}/sources/{name}/pause", tag = "sources",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = SourceView), (status = 404, body = ErrorBody)))]
pub async fn pause(
    State(services): State<SourceServices>,
    SourcePath { namespace, name }: SourcePath,
) -> Result<Json<SourceView>, ApiError> {
    let paused = services
        .store
        .set_source_paused(&namespace, &name, true)
        .await?;
    Ok(Json(view(&services, paused)))
}

/// Resumes where the source left off: the broker kept what arrived while it was paused.
#[utoipa::path(post, path = "/v1/namespaces/{namespace}/sources/{name}/resume", tag = "sources",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = SourceView), (status = 404, body = ErrorBody)))]
pub async fn resume(
    State(services): State<SourceServices>,
    SourcePath { namespace, name }: SourcePath,
) -> Result<Json<SourceView>, ApiError> {
    let resumed = services
        .store
        .set_source_paused(&namespace, &name, false)
        .await?;
    Ok(Json(view(&services, resumed)))
}
