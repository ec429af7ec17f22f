//! API errors: `{"error":{"code":"...","message":"..."}}` with the right status. Internal
//! details are logged, never sent to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use vireo_core::{
    DeployError, InvalidName, InvalidSecretName, InvalidSecretValue, InvokeError, StoreError,
};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after_secs: Option<u32>,
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
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
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

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NamespaceNotFound(_)
            | StoreError::FunctionNotFound { .. }
            | StoreError::VersionNotFound { .. }
            | StoreError::AliasNotFound { .. }
            | StoreError::ScheduleNotFound { .. }
            | StoreError::SecretNotFound { .. } => Self::not_found(error.to_string()),
            StoreError::FunctionExists { .. } | StoreError::ScheduleExists { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", error.to_string())
            }
            StoreError::Backend(_) => Self::internal("the store failed", &error),
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

impl From<InvokeError> for ApiError {
    fn from(error: InvokeError) -> Self {
        let (status, code) = match &error {
            InvokeError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            InvokeError::Busy { .. } => (StatusCode::TOO_MANY_REQUESTS, "busy"),
            InvokeError::Overloaded { .. } => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            InvokeError::Timeout(_) => (StatusCode::GATEWAY_TIMEOUT, "timeout"),
            InvokeError::Failed(_) => (StatusCode::INTERNAL_SERVER_ERROR, "function_failed"),
            InvokeError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            InvokeError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        };
        let retry_after_secs = match &error {
            InvokeError::Busy {
                retry_after_secs, ..
            }
            | InvokeError::Overloaded {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            _ => None,
        };
        Self {
            status,
            code,
            message: error.to_string(),
            retry_after_secs,
        }
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
        if let Some(secs) = self.retry_after_secs {
            let headers = response.headers_mut();
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
