//! `POST /v1/namespaces/{namespace}/buckets/{bucket}/presign`: a URL that lets whoever holds it
//! read or write one object until it expires, without a key (served by
//! [`crate::presigned`]). Asking for one is a write: it hands access to someone else.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vireo_core::ObjectStore;
use vireo_core::time::{now_micros, rfc3339};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, BucketPath, checked_object_key};
use crate::presigned::{MAX_EXPIRY_SECS, PresignKey};

/// How long a URL is valid unless asked otherwise.
const DEFAULT_EXPIRY_SECS: u64 = 15 * 60;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PresignRequest {
    /// The object's key; it need not exist yet for `PUT`.
    pub key: String,
    /// `GET` (which allows `HEAD` too) or `PUT`.
    pub method: String,
    /// Seconds until the URL stops working: 1 to 604800 (7 days); default 900.
    pub expires_in_s: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct PresignedUrl {
    /// The path and query to append to this server's address; needs no key.
    pub path: String,
    pub method: String,
    pub expires_at: String,
    pub expires_at_s: u64,
}

#[utoipa::path(post, path = "/v1/namespaces/{namespace}/buckets/{bucket}/presign", tag = "buckets",
    params(("namespace" = String, Path), ("bucket" = String, Path)),
    request_body = PresignRequest,
    responses(
        (status = 201, description = "The URL, valid until `expires_at`", body = PresignedUrl),
        (status = 400, description = "A bad key (or one with a `.` or `..` segment), method or expiry", body = ErrorBody),
        (status = 404, description = "No such bucket", body = ErrorBody)))]
pub async fn presign(
    State(objects): State<Arc<dyn ObjectStore>>,
    State(signer): State<PresignKey>,
    BucketPath(bucket): BucketPath,
    ApiJson(body): ApiJson<PresignRequest>,
) -> Result<(StatusCode, Json<PresignedUrl>), ApiError> {
    checked_object_key(&body.key)?;
    // Browsers resolve such segments away, so the URL would name another key.
    if body.key.split('/').any(|part| part == "." || part == "..") {
        return Err(ApiError::bad_request(format!(
            "the key {:?} has a `.` or `..` segment, which HTTP clients remove from URLs: it cannot be presigned",
            body.key
        )));
    }
    let method = match body.method.to_ascii_uppercase().as_str() {
        "GET" => Method::GET,
        "PUT" => Method::PUT,
        _ => {
            return Err(ApiError::bad_request(format!(
                "method {:?} cannot be presigned: GET (reads, HEAD too) or PUT (writes)",
                body.method
            )));
        }
    };
    let lifetime = body.expires_in_s.unwrap_or(DEFAULT_EXPIRY_SECS);
    if !(1..=MAX_EXPIRY_SECS).contains(&lifetime) {
        return Err(ApiError::bad_request(format!(
            "expires_in_s must be 1 to {MAX_EXPIRY_SECS} (7 days), not {lifetime}"
        )));
    }
    // The bucket must exist now; a URL for one deleted later answers 404.
    objects.bucket(&bucket).await?;
    let expires = now_micros().unsigned_abs() / 1_000_000 + lifetime;
    Ok((
        StatusCode::CREATED,
        Json(PresignedUrl {
            path: signer.sign(&method, expires, &bucket, &body.key),
            method: method.to_string(),
            expires_at: rfc3339(i64::try_from(expires).unwrap_or(i64::MAX) * 1_000_000),
            expires_at_s: expires,
        }),
    ))
}
