//! API errors: `{"error":{"code":"...","message":"..."}}` with the right status. Internal
//! details are logged, never sent to the client.

use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use vireo_core::{
    DeployError, ErrorClass, InvalidName, InvalidQuotas, InvalidRetryPolicy, InvalidSecretName,
    InvalidSecretValue, InvokeError, RequestBodyError, SecretError, StoreError, Unanswered,
    VERSION_HEADER,
};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u32>,
    /// Sent with the answer: `WWW-Authenticate`, `RateLimit-*`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `not_found`, `invalid_name`, `rejected_component`.
    pub code: &'static str,
    /// What went wrong and, where possible, what to do.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
            headers: Vec::new(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn invalid_settings(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_settings", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// Tells the client which credentials would do (RFC 6750).
    pub fn ask_for_a_key(&mut self) {
        self.headers.push((
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"vireo\""),
        ));
    }

    /// Tells the client its bearer token was refused and why (RFC 6750 §3).
    pub fn refuse_token(&mut self, reason: &str) {
        // The description is a quoted string: no quotes, backslashes or control characters.
        let description: String = reason
            .chars()
            .map(|c| {
                if c == '"' || c == '\\' || !(' '..='~').contains(&c) {
                    '\''
                } else {
                    c
                }
            })
            .collect();
        let challenge = format!(
            "Bearer realm=\"vireo\", error=\"invalid_token\", error_description=\"{description}\""
        );
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            self.headers.push((header::WWW_AUTHENTICATE, value));
        }
    }

    fn internal(context: &str, detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(%detail, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{context}; see the server log"),
        )
    }
}

impl From<InvalidName> for ApiError {
    fn from(error: InvalidName) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_name", error.to_string())
    }
}

impl From<InvalidSecretName> for ApiError {
    fn from(error: InvalidSecretName) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_name", error.to_string())
    }
}

impl From<InvalidSecretValue> for ApiError {
    fn from(error: InvalidSecretValue) -> Self {
        match error {
            InvalidSecretValue::TooLarge => Self::payload_too_large(error.to_string()),
            InvalidSecretValue::Empty | InvalidSecretValue::Nul => {
                Self::new(StatusCode::BAD_REQUEST, "invalid_value", error.to_string())
            }
        }
    }
}

impl From<InvalidQuotas> for ApiError {
    fn from(error: InvalidQuotas) -> Self {
        Self::bad_request(error.to_string())
    }
}

impl From<InvalidRetryPolicy> for ApiError {
    fn from(error: InvalidRetryPolicy) -> Self {
        Self::bad_request(error.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        // A full key-value quota is 409, not the 429 of the other quotas: waiting does not free
        // bytes, only deleting keys or a larger quota does, and the write conflicts with what
        // the namespace holds now. Not 507 either: a 5xx blames the server, and clients and
        // proxies retry those.
        match error {
            StoreError::KvQuotaExceeded { .. } | StoreError::ObjectQuotaExceeded { .. } => {
                return Self::new(StatusCode::CONFLICT, "quota_exceeded", error.to_string());
            }
            StoreError::ObjectTooLarge { .. } => return Self::payload_too_large(error.to_string()),
            // The request's own body failed: nothing the server did.
            StoreError::ObjectBodyFailed(_) => {
                return Self::new(StatusCode::BAD_REQUEST, "invalid_body", error.to_string());
            }
            _ => {}
        }
        // Routing a host nobody let the namespace route is a matter of permission.
        if let StoreError::HostNotClaimed { .. } = error {
            return Self::new(StatusCode::FORBIDDEN, "host_not_claimed", error.to_string());
        }
        match error.class() {
            ErrorClass::NotFound => Self::not_found(error.to_string()),
            ErrorClass::Conflict => Self::new(StatusCode::CONFLICT, "conflict", error.to_string()),
            ErrorClass::QuotaExceeded => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "quota_exceeded",
                error.to_string(),
            ),
            // Unreachable or busy: the same call may succeed in a moment, here or on another node.
            ErrorClass::Unavailable { retryable: true } => {
                tracing::warn!(%error, "the store is unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "the store is unavailable; try again shortly",
                )
            }
            ErrorClass::Unavailable { retryable: false } => {
                Self::internal("the store failed", &error)
            }
        }
    }
}

