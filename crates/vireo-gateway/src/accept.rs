//! `Prefer: respond-async` on `/fn/...`: the request is stored durably and answered `202` with
//! where to follow it; a worker delivers it later.

use axum::Json;
use axum::body::Body as AxumBody;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use serde::Serialize;
use utoipa::ToSchema;
use vireo_core::invoke::{authorize_invocation, authorize_version_choice, invoke_auth};
use vireo_core::queue::MAX_IDEMPOTENCY_KEY_LEN;
use vireo_core::time::now_micros;
use vireo_core::{
    AsyncStatus, Enqueued, InvocationId, InvokeAuth, Name, NewAsyncInvocation, Principal,
    StoreError, StoredRequest, Trigger, VERSION_HEADER, VersionSelector,
};

use crate::INVOCATION_ID_HEADER;
use crate::error::ApiError;
use crate::state::Invoking;

const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The answer to an accepted async invocation.
#[derive(Serialize, ToSchema)]
pub struct Accepted {
    pub id: String,
    pub status: AsyncStatus,
    /// Where its status and, once finished, the function's answer can be read.
    pub location: String,
    /// True when the `Idempotency-Key` was used before: `id` is the first invocation's.
    pub duplicate: bool,
}

/// True when the caller asked for an asynchronous answer (RFC 7240 `Prefer: respond-async`).
pub fn wants_async(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::HeaderName::from_static("prefer"))
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|preference| {
            preference
                .split(';')
                .next()
                .is_some_and(|token| token.trim().eq_ignore_ascii_case("respond-async"))
        })
}

/// What a request calls: `function@selector` of a namespace, and the `invoke_auth` of the route
/// it took, which replaces the version's.
pub struct Target {
    pub namespace: Name,
    pub function: Name,
    pub selector: VersionSelector,
    pub route_auth: Option<InvokeAuth>,
}

pub async fn accept(
    state: &Invoking,
    id: InvocationId,
    target: Target,
    principal: &Principal,
    mut parts: Parts,
    body: AxumBody,
) -> Result<Response, ApiError> {
    let idempotency_key = idempotency_key(&parts.headers)?;
    // The version must exist now: an invocation that can never run is refused, not queued.
    let version = state
        .invoker
        .resolve(&target.namespace, &target.function, &target.selector)
        .await?;
    // Delivery runs as Vireo itself, so who may invoke is decided here, once.
    let auth = invoke_auth(target.route_auth.as_ref(), &version);
    authorize_invocation(principal, &version, auth)?;
    if parts.headers.contains_key(VERSION_HEADER) {
        authorize_version_choice(principal, &target.namespace)?;
    }
    state
        .invoker
        .check_credentials(auth, principal, &mut parts.headers)
        .await?;
    let body = crate::invoke::guarded(state.limits, body)
        .collect()
        .await?
        .to_bytes();
    parts.headers.remove("prefer");
    let accepted_at_us = now_micros();
    let invocation = NewAsyncInvocation {
        id: id.clone(),
        source: format!(
            "/namespaces/{}/functions/{}",
            target.namespace, target.function
        ),
        namespace: target.namespace,
        function: target.function,
        selector: target.selector,
        trigger: Trigger::Async,
        request: StoredRequest {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            headers: parts.headers,
            body,
        },
        idempotency_key,
        accepted_at_us,
        event_time_us: accepted_at_us,
    };
    let namespace = invocation.namespace.clone();
    let function = invocation.function.clone();
    match state.submitter.submit(invocation).await {
        Ok(Enqueued::Accepted) => Ok(accepted(id, false)),
        Ok(Enqueued::Duplicate(first)) => Ok(accepted(first, true)),
        Ok(Enqueued::QueueFull { limit }) => Err(ApiError {
            retry_after_secs: Some(1),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "queue_full",
                format!(
                    "namespace {namespace} already has {limit} async invocations waiting or running (its limit); retry later"
                ),
            )
        }),
        Ok(Enqueued::FunctionNotFound) => Err(StoreError::FunctionNotFound {
            namespace,
            function,
        }
        .into()),
        Err(error) => {
            tracing::error!(%error, "an async invocation could not be stored");
            Err(ApiError {
                retry_after_secs: Some(1),
                ..ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "not_stored",
                    "the invocation could not be stored durably, so it was not accepted; retry later",
                )
            })
        }
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY_LEN => {
            Ok(Some(key.to_string()))
        }
        _ => Err(ApiError::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"
        ))),
    }
}

fn accepted(id: InvocationId, duplicate: bool) -> Response {
    let location = format!("/v1/invocations/{id}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(Accepted {
            id: id.to_string(),
            status: AsyncStatus::Queued,
            location: location.clone(),
            duplicate,
        }),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    if let Ok(value) = HeaderValue::from_str(id.as_str()) {
        headers.insert(INVOCATION_ID_HEADER, value);
    }
    headers.insert(
        HeaderName::from_static("preference-applied"),
        HeaderValue::from_static("respond-async"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respond_async_is_found_among_preferences() {
        let mut headers = HeaderMap::new();
        assert!(!wants_async(&headers));
        headers.insert("prefer", HeaderValue::from_static("wait=5, Respond-Async"));
        assert!(wants_async(&headers));
        headers.insert("prefer", HeaderValue::from_static("respond-asyncx"));
        assert!(!wants_async(&headers));
    }
}
