//! `/v1/namespaces/{namespace}/kv`: a namespace's key-value stores and their keys, for people and
//! scripts to look inside (functions reach the same data through their own interfaces). Values
//! travel as raw bytes, keys percent-encoded in one path segment.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{IntoParams, PartialSchema, ToSchema};
use vireo_core::time::{now_micros, rfc3339};
use vireo_core::{Directory, KeyValueStore, KvStoreInfo, KvVersion, Name};

use crate::GatewayLimits;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, KvKeyPath, KvStorePath, NamespacePath, rejected};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKvStore {
    /// `[a-z0-9][a-z0-9-]{0,62}`
    pub name: String,
}

/// A value as it travels, in the document: raw bytes, whatever they hold (a `Vec<u8>` would be
/// documented as an array of numbers).
pub struct KvValue;

impl PartialSchema for KvValue {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for KvValue {}

/// A store with what it holds.
#[derive(Serialize, ToSchema)]
pub struct KvStoreView {
    pub name: String,
    pub keys: u64,
    /// Keys (their UTF-8) plus values: what the namespace's `max_kv_bytes` counts.
    pub bytes: u64,
    /// For `default` before its first write, when its namespace was created.
    pub created_at: String,
    pub created_at_us: i64,
}

impl From<KvStoreInfo> for KvStoreView {
    fn from(info: KvStoreInfo) -> Self {
        Self {
            name: info.name.to_string(),
            keys: info.keys,
            bytes: info.bytes,
            created_at: rfc3339(info.created_at_us),
            created_at_us: info.created_at_us,
        }
    }
}

/// A namespace's stores by name, `default` always among them, with its quota.
#[derive(Serialize, ToSchema)]
pub struct KvStoreList {
    pub namespace: String,
    pub stores: Vec<KvStoreView>,
    /// The stores' bytes together.
    pub bytes_used: u64,
    /// The namespace's quota on `bytes_used`; null when it has none.
    pub max_kv_bytes: Option<u64>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KeyListParams {
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// At most this many keys (default 100, 1 to 1000).
    pub limit: Option<u32>,
    /// Where the listing goes on: the `next_cursor` of the page before.
    pub cursor: Option<String>,
}

/// One page of keys, in the order of their UTF-8 bytes.
#[derive(Serialize, ToSchema)]
pub struct KeyPage {
    pub keys: Vec<String>,
    /// Pass it as `cursor` for the next page; null when this page is the last.
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/kv", tag = "key-value",
    params(("namespace" = String, Path)),
    responses((status = 200, description = "The stores by name with their keys and bytes, and the namespace's quota", body = KvStoreList)))]
pub async fn list_stores(
    State(stores): State<Arc<dyn KeyValueStore>>,
    State(directory): State<Arc<Directory>>,
    NamespacePath(namespace): NamespacePath,
) -> Result<Json<KvStoreList>, ApiError> {
    let listed = stores.list_stores(&namespace).await?;
    Ok(Json(KvStoreList {
        bytes_used: listed.iter().map(|store| store.bytes).sum(),
        max_kv_bytes: directory.quotas(&namespace).max_kv_bytes,
        namespace: namespace.to_string(),
        stores: listed.into_iter().map(KvStoreView::from).collect(),
    }))
}

#[utoipa::path(post, path = "/v1/namespaces/{namespace}/kv", tag = "key-value",
    params(("namespace" = String, Path)),
    request_body = CreateKvStore,
    responses(
        (status = 201, description = "Created, empty", body = KvStoreView),
        (status = 400, description = "Bad name", body = ErrorBody),
        (status = 409, description = "A store of that name exists (`default` always does)", body = ErrorBody)))]
pub async fn create_store(
    State(stores): State<Arc<dyn KeyValueStore>>,
    NamespacePath(namespace): NamespacePath,
    ApiJson(body): ApiJson<CreateKvStore>,
) -> Result<(StatusCode, Json<KvStoreView>), ApiError> {
    let name = Name::parse("key-value store", &body.name)?;
    let created = stores.create_store(&namespace, &name, now_micros()).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// Deletes a store with every key in it.
#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/kv/{store}", tag = "key-value",
    params(("namespace" = String, Path), ("store" = String, Path)),
    responses(
        (status = 204, description = "Deleted with its keys"),
        (status = 409, description = "`default` cannot be deleted", body = ErrorBody)))]
pub async fn delete_store(
    State(stores): State<Arc<dyn KeyValueStore>>,
    KvStorePath(store): KvStorePath,
) -> Result<StatusCode, ApiError> {
    stores.delete_store(&store.namespace, &store.store).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/kv/{store}/keys", tag = "key-value",
    params(("namespace" = String, Path), ("store" = String, Path), KeyListParams),
    responses(
        (status = 200, description = "A page of keys and where the next starts", body = KeyPage),
        (status = 400, description = "A limit outside 1 to 1000, or a cursor this API did not answer", body = ErrorBody)))]
