//! `/v1/namespaces/{namespace}/buckets/{bucket}/objects/{key…}`: an object's bytes, streamed
//! both ways and never held whole. The key is the rest of the path, slashes included. A write
//! takes `Content-Type` and `x-vireo-meta-<name>` headers along; a read answers them with
//! `ETag` (the quoted sha256), `Content-Length`, one byte range on `Range` and `304` on a
//! matching `If-None-Match`. `HEAD` answers the headers without opening the bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt as _;
use vireo_core::time::now_micros;
use vireo_core::{ByteRange, EventBounds, NewObject, ObjectInfo, ObjectStore};

use super::buckets::ObjectView;
use super::key_value::KvValue;
use crate::GatewayLimits;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ObjectPath;

/// Headers that carry an object's user metadata, after this prefix.
const META_PREFIX: &str = "x-vireo-meta-";
const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";
/// When the object was written, in microseconds since the Unix epoch.
const CREATED_AT_US: HeaderName = HeaderName::from_static("x-vireo-created-at-us");

/// Streams the body into the object, replacing any object of that key once it is whole.
#[utoipa::path(put, path = "/v1/namespaces/{namespace}/buckets/{bucket}/objects/{*key}", tag = "buckets",
    params(("namespace" = String, Path), ("bucket" = String, Path), ("key" = String, Path, description = "The key, the rest of the path: any UTF-8 without NUL, up to 1,024 bytes")),
    request_body(content = KvValue, content_type = "application/octet-stream", description = "The object's bytes; `Content-Type` and `x-vireo-meta-*` headers are kept with it"),
    responses(
        (status = 200, description = "Stored", body = ObjectView),
        (status = 400, description = "A bad key, or a body that broke off", body = ErrorBody),
        (status = 404, description = "No such bucket", body = ErrorBody),
        (status = 409, description = "`quota_exceeded`: the namespace's max_object_bytes would be exceeded; nothing was stored", body = ErrorBody),
        (status = 413, description = "Larger than the server's object limit; nothing was stored", body = ErrorBody)))]
pub async fn put_object(
    State(objects): State<Arc<dyn ObjectStore>>,
    State(limits): State<GatewayLimits>,
    path: ObjectPath,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    write_object(&objects, &limits, path, &headers, body).await
}

/// Streams `body` into the object (the admin API's and a presigned URL's `PUT`).
pub(crate) async fn write_object(
    objects: &Arc<dyn ObjectStore>,
    limits: &GatewayLimits,
    ObjectPath { bucket, key }: ObjectPath,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let max_bytes = limits.objects.max_object_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_bytes) {
        return Err(ApiError::payload_too_large(format!(
            "the object is larger than the limit of {max_bytes} bytes"
        )));
    }
    let object = NewObject {
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or(DEFAULT_CONTENT_TYPE)
            .to_string(),
        metadata: metadata(headers)?,
        at_us: now_micros(),
        max_bytes,
        events: EventBounds::outside_chains(limits.max_pending_per_namespace),
    };
    let body = Box::pin(body.into_data_stream().map_err(std::io::Error::other));
    let info = objects.put_object(&bucket, &key, object, body).await?;
    Ok(([(header::ETAG, etag(&info))], Json(ObjectView::from(info))).into_response())
}

/// The object's bytes, all of them or one range; `HEAD` for its headers alone.
#[utoipa::path(get, path = "/v1/namespaces/{namespace}/buckets/{bucket}/objects/{*key}", tag = "buckets",
    params(("namespace" = String, Path), ("bucket" = String, Path), ("key" = String, Path, description = "The key, the rest of the path"),
        ("Range" = Option<String>, Header, description = "One range, `bytes=start-end`, `bytes=start-` or `bytes=-suffix`"),
        ("If-None-Match" = Option<String>, Header, description = "`304` when the object's ETag is among these")),
    responses(
        (status = 200, description = "The object", content_type = "application/octet-stream", body = KvValue),
        (status = 206, description = "The range asked for, with `Content-Range`", content_type = "application/octet-stream", body = KvValue),
        (status = 304, description = "The ETag matched `If-None-Match`"),
        (status = 404, description = "No such object or bucket", body = ErrorBody),
        (status = 416, description = "The range lies outside the object", body = ErrorBody)))]
pub async fn get_object(
    State(objects): State<Arc<dyn ObjectStore>>,
    path: ObjectPath,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    read_object(&objects, path, &method, &headers).await
}

/// Answers the object's bytes or headers (the admin API's and a presigned URL's `GET`/`HEAD`).
pub(crate) async fn read_object(
    objects: &Arc<dyn ObjectStore>,
    ObjectPath { bucket, key }: ObjectPath,
    method: &Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let missing = || ApiError::not_found(format!("object {key:?} is not in bucket {bucket}"));
    let info = objects
        .head_object(&bucket, &key)
        .await?
        .ok_or_else(missing)?;
    if none_match(headers, &info) {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(header::ETAG, etag(&info));
        return Ok(response);
    }
    let range = match headers.get(header::RANGE) {
        Some(value) => Some(parse_range(value, info.size).ok_or_else(|| unsatisfiable(&info))?),
        None => None,
    };
    if *method == Method::HEAD {
        let whole = ByteRange {
            start: 0,
            end: info.size,
        };
        return Ok(respond(&info, range, range.unwrap_or(whole), Body::empty()));
    }
    let read = objects
        .get_object(&bucket, &key, range)
        .await?
        .ok_or_else(missing)?;
    Ok(respond(
        &read.info,
        range,
        read.range,
        Body::from_stream(read.body),
    ))
}

