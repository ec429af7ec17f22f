//! Vireo's domain: validated names, version settings, invocation records, and the traits the
//! other crates plug into. No wasmtime, no SQL, no HTTP server here.

pub mod auth;
pub mod backoff;
pub mod buckets;
pub mod connections;
pub mod cors;
pub mod cron;
pub mod egress;
pub mod http_route;
pub mod invocation;
pub mod invoke;
pub mod json;
pub mod jwt;
pub mod message_filter;
pub mod names;
pub mod queue;
pub mod schedule;
pub mod secrets;
pub mod settings;
pub mod source;
pub mod spin_http;
pub mod split;
pub mod store;
pub mod tenancy;
pub mod time;
pub mod trace;
pub mod usage;
pub mod variables;

pub use auth::{Action, ApiKey, AuthError, Caller, Principal, Role};
pub use connections::ConnectionLimits;
pub use cors::InvalidCors;
pub use cron::{CronSchedule, InvalidSchedule};
pub use http_route::{
    HostClaim, HostPattern, HttpRoute, InvalidRoute, LiveRoutes, PathPattern, RoutePattern,
    RouteStore, RouteTable,
};
pub use invocation::{
    InvocationId, InvocationMatch, InvocationRecord, InvocationStatus, LogLine, LogStream, Trigger,
};
pub use invoke::{
    Body, BoxError, Call, DeployError, Deployed, Deployer, InvokeError, Invoker, RequestBodyError,
    Unanswered, causes,
};
pub use names::{AliasName, InvalidName, Name, VersionSelector};
pub use queue::{
    AsyncInvocation, AsyncStatus, AsyncSubmitter, AttemptResult, ClaimRequest, ClaimedInvocation,
    CycleOutcome, Enqueued, InvalidRetryPolicy, NewAsyncInvocation, Queue, QueueAdmin, QueueCounts,
    QueueCycle, RetryPolicy, Settlement, StartedAttempt, StoredRequest, StoredResponse,
};
pub use schedule::{MissedSlots, NewSchedule, Schedule, ScheduleStore};
pub use secrets::{
    InvalidSecretName, InvalidSecretValue, SealedSample, SealedSecret, SecretError, SecretInfo,
    SecretManager, SecretName, SecretStore, SecretValue,
};
pub use settings::{InvalidSettings, InvokeAuth, SettingsLimits, VersionSettings};
pub use source::{
    InvalidSource, NewSource, SOURCE_RATE_SECONDS, SecretOpener, Source, SourceKind, SourceMonitor,
    SourceProbe, SourceProbeError, SourceSpec, SourceState, SourceStatus, SourceStore,
};
pub use split::{AliasTarget, InvalidSplit, StickyKey, VERSION_HEADER, WeightedVersion};

pub use store::{
    BucketId, BucketInfo, BucketNotification, ByteRange, Catalog, Change, ChangeFeed,
    ComponentStore, EVENT_DEPTH_HEADER, ErrorClass, EventBounds, FunctionInfo, HeartbeatBounds,
    InvalidCursor, InvalidObjectKey, InvocationQuery, KeyValueLimits, KeyValueStore, KvCursor,
    KvKeyPage, KvLimitExceeded, KvStoreId, KvStoreInfo, KvVersion, KvVersioned, LogQuery,
    MAX_EVENT_DEPTH, MAX_OBJECT_KEY_BYTES, MasterKeyRecord, Missed, NewObject, NewVersion,
    NodeInfo, NodeLiveness, NodeRegistry, OBJECT_KEY_PATTERN, ObjectBody, ObjectCursor,
    ObjectEvent, ObjectInfo, ObjectLimits, ObjectListing, ObjectPage, ObjectRead, ObjectStore,
    Records, Retained, Retention, SqlBounds, SqlConnection, SqlFailure, SqlRows, SqlValue,
    SqliteDatabaseInfo, SqliteDatabases, SqliteLimits, StoreError, Subscription, VersionInfo,
    check_component_sha256, check_object_key, component_sha256, decode_counter, encode_counter,
    node_liveness, verified_component,
};
pub use tenancy::{
    Directory, InvalidQuotas, NamespaceInfo, NamespaceQuotas, RateLimit, TenantStore,
};
pub use trace::TraceContext;
pub use usage::{InvalidPricePlan, PricePlan, UsageGrouping, UsageQuery, UsageRow};