pub async fn list_keys(
    State(stores): State<Arc<dyn KeyValueStore>>,
    KvStorePath(store): KvStorePath,
    ApiQuery(params): ApiQuery<KeyListParams>,
) -> Result<Json<KeyPage>, ApiError> {
    let (limit, cursor) = super::page(params.limit, params.cursor.as_deref())?;
    let prefix = params.prefix.unwrap_or_default();
    let page = stores
        .list_keys(&store, &prefix, cursor.as_ref(), limit)
        .await?;
    Ok(Json(KeyPage {
        keys: page.keys,
        next_cursor: page.cursor.map(|cursor| cursor.to_string()),
    }))
}

/// The value, byte for byte.
#[utoipa::path(get, path = "/v1/namespaces/{namespace}/kv/{store}/keys/{key}", tag = "key-value",
    params(("namespace" = String, Path), ("store" = String, Path), ("key" = String, Path, description = "The key, percent-encoded: any UTF-8 without NUL")),
    responses(
        (status = 200, description = "The value", content_type = "application/octet-stream", body = KvValue),
        (status = 400, description = "An empty key, one with NUL or longer than the server's limit", body = ErrorBody),
        (status = 404, description = "No such key, store or namespace", body = ErrorBody)))]
pub async fn get_value(
    State(stores): State<Arc<dyn KeyValueStore>>,
    State(limits): State<GatewayLimits>,
    path: KvKeyPath,
) -> Result<impl IntoResponse, ApiError> {
    let value = read_value(stores.as_ref(), &limits, &path).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], value))
}

/// A key's value, or `404` (the API's and the dashboard's reads).
pub(crate) async fn read_value(
    stores: &dyn KeyValueStore,
    limits: &GatewayLimits,
    KvKeyPath { store, key }: &KvKeyPath,
) -> Result<Vec<u8>, ApiError> {
    check_key(limits, key)?;
    stores
        .get(store, key)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("key {key:?} is not in store {store}")))
}

/// Stores the body, whatever its content type, as the key's value.
#[utoipa::path(put, path = "/v1/namespaces/{namespace}/kv/{store}/keys/{key}", tag = "key-value",
    params(("namespace" = String, Path), ("store" = String, Path), ("key" = String, Path, description = "The key, percent-encoded: any UTF-8 without NUL")),
    request_body(content = KvValue, content_type = "application/octet-stream", description = "The value, as raw bytes"),
    responses(
        (status = 201, description = "Stored; the key was absent"),
        (status = 204, description = "Stored in place of the key's value"),
        (status = 400, description = "An empty key, one with NUL or longer than the server's limit", body = ErrorBody),
        (status = 409, description = "`quota_exceeded`: the namespace's max_kv_bytes would be exceeded; nothing was stored", body = ErrorBody),
        (status = 413, description = "The value is larger than the server's limit", body = ErrorBody)))]
pub async fn set_value(
    State(stores): State<Arc<dyn KeyValueStore>>,
    State(limits): State<GatewayLimits>,
    KvKeyPath { store, key }: KvKeyPath,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    check_key(&limits, &key)?;
    // The route's body limit is the value limit, so a larger body is refused before it is read
    // whole, with words that say which limit.
    let value = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(format!(
            "a value is larger than the limit of {} bytes",
            limits.key_value.max_value_bytes
        )),
        status => rejected(&rejection, status, "invalid_body", rejection.body_text()),
    })?;
    limits
        .key_value
        .check_value(&value)
        .map_err(|error| ApiError::payload_too_large(error.to_string()))?;
    // A swap from "not stored" writes only a key that is absent, and says so in the same
    // transaction; a key that is there is replaced.
    if stores.swap(&store, &key, KvVersion::ABSENT, &value).await? {
        return Ok(StatusCode::CREATED);
    }
    stores.set(&store, &key, &value).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/kv/{store}/keys/{key}", tag = "key-value",
    params(("namespace" = String, Path), ("store" = String, Path), ("key" = String, Path, description = "The key, percent-encoded: any UTF-8 without NUL")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "An empty key, one with NUL or longer than the server's limit", body = ErrorBody),
        (status = 404, description = "No such key, store or namespace", body = ErrorBody)))]
pub async fn delete_value(
    State(stores): State<Arc<dyn KeyValueStore>>,
    State(limits): State<GatewayLimits>,
    KvKeyPath { store, key }: KvKeyPath,
) -> Result<StatusCode, ApiError> {
    check_key(&limits, &key)?;
    if stores.delete(&store, &key).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "key {key:?} is not in store {store}"
        )))
    }
}

fn check_key(limits: &GatewayLimits, key: &str) -> Result<(), ApiError> {
    limits
        .key_value
        .check_key(key)
        .map_err(|error| ApiError::new(StatusCode::BAD_REQUEST, "invalid_key", error.to_string()))
}
