//! The extractors the handlers use in place of axum's, whose rejections answer plain text: these
//! answer the API's JSON error envelope, with the status axum chose (or the one a request-body
//! fault calls for). Path parameters arrive parsed into Vireo's names (`path.rs`).

use axum::Json;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use vireo_core::RequestBodyError;
use vireo_core::json::Object;

use crate::error::ApiError;

mod path;

pub use path::{
    AliasPath, ApiPath, BucketPath, FunctionPath, InvocationPath, KvKeyPath, KvStorePath,
    NamespacePath, NotificationPath, ObjectPath, SchedulePath, SecretPath, SourcePath,
    SqliteDatabasePath, VersionPath, checked_object_key, function, invocation_id, namespace,
};

/// A JSON request body; `400` for bad syntax, `422` for the wrong shape, `415` without
/// `Content-Type: application/json`, `413` over the route's limit, `408` when it trickles. Every
/// body the API takes is an object: serde would also read a struct from an array of its fields.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<Object<T>>::from_request(request, state).await {
            Ok(Json(Object(value))) => Ok(Self(value)),
            Err(rejection) => Err(rejected(&rejection, rejection.status(), "invalid_json", {
                if matches!(rejection, JsonRejection::MissingJsonContentType(_)) {
                    "send the body as JSON with `Content-Type: application/json`".to_string()
                } else {
                    rejection.body_text()
                }
            })),
        }
    }
}

/// The query string; `400` for unknown parameters or values of the wrong type.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejected(
                &rejection,
                rejection.status(),
                "invalid_query",
                rejection.body_text(),
            )),
        }
    }
}

/// A `multipart/form-data` body; `415` for any other content type (or one without boundary).
pub struct ApiMultipart(pub Multipart);

impl<S> FromRequest<S> for ApiMultipart
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Multipart::from_request(request, state)
            .await
            .map(Self)
            .map_err(|_: MultipartRejection| {
                ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "send a multipart/form-data body (with a boundary) holding `settings` and `component`",
                )
            })
    }
}

/// An extractor's rejection as an API error: a request-body fault says what the client did;
/// otherwise axum's status stands, with `code_400` for a plain bad request.
pub(crate) fn rejected(
    rejection: &(dyn std::error::Error + 'static),
    status: StatusCode,
    code_400: &'static str,
    message: String,
) -> ApiError {
    if let Some(fault) = RequestBodyError::find(rejection) {
        return fault.clone().into();
    }
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid_body",
        StatusCode::BAD_REQUEST => code_400,
        _ => "invalid_request",
    };
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            "the request body is larger than this route accepts".to_string()
        }
        _ => message,
    };
    ApiError::new(status, code, message)
}
