//! Path parameters, read by name and parsed into Vireo's names before a handler runs: `400`
//! `invalid_path` when one is not valid percent-encoded UTF-8, `400` `invalid_name` (or the
//! code of what it names) when it breaks its rule. A handler that takes a `FunctionPath` holds
//! two valid names.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use vireo_core::{
    AliasName, BucketId, InvocationId, KvStoreId, Name, SecretName, VersionSelector,
    check_object_key,
};

use super::rejected;
use crate::error::ApiError;

/// Path parameters as strings; `400` when one is not valid percent-encoded UTF-8.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Self(value)),
            Err(rejection) => Err(rejected(
                &rejection,
                rejection.status(),
                "invalid_path",
                rejection.body_text(),
            )),
        }
    }
}

/// `{namespace}`.
pub struct NamespacePath(pub Name);

/// `{namespace}` and `{function}`.
pub struct FunctionPath {
    pub namespace: Name,
    pub function: Name,
}

/// A function's `{alias}`: any but `latest`, which Vireo moves itself.
pub struct AliasPath {
    pub namespace: Name,
    pub function: Name,
    pub alias: AliasName,
}

/// A function's `{version}`: a number or an alias.
pub struct VersionPath {
    pub namespace: Name,
    pub function: Name,
    pub selector: VersionSelector,
}

/// A schedule's `{name}` in its `{namespace}`.
pub struct SchedulePath {
    pub namespace: Name,
    pub name: Name,
}

/// A source's `{name}` in its `{namespace}`.
pub struct SourcePath {
    pub namespace: Name,
    pub name: Name,
}

/// A SQLite database's `{name}` in its `{namespace}`.
pub struct SqliteDatabasePath {
    pub namespace: Name,
    pub name: Name,
}

/// A secret's `{name}` in its `{namespace}`.
pub struct SecretPath {
    pub namespace: Name,
    pub name: SecretName,
}

/// An invocation's `{id}`.
pub struct InvocationPath(pub InvocationId);

/// A key-value `{store}` in its `{namespace}`.
pub struct KvStorePath(pub KvStoreId);

/// A `{key}` of a key-value `{store}`: any UTF-8, percent-decoded from its one path segment
/// (`a%2Fb` is the key `a/b`); the handler checks it against the configured limits.
pub struct KvKeyPath {
    pub store: KvStoreId,
    pub key: String,
}

/// `/v1/namespaces/{namespace}/buckets/{bucket}`.
pub struct BucketPath(pub BucketId);

/// `…/buckets/{bucket}/objects/{*key}`: the key is the rest of the path, slashes and all,
/// checked against the store's rules.
pub struct ObjectPath {
    pub bucket: BucketId,
    pub key: String,
}

/// `…/buckets/{bucket}/notifications/{function}`.
pub struct NotificationPath {
    pub bucket: BucketId,
    pub function: Name,
}

/// A typed path: the parameters it reads by name, and how they become its fields.
trait FromParams: Sized {
    type Raw: DeserializeOwned + Send;
    fn parse(raw: Self::Raw) -> Result<Self, ApiError>;
}

macro_rules! extract_from_params {
    ($($path:ty),* $(,)?) => {
        $(
            impl<S: Send + Sync> FromRequestParts<S> for $path {
                type Rejection = ApiError;

                async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
                    let ApiPath(raw) = ApiPath::from_request_parts(parts, state).await?;
                    <Self as FromParams>::parse(raw)
                }
            }
        )*
    };
}

extract_from_params!(
    NamespacePath,
    FunctionPath,
    AliasPath,
    VersionPath,
    SchedulePath,
    SourcePath,
    SqliteDatabasePath,
    SecretPath,
    InvocationPath,
    KvStorePath,
    KvKeyPath,
    BucketPath,
    ObjectPath,
    NotificationPath,
);

// The parameters each path reads, by name; a route's others are ignored.

#[derive(Deserialize)]
struct RawNamespace {
    namespace: String,
}

#[derive(Deserialize)]
struct RawFunction {
    namespace: String,
    function: String,
}

#[derive(Deserialize)]
struct RawAlias {
    namespace: String,
    function: String,
    alias: String,
}

#[derive(Deserialize)]
struct RawVersion {
    namespace: String,
    function: String,
    version: String,
}

#[derive(Deserialize)]
struct RawNamed {
    namespace: String,
    name: String,
}

#[derive(Deserialize)]
struct RawId {
    id: String,
}

#[derive(Deserialize)]
struct RawKvStore {
    namespace: String,
    store: String,
}

#[derive(Deserialize)]
struct RawKvKey {
    namespace: String,
    store: String,
    key: String,
}

#[derive(Deserialize)]
struct RawBucket {
    namespace: String,
    bucket: String,
}

#[derive(Deserialize)]
struct RawObject {
    namespace: String,
    bucket: String,
    key: String,
}

#[derive(Deserialize)]
struct RawNotification {
    namespace: String,
    bucket: String,
    function: String,
}

impl FromParams for NotificationPath {
    type Raw = RawNotification;
    fn parse(raw: RawNotification) -> Result<Self, ApiError> {
        Ok(Self {
            bucket: bucket(&raw.namespace, &raw.bucket)?,
            function: function(&raw.function)?,
        })
    }
}

