//! Object buckets: named buckets of files per namespace, each object a key with its bytes,
//! content type, size, sha256 (its ETag), creation time and user metadata. Bodies stream in and
//! out as chunks and are never held whole in memory; where the bytes live is the backend's
//! choice (files on the data directory's disk for SQLite, chunk rows for PostgreSQL). An object
//! becomes visible only once its bytes are stored whole, and a replaced or deleted object's
//! bytes are never read again. The store keeps each bucket's object count and bytes as it
//! writes, so a listing and the namespace's `max_object_bytes` quota never scan the objects.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::pin::Pin;

use bytes::Bytes;
use futures_core::Stream;
use serde::{Deserialize, Serialize};

use super::{KvCursor, StoreError};
use crate::names::Name;

/// `[objects]` in the server's config: the largest object the API or a function may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectLimits {
    pub max_object_bytes: u64,
}

impl ObjectLimits {
    pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 100 * 1024 * 1024;
}

impl Default for ObjectLimits {
    fn default() -> Self {
        Self {
            max_object_bytes: Self::DEFAULT_MAX_OBJECT_BYTES,
        }
    }
}

/// The longest object key, in bytes of UTF-8.
pub const MAX_OBJECT_KEY_BYTES: usize = 1024;

/// What [`check_object_key`] allows besides the length, as a JSON Schema pattern (see
/// `KV_KEY_PATTERN`, whose reasons hold here too).
pub const OBJECT_KEY_PATTERN: &str = r"^(?!\.\.?$)[^\x00]+$";

/// An object's bytes as they stream in or out.
pub type ObjectBody = Pin<Box<dyn Stream<Item = io::Result<Bytes>> + Send>>;

/// Where an object listing goes on: after the last key (or rolled-up prefix) of the page before.
pub type ObjectCursor = KvCursor;

/// A key the store takes: not empty, no NUL, neither `.` nor `..` (no URL path can name them),
/// at most [`MAX_OBJECT_KEY_BYTES`] of UTF-8.
pub fn check_object_key(key: &str) -> Result<(), InvalidObjectKey> {
    let refuse = |why: String| Err(InvalidObjectKey(why));
    if key.is_empty() || key == "." || key == ".." {
        return refuse(format!("{key:?} is not an object key"));
    }
    if key.contains('\0') {
        return refuse("an object key must not contain the NUL character".into());
    }
    if key.len() > MAX_OBJECT_KEY_BYTES {
        return refuse(format!(
            "an object key of {} bytes is longer than the limit of {MAX_OBJECT_KEY_BYTES} bytes",
            key.len()
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidObjectKey(String);

/// One bucket of one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BucketId {
    pub namespace: Name,
    pub bucket: Name,
}

impl BucketId {
    pub fn new(namespace: Name, bucket: Name) -> Self {
        Self { namespace, bucket }
    }
}

impl fmt::Display for BucketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.bucket)
    }
}

/// A bucket as listed: what it holds, counted as it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BucketInfo {
    pub name: Name,
    pub objects: u64,
    /// The objects' bytes; what `max_object_bytes` counts.
    pub bytes: u64,
    pub created_at_us: i64,
}

/// An object's description, without its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// The hex sha256 of the bytes.
    pub etag: String,
    pub content_type: String,
    pub created_at_us: i64,
    /// What the writer attached, returned as given.
    pub metadata: BTreeMap<String, String>,
}

/// What a write says of the object besides its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewObject {
    pub content_type: String,
    pub metadata: BTreeMap<String, String>,
    pub at_us: i64,
    /// The largest body the write takes; a longer one is refused with `ObjectTooLarge` as
    /// soon as it passes the limit, and nothing of it is stored.
    pub max_bytes: u64,
    /// What the notifications the write triggers are bounded by.
    pub events: EventBounds,
}

/// Notified functions that write into buckets may trigger each other without end; each event
/// carries its depth in the chain, and a change made at this depth triggers no more.
pub const MAX_EVENT_DEPTH: u32 = 8;

/// The CloudEvents extension attribute that carries an event's depth (a header of its
/// delivery); a function's writes read it from the request that invoked it.
pub const EVENT_DEPTH_HEADER: &str = "ce-vireodepth";

/// What bounds the notifications a change triggers (see [`ObjectStore::put_object`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventBounds {
    /// The server's bound on a namespace's queued async invocations, which they count against.
    pub max_pending: u64,
    /// How deep in a chain of notified functions the change is made: 0 from outside one (the
    /// API, a function invoked otherwise), `n` from a function invoked by an event of depth
    /// `n`. Its events have depth `n + 1`; at [`MAX_EVENT_DEPTH`] it triggers none.
    pub depth: u32,
}

impl EventBounds {
    /// A change made outside any chain of events.
    pub fn outside_chains(max_pending: u64) -> Self {
        Self {
            max_pending,
            depth: 0,
        }
    }

    /// Whether the change's events would go past [`MAX_EVENT_DEPTH`].
    pub fn chain_ends(&self) -> bool {
        self.depth >= MAX_EVENT_DEPTH
    }
}

/// A change to a bucket that a notification can ask to hear of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectEvent {
    Created,
    Deleted,
}

