//! The storage seams: the catalog of what is deployed, the component bytes, the append-only
//! records of what ran, the key-value stores functions keep state in, the buckets of objects, the nodes sharing a
//! store, the feed of changes between nodes, and the errors they share. The async queue,
//! schedules, tenants and secrets have their seams beside their domain types. Implemented in
//! `vireo-store`; every backend passes its conformance suite.

mod catalog;
mod changes;
mod components;
mod error;
mod key_value;
mod master_key;
mod nodes;
mod objects;
mod records;
mod sqlite;

pub use catalog::{Catalog, FunctionInfo, NewVersion, VersionInfo};
pub use changes::{Change, ChangeFeed, Missed, Subscription};
pub use components::{
    ComponentStore, check_component_sha256, component_sha256, verified_component,
};
pub use error::{ErrorClass, StoreError};
pub use key_value::{
    InvalidCursor, KV_KEY_PATTERN, KeyValueLimits, KeyValueStore, KvCursor, KvKeyPage,
    KvLimitExceeded, KvStoreId, KvStoreInfo, KvVersion, KvVersioned, decode_counter,
    encode_counter,
};
pub use master_key::MasterKeyRecord;
pub use nodes::{HeartbeatBounds, NodeInfo, NodeLiveness, NodeRegistry, node_liveness};
pub use objects::{
    BucketId, BucketInfo, BucketNotification, ByteRange, EVENT_DEPTH_HEADER, EventBounds,
    InvalidObjectKey, MAX_EVENT_DEPTH, MAX_OBJECT_KEY_BYTES, NewObject, OBJECT_KEY_PATTERN,
    ObjectBody, ObjectCursor, ObjectEvent, ObjectInfo, ObjectLimits, ObjectListing, ObjectPage,
    ObjectRead, ObjectStore, check_object_key,
};
pub use records::{InvocationQuery, LogQuery, Records, Retained, Retention};
pub use sqlite::{
    SqlBounds, SqlConnection, SqlFailure, SqlRows, SqlValue, SqliteDatabaseInfo, SqliteDatabases,
    SqliteLimits,
};
