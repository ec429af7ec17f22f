//! `/v1/namespaces/{namespace}/buckets`: a namespace's buckets and the listing of their
//! objects. The objects themselves travel through [`super::objects`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vireo_core::time::{now_micros, rfc3339};
use vireo_core::{
    BucketInfo, BucketNotification, Directory, Name, ObjectEvent, ObjectInfo, ObjectListing,
    ObjectStore,
};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, BucketPath, NamespacePath, NotificationPath};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBucket {
    /// `[a-z0-9][a-z0-9-]{0,62}`
    pub name: String,
}

/// A bucket with what it holds.
#[derive(Serialize, ToSchema)]
pub struct BucketView {
    pub name: String,
    pub objects: u64,
    /// The objects' bytes: what the namespace's `max_object_bytes` counts.
    pub bytes: u64,
    pub created_at: String,
    pub created_at_us: i64,
}

impl From<BucketInfo> for BucketView {
    fn from(info: BucketInfo) -> Self {
        Self {
            name: info.name.to_string(),
            objects: info.objects,
            bytes: info.bytes,
            created_at: rfc3339(info.created_at_us),
            created_at_us: info.created_at_us,
        }
    }
}

/// A namespace's buckets by name, with its quota.
#[derive(Serialize, ToSchema)]
pub struct BucketList {
    pub namespace: String,
    pub buckets: Vec<BucketView>,
    /// The buckets' bytes together.
    pub bytes_used: u64,
    /// The namespace's quota on `bytes_used`; null when it has none.
    pub max_object_bytes: Option<u64>,
}

/// An object's description.
#[derive(Serialize, ToSchema)]
pub struct ObjectView {
    pub key: String,
    pub size: u64,
    /// The hex sha256 of the bytes (the `ETag` header quotes it).
    pub etag: String,
    pub content_type: String,
    pub created_at: String,
    pub created_at_us: i64,
    /// Sent as `x-vireo-meta-<name>` headers when the object was written.
    pub metadata: BTreeMap<String, String>,
}