impl ObjectEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Deleted => "deleted",
        }
    }

    /// The CloudEvents `type` of its deliveries.
    pub fn event_type(self) -> &'static str {
        match self {
            Self::Created => "dev.vireo.object.created",
            Self::Deleted => "dev.vireo.object.deleted",
        }
    }
}

/// Invoke `function` for each change of `events` to an object whose key starts with `prefix`
/// and ends with `suffix`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketNotification {
    pub function: Name,
    pub events: std::collections::BTreeSet<ObjectEvent>,
    pub prefix: String,
    pub suffix: String,
}

impl BucketNotification {
    pub fn matches(&self, event: ObjectEvent, key: &str) -> bool {
        self.events.contains(&event) && key.starts_with(&self.prefix) && key.ends_with(&self.suffix)
    }
}

/// Bytes `start..end` of an object (end exclusive), within its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// An object's description and the bytes asked for.
pub struct ObjectRead {
    pub info: ObjectInfo,
    pub range: ByteRange,
    pub body: ObjectBody,
}

impl fmt::Debug for ObjectRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectRead")
            .field("info", &self.info)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// Which objects a listing shows: keys starting with `prefix`; with a `delimiter`, keys that
/// have it after the prefix are rolled up into one common prefix each (up to and including
/// the delimiter), as S3 lists "folders".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectListing {
    pub prefix: String,
    pub delimiter: Option<String>,
    pub cursor: Option<ObjectCursor>,
    /// Entries (objects plus common prefixes) per page, at least one.
    pub limit: u32,
}

/// One page of a listing, in key order (by the bytes of the keys' UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPage {
    pub objects: Vec<ObjectInfo>,
    pub common_prefixes: Vec<String>,
    /// Where the next page starts; `None` when this page is the last.
    pub cursor: Option<ObjectCursor>,
}

/// The buckets of every namespace. A write checks the namespace's `max_object_bytes` quota in
/// the transaction that makes the object visible. An unknown bucket is `BucketNotFound`; an
/// unknown namespace, `NamespaceNotFound`. Keys are the caller's to check
/// ([`check_object_key`]).
#[async_trait::async_trait]
pub trait ObjectStore: Send + Sync + 'static {
    /// `BucketExists` if it does.
    async fn create_bucket(
        &self,
        namespace: &Name,
        name: &Name,
        at_us: i64,
    ) -> Result<BucketInfo, StoreError>;

    /// Every bucket of the namespace by name.
    async fn list_buckets(&self, namespace: &Name) -> Result<Vec<BucketInfo>, StoreError>;

    async fn bucket(&self, bucket: &BucketId) -> Result<BucketInfo, StoreError>;

    /// `BucketNotEmpty` while it holds objects.
    async fn delete_bucket(&self, bucket: &BucketId) -> Result<(), StoreError>;

    /// Stores `body` as the object `key`, replacing any object of that key once the new bytes
    /// are whole. A body that fails (the client went away) stores nothing. Each matching
    /// notification's async invocation is accepted in the transaction that makes the object
    /// visible, so an object that exists always has its events; a namespace whose queue is
    /// full refuses the write (`QuotaExceeded`) rather than lose one. A write at the end of a
    /// chain of events ([`EventBounds::chain_ends`]) triggers none.
    async fn put_object(
        &self,
        bucket: &BucketId,
        key: &str,
        object: NewObject,
        body: ObjectBody,
    ) -> Result<ObjectInfo, StoreError>;

    async fn head_object(
        &self,
        bucket: &BucketId,
        key: &str,
    ) -> Result<Option<ObjectInfo>, StoreError>;

    /// The object with the bytes of `range` (clamped to its size; all of them when `None`).
    async fn get_object(
        &self,
        bucket: &BucketId,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<Option<ObjectRead>, StoreError>;

    /// Whether the object existed; its `deleted` notifications are accepted as for
    /// [`ObjectStore::put_object`].
    async fn delete_object(
        &self,
        bucket: &BucketId,
        key: &str,
        events: EventBounds,
    ) -> Result<bool, StoreError>;

    /// Sets the bucket's notification for `notification.function`, replacing any it had.
    async fn set_notification(
        &self,
        bucket: &BucketId,
        notification: &BucketNotification,
    ) -> Result<(), StoreError>;

    /// The bucket's notifications by function.
    async fn notifications(&self, bucket: &BucketId)
    -> Result<Vec<BucketNotification>, StoreError>;

    /// Whether the bucket had a notification for `function`.
    async fn delete_notification(
        &self,
        bucket: &BucketId,
        function: &Name,
    ) -> Result<bool, StoreError>;

    async fn list_objects(
        &self,
        bucket: &BucketId,
        listing: &ObjectListing,
    ) -> Result<ObjectPage, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_by_bytes_and_shape() {
        assert!(check_object_key("images/cat.png").is_ok());
        assert!(check_object_key(&"k".repeat(1024)).is_ok());
        assert_eq!(
            check_object_key(&"é".repeat(513)).unwrap_err().to_string(),
            "an object key of 1026 bytes is longer than the limit of 1024 bytes"
        );
        for bad in ["", ".", "..", "a\0b"] {
            assert!(check_object_key(bad).is_err(), "{bad:?}");
        }
        assert!(
            check_object_key("a/../b").is_ok(),
            "only a whole `..` is refused"
        );
    }
}