impl From<SecretError> for ApiError {
    fn from(error: SecretError) -> Self {
        match error {
            SecretError::Store(error) => error.into(),
            SecretError::Seal(_) => Self::internal("sealing the secret failed", &error),
        }
    }
}

impl From<DeployError> for ApiError {
    fn from(error: DeployError) -> Self {
        match error {
            DeployError::Rejected(message) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "rejected_component",
                message,
            ),
            DeployError::InvalidSettings(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_settings",
                error.to_string(),
            ),
            DeployError::Store(error) => error.into(),
            DeployError::Internal(message) => Self::internal("the deploy failed", &message),
        }
    }
}

impl From<RequestBodyError> for ApiError {
    fn from(error: RequestBodyError) -> Self {
        let code = match error {
            RequestBodyError::TooLarge { .. } => "payload_too_large",
            RequestBodyError::TooSlow { .. } => "request_timeout",
            RequestBodyError::Malformed(_) => "bad_request",
        };
        let mut answer = Self::new(error.status(), code, error.to_string());
        if let RequestBodyError::TooSlow { .. } = error {
            // The rest of the body is not awaited: the connection cannot carry another request.
            answer
                .headers
                .push((header::CONNECTION, HeaderValue::from_static("close")));
        }
        answer
    }
}

/// A refusal or failure after a version was picked names that version, as answers do.
impl From<Unanswered> for ApiError {
    fn from(unanswered: Unanswered) -> Self {
        let mut answer = Self::from(unanswered.error);
        if let Some(version) = unanswered.version {
            answer
                .headers
                .push((HeaderName::from_static(VERSION_HEADER), version.into()));
        }
        answer
    }
}

impl From<InvokeError> for ApiError {
    fn from(error: InvokeError) -> Self {
        let (status, code) = match &error {
            InvokeError::RequestBody(fault) => return fault.clone().into(),
            InvokeError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            InvokeError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            InvokeError::InvalidToken(_) => (StatusCode::UNAUTHORIZED, "invalid_token"),
            InvokeError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            InvokeError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            InvokeError::Busy { .. } => (StatusCode::TOO_MANY_REQUESTS, "busy"),
            InvokeError::Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            InvokeError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            InvokeError::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "function_failed"),
            InvokeError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        let mut answer = Self::new(status, code, error.to_string());
        match error {
            InvokeError::Busy {
                retry_after_secs, ..
            }
            | InvokeError::Overloaded {
                retry_after_secs, ..
            } => answer.retry_after_secs = Some(retry_after_secs),
            InvokeError::RateLimited {
                limit, retry_after, ..
            } => crate::limits::exhausted(&mut answer, limit, retry_after),
            InvokeError::Unauthorized(_) => answer.ask_for_a_key(),
            InvokeError::InvalidToken(reason) => answer.refuse_token(&reason),
            _ => {}
        }
        answer
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.extend(self.headers);
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        // A body refused as too large was not read to its end, so the connection closes after
        // this answer: saying so keeps a client from sending its next request on it.
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use vireo_core::Name;

    use super::*;

    fn answer(error: StoreError) -> (StatusCode, &'static str) {
        let answer = ApiError::from(error);
        (answer.status, answer.code)
    }

    #[test]
    fn key_value_failures_have_their_statuses() {
        let namespace = Name::default_namespace();
        let store = Name::default_kv_store();
        assert_eq!(
            answer(StoreError::KvStoreNotFound {
                namespace: namespace.clone(),
                store: store.clone(),
            }),
            (StatusCode::NOT_FOUND, "not_found")
        );
        assert_eq!(
            answer(StoreError::KvStoreExists {
                namespace: namespace.clone(),
                store: store.clone(),
            }),
            (StatusCode::CONFLICT, "conflict")
        );
        assert_eq!(
            answer(StoreError::KvDefaultStore {
                namespace: namespace.clone(),
            }),
            (StatusCode::CONFLICT, "conflict")
        );
        assert_eq!(
            answer(StoreError::KvQuotaExceeded {
                namespace: namespace.clone(),
                limit: 10,
            }),
            (StatusCode::CONFLICT, "quota_exceeded")
        );
        assert_eq!(
            answer(StoreError::KvNotACounter {
                namespace,
                store,
                key: "k".into(),
            }),
            (StatusCode::CONFLICT, "conflict")
        );
        assert_eq!(
            answer(StoreError::QuotaExceeded("max_functions".into())),
            (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded"),
            "the other quotas keep their status"
        );
    }
}