#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/buckets/{bucket}/objects/{*key}", tag = "buckets",
    params(("namespace" = String, Path), ("bucket" = String, Path), ("key" = String, Path, description = "The key, the rest of the path")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such object or bucket", body = ErrorBody)))]
pub async fn delete_object(
    State(objects): State<Arc<dyn ObjectStore>>,
    State(limits): State<GatewayLimits>,
    ObjectPath { bucket, key }: ObjectPath,
) -> Result<StatusCode, ApiError> {
    let events = EventBounds::outside_chains(limits.max_pending_per_namespace);
    if objects.delete_object(&bucket, &key, events).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "object {key:?} is not in bucket {bucket}"
        )))
    }
}

/// The answer to a read: `206` with `Content-Range` when a range was asked for.
fn respond(info: &ObjectInfo, asked: Option<ByteRange>, range: ByteRange, body: Body) -> Response {
    let status = if asked.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::ETAG, etag(info));
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(range.len()));
    headers.insert(CREATED_AT_US, HeaderValue::from(info.created_at_us));
    if let Ok(value) = HeaderValue::from_str(&info.content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if asked.is_some() {
        let value = format!(
            "bytes {}-{}/{}",
            range.start,
            range.end.saturating_sub(1),
            info.size
        );
        headers.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    for (name, value) in &info.metadata {
        let name = HeaderName::try_from(format!("{META_PREFIX}{name}"));
        if let (Ok(name), Ok(value)) = (name, HeaderValue::from_str(value)) {
            headers.insert(name, value);
        }
    }
    response
}

/// The quoted sha256, as HTTP writes entity tags.
fn etag(info: &ObjectInfo) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{}\"", info.etag)).expect("hex is a valid header value")
}

/// Whether `If-None-Match` names the object's ETag (or is `*`).
fn none_match(headers: &HeaderMap, info: &ObjectInfo) -> bool {
    let quoted = format!("\"{}\"", info.etag);
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == quoted)
}

/// The metadata of `x-vireo-meta-<name>` headers (names are lowercase, as HTTP/1 gives them).
fn metadata(headers: &HeaderMap) -> Result<BTreeMap<String, String>, ApiError> {
    let mut metadata = BTreeMap::new();
    for (name, value) in headers {
        let Some(name) = name.as_str().strip_prefix(META_PREFIX) else {
            continue;
        };
        let value = value.to_str().map_err(|_| {
            ApiError::bad_request(format!("the value of {META_PREFIX}{name} is not text"))
        })?;
        metadata.insert(name.to_string(), value.to_string());
    }
    Ok(metadata)
}

fn unsatisfiable(info: &ObjectInfo) -> ApiError {
    let mut error = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range_not_satisfiable",
        format!(
            "the range is not one range of bytes within the object's {} bytes",
            info.size
        ),
    );
    error.headers.push((
        header::CONTENT_RANGE,
        HeaderValue::from_str(&format!("bytes */{}", info.size)).unwrap(),
    ));
    error
}

/// One range of `bytes=start-end` (inclusive), `bytes=start-` or `bytes=-suffix` within an
/// object of `size` bytes; `None` for anything else or a range that starts past the end.
fn parse_range(value: &HeaderValue, size: u64) -> Option<ByteRange> {
    let spec = value.to_str().ok()?.trim().strip_prefix("bytes=")?;
    let (start, end) = spec.split_once('-')?;
    let (start, end) = (start.trim(), end.trim());
    let range = if start.is_empty() {
        let suffix: u64 = end.parse().ok()?;
        ByteRange {
            start: size.saturating_sub(suffix),
            end: size,
        }
    } else {
        let start: u64 = start.parse().ok()?;
        let end = if end.is_empty() {
            size
        } else {
            end.parse::<u64>().ok()?.checked_add(1)?.min(size)
        };
        ByteRange { start, end }
    };
    (range.start < range.end).then_some(range)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str, size: u64) -> Option<(u64, u64)> {
        parse_range(&HeaderValue::from_str(value).unwrap(), size).map(|r| (r.start, r.end))
    }

    #[test]
    fn ranges_are_read_as_http_writes_them() {
        assert_eq!(range("bytes=0-0", 10), Some((0, 1)));
        assert_eq!(range("bytes=2-5", 10), Some((2, 6)));
        assert_eq!(range("bytes=2-", 10), Some((2, 10)));
        assert_eq!(range("bytes=-3", 10), Some((7, 10)));
        assert_eq!(
            range("bytes=5-100", 10),
            Some((5, 10)),
            "clamped to the size"
        );
        assert_eq!(range("bytes=-100", 10), Some((0, 10)));
        for bad in [
            "bytes=10-",
            "bytes=5-2",
            "bytes=a-b",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-0",
        ] {
            assert_eq!(range(bad, 10), None, "{bad}");
        }
        assert_eq!(range("bytes=0-", 0), None, "an empty object has no range");
    }
}