fn bucket(namespace_value: &str, bucket: &str) -> Result<BucketId, ApiError> {
    Ok(BucketId::new(
        namespace(namespace_value)?,
        Name::parse("bucket", bucket)?,
    ))
}

impl FromParams for BucketPath {
    type Raw = RawBucket;
    fn parse(raw: RawBucket) -> Result<Self, ApiError> {
        bucket(&raw.namespace, &raw.bucket).map(Self)
    }
}

/// `400 invalid_key` unless `key` may name an object.
pub fn checked_object_key(key: &str) -> Result<(), ApiError> {
    check_object_key(key).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid_key",
            e.to_string(),
        )
    })
}

impl FromParams for ObjectPath {
    type Raw = RawObject;
    fn parse(raw: RawObject) -> Result<Self, ApiError> {
        checked_object_key(&raw.key)?;
        Ok(Self {
            bucket: bucket(&raw.namespace, &raw.bucket)?,
            key: raw.key,
        })
    }
}

fn kv_store(namespace_value: &str, store: &str) -> Result<KvStoreId, ApiError> {
    Ok(KvStoreId::new(
        namespace(namespace_value)?,
        Name::parse("key-value store", store)?,
    ))
}

/// A namespace name wherever the API takes one.
pub fn namespace(value: &str) -> Result<Name, ApiError> {
    Ok(Name::parse("namespace", value)?)
}

/// A function name wherever the API takes one.
pub fn function(value: &str) -> Result<Name, ApiError> {
    Ok(Name::parse("function", value)?)
}

impl FromParams for NamespacePath {
    type Raw = RawNamespace;
    fn parse(raw: RawNamespace) -> Result<Self, ApiError> {
        Ok(Self(namespace(&raw.namespace)?))
    }
}

impl FromParams for FunctionPath {
    type Raw = RawFunction;
    fn parse(raw: RawFunction) -> Result<Self, ApiError> {
        Ok(Self {
            namespace: namespace(&raw.namespace)?,
            function: function(&raw.function)?,
        })
    }
}

impl FromParams for AliasPath {
    type Raw = RawAlias;
    fn parse(raw: RawAlias) -> Result<Self, ApiError> {
        let (namespace, function) = (namespace(&raw.namespace)?, function(&raw.function)?);
        AliasPath::new(namespace, function, &raw.alias)
    }
}

impl AliasPath {
    /// The function's alias `alias`, which may not be `latest`.
    pub fn new(namespace: Name, function: Name, alias: &str) -> Result<Self, ApiError> {
        let alias = AliasName::parse(alias)?;
        if alias.is_latest() {
            return Err(ApiError::bad_request(
                "`latest` always points at the newest version and cannot be changed",
            ));
        }
        Ok(Self {
            namespace,
            function,
            alias,
        })
    }
}

impl FromParams for VersionPath {
    type Raw = RawVersion;
    fn parse(raw: RawVersion) -> Result<Self, ApiError> {
        Ok(Self {
            namespace: namespace(&raw.namespace)?,
            function: function(&raw.function)?,
            selector: raw.version.parse()?,
        })
    }
}

impl FromParams for SourcePath {
    type Raw = RawNamed;
    fn parse(raw: RawNamed) -> Result<Self, ApiError> {
        Ok(Self {
            namespace: namespace(&raw.namespace)?,
            name: Name::parse("source", &raw.name)?,
        })
    }
}

impl FromParams for SqliteDatabasePath {
    type Raw = RawNamed;
    fn parse(raw: RawNamed) -> Result<Self, ApiError> {
        Ok(Self {
            namespace: namespace(&raw.namespace)?,
            name: Name::parse("SQLite database", &raw.name)?,
        })
    }
}

impl FromParams for SchedulePath {
    type Raw = RawNamed;
    fn parse(raw: RawNamed) -> Result<Self, ApiError> {
        Ok(Self {
            namespace: namespace(&raw.namespace)?,
            name: Name::parse("schedule", &raw.name)?,
        })
    }
}

impl FromParams for SecretPath {
    type Raw = RawNamed;
    fn parse(raw: RawNamed) -> Result<Self, ApiError> {
        Ok(Self {
            namespace: namespace(&raw.namespace)?,
            name: SecretName::parse(&raw.name)?,
        })
    }
}

impl FromParams for InvocationPath {
    type Raw = RawId;
    fn parse(raw: RawId) -> Result<Self, ApiError> {
        invocation_id(&raw.id).map(Self)
    }
}

impl FromParams for KvStorePath {
    type Raw = RawKvStore;
    fn parse(raw: RawKvStore) -> Result<Self, ApiError> {
        kv_store(&raw.namespace, &raw.store).map(Self)
    }
}

impl FromParams for KvKeyPath {
    type Raw = RawKvKey;
    fn parse(raw: RawKvKey) -> Result<Self, ApiError> {
        Ok(Self {
            store: kv_store(&raw.namespace, &raw.store)?,
            key: raw.key,
        })
    }
}

/// An invocation id wherever the API takes one: in a path, a query or a body.
pub fn invocation_id(value: &str) -> Result<InvocationId, ApiError> {
    InvocationId::parse(value)
        .ok_or_else(|| ApiError::bad_request(format!("{value:?} is not an invocation id (a UUID)")))
}