impl From<ObjectInfo> for ObjectView {
    fn from(info: ObjectInfo) -> Self {
        Self {
            created_at: rfc3339(info.created_at_us),
            key: info.key,
            size: info.size,
            etag: info.etag,
            content_type: info.content_type,
            created_at_us: info.created_at_us,
            metadata: info.metadata,
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ObjectListParams {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Keys with this after the prefix are rolled up into one common prefix each, up to and
    /// including it (`/` lists "folders").
    pub delimiter: Option<String>,
    /// At most this many entries, objects and common prefixes together (default 100, 1 to 1000).
    pub limit: Option<u32>,
    /// Where the listing goes on: the `next_cursor` of the page before.
    pub cursor: Option<String>,
}

/// One page of a listing, in the order of the keys' UTF-8 bytes.
#[derive(Serialize, ToSchema)]
pub struct ObjectPageView {
    pub objects: Vec<ObjectView>,
    pub common_prefixes: Vec<String>,
    /// Pass it as `cursor` for the next page; null when this page is the last.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/buckets", tag = "buckets",
    params(("namespace" = String, Path)),
    responses((status = 200, description = "The buckets by name with their objects and bytes, and the namespace's quota", body = BucketList)))]
pub async fn list_buckets(
    State(objects): State<Arc<dyn ObjectStore>>,
    State(directory): State<Arc<Directory>>,
    NamespacePath(namespace): NamespacePath,
) -> Result<Json<BucketList>, ApiError> {
    let listed = objects.list_buckets(&namespace).await?;
    Ok(Json(BucketList {
        bytes_used: listed.iter().map(|bucket| bucket.bytes).sum(),
        max_object_bytes: directory.quotas(&namespace).max_object_bytes,
        namespace: namespace.to_string(),
        buckets: listed.into_iter().map(BucketView::from).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/namespaces/{namespace}/buckets", tag = "buckets",
    params(("namespace" = String, Path)),
    request_body = CreateBucket,
    responses(
        (status = 201, description = "Created, empty", body = BucketView),
        (status = 400, description = "Bad name", body = ErrorBody),
        (status = 409, description = "A bucket of that name exists", body = ErrorBody)))]
pub async fn create_bucket(
    State(objects): State<Arc<dyn ObjectStore>>,
    NamespacePath(namespace): NamespacePath,
    ApiJson(body): ApiJson<CreateBucket>,
) -> Result<(StatusCode, Json<BucketView>), ApiError> {
    let name = Name::parse("bucket", &body.name)?;
    let created = objects
        .create_bucket(&namespace, &name, now_micros())
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/buckets/{bucket}", tag = "buckets",
    params(("namespace" = String, Path), ("bucket" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such bucket", body = ErrorBody),
        (status = 409, description = "The bucket still holds objects", body = ErrorBody)))]
pub async fn delete_bucket(
    State(objects): State<Arc<dyn ObjectStore>>,
    BucketPath(bucket): BucketPath,
) -> Result<StatusCode, ApiError> {
    objects.delete_bucket(&bucket).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/buckets/{bucket}/objects", tag = "buckets",
    params(("namespace" = String, Path), ("bucket" = String, Path), ObjectListParams),
    responses(
        (status = 200, description = "A page of objects and common prefixes, and where the next starts", body = ObjectPageView),
        (status = 400, description = "A limit outside 1 to 1000, or a cursor this API did not answer", body = ErrorBody),
        (status = 404, description = "No such bucket", body = ErrorBody)))]
pub async fn list_objects(
    State(objects): State<Arc<dyn ObjectStore>>,
    BucketPath(bucket): BucketPath,
    ApiQuery(params): ApiQuery<ObjectListParams>,
) -> Result<Json<ObjectPageView>, ApiError> {
    let (limit, cursor) = super::page(params.limit, params.cursor.as_deref())?;
    let listing = ObjectListing {
        prefix: params.prefix.unwrap_or_default(),
        delimiter: params.delimiter,
        cursor,
        limit,
    };
    let page = objects.list_objects(&bucket, &listing).await?;
    Ok(Json(ObjectPageView {
        objects: page.objects.into_iter().map(ObjectView::from).collect(),
        common_prefixes: page.common_prefixes,
        next_cursor: page.cursor.map(|cursor| cursor.to_string()),
    }))
}

/// What a bucket's changes invoke a function for.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetNotification {
    /// `created`, `deleted` or both.
    #[schema(value_type = Vec<String>)]
    pub events: BTreeSet<ObjectEvent>,
    /// Only keys starting with this (default: every key).
    #[serde(default)]
    pub prefix: String,
    /// Only keys ending with this (default: every key).
    #[serde(default)]
    pub suffix: String,
}

#[derive(Serialize, ToSchema)]
pub struct NotificationView {
    pub function: String,
    #[schema(value_type = Vec<String>)]
    pub events: BTreeSet<ObjectEvent>,
    pub prefix: String,
    pub suffix: String,
}

impl From<BucketNotification> for NotificationView {
    fn from(notification: BucketNotification) -> Self {
        Self {
            function: notification.function.to_string(),
            events: notification.events,
            prefix: notification.prefix,
            suffix: notification.suffix,
        }
    }
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/buckets/{bucket}/notifications", tag = "buckets",
    params(("namespace" = String, Path), ("bucket" = String, Path)),
    responses(
        (status = 200, description = "The bucket's notifications by function", body = Vec<NotificationView>),
        (status = 404, description = "No such bucket", body = ErrorBody)))]
pub async fn list_notifications(
    State(objects): State<Arc<dyn ObjectStore>>,
    BucketPath(bucket): BucketPath,
) -> Result<Json<Vec<NotificationView>>, ApiError> {
    let listed = objects.notifications(&bucket).await?;
    Ok(Json(
        listed.into_iter().map(NotificationView::from).collect(),
    ))
}

/// Invokes the function, asynchronously and durably, for each matching change to the bucket's
/// objects, with CloudEvents headers and the object's description as JSON.
#[utoipa::path(put, path = "/v1/namespaces/{namespace}/buckets/{bucket}/notifications/{function}", tag = "buckets",
    params(("namespace" = String, Path), ("bucket" = String, Path), ("function" = String, Path)),
    request_body = SetNotification,
    responses(
        (status = 200, description = "Set, replacing the function's notification on the bucket", body = NotificationView),
        (status = 400, description = "No events", body = ErrorBody),
        (status = 404, description = "No such bucket or function", body = ErrorBody)))]
pub async fn set_notification(
    State(objects): State<Arc<dyn ObjectStore>>,
    NotificationPath { bucket, function }: NotificationPath,
    ApiJson(body): ApiJson<SetNotification>,
) -> Result<Json<NotificationView>, ApiError> {
    if body.events.is_empty() {
        return Err(ApiError::bad_request(
            "events must name at least one of created and deleted",
        ));
    }
    let notification = BucketNotification {
        function,
        events: body.events,
        prefix: body.prefix,
        suffix: body.suffix,
    };
    objects.set_notification(&bucket, &notification).await?;
    Ok(Json(notification.into()))
}

#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/buckets/{bucket}/notifications/{function}", tag = "buckets",
    params(("namespace" = String, Path), ("bucket" = String, Path), ("function" = String, Path)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such notification or bucket", body = ErrorBody)))]
pub async fn delete_notification(
    State(objects): State<Arc<dyn ObjectStore>>,
    NotificationPath { bucket, function }: NotificationPath,
) -> Result<StatusCode, ApiError> {
    if objects.delete_notification(&bucket, &function).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "bucket {bucket} has no notification for function {function}"
        )))
    }
}
