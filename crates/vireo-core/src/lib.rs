//! Vireo's domain: validated names, version settings, invocation records, and the traits the
//! other crates plug into. No wasmtime, no SQL, no HTTP server here.

pub mod auth;
pub mod backoff;
pub mod buckets;
pub mod cors;
pub mod cron;
pub mod egress;
pub mod invocation;
pub mod invoke;
pub mod json;
pub mod names;
pub mod queue;
pub mod schedule;
pub mod secrets;
pub mod settings;
pub mod store;
pub mod tenancy;
pub mod time;
pub mod trace;
pub mod usage;

pub use auth::{Action, ApiKey, AuthError, Caller, Principal, Role};
pub use cron::{CronSchedule, InvalidSchedule};
pub use invocation::{
    InvocationId, InvocationRecord, InvocationStatus, LogLine, LogStream, Trigger,
};
pub use invoke::{
    Body, BoxError, Call, DeployError, Deployed, Deployer, InvokeError, Invoker, RequestBodyError,
};
pub use names::{AliasName, InvalidName, Name, VersionSelector};
pub use queue::{
    AsyncInvocation, AsyncStatus, AsyncSubmitter, AttemptResult, ClaimRequest, ClaimedInvocation,
    CycleOutcome, Enqueued, NewAsyncInvocation, Queue, QueueCounts, QueueCycle, RetryPolicy,
    Settlement, StartedAttempt, StoredRequest, StoredResponse,
};
pub use schedule::{MissedSlots, NewSchedule, Schedule, Schedules};
pub use secrets::{
    InvalidSecretName, InvalidSecretValue, SealedSample, SealedSecret, SecretInfo, SecretManager,
    SecretName, SecretStore, SecretValue,
};
pub use settings::{InvalidSettings, InvokeAuth, SettingsLimits, VersionSettings};

pub use store::{
    FunctionInfo, InvocationQuery, LogQuery, NewVersion, Retained, Retention, Store, StoreError,
    VersionInfo,
};
pub use tenancy::{Directory, NamespaceInfo, NamespaceQuotas, RateLimit, Tenancy};
pub use trace::TraceContext;
pub use usage::{PricePlan, UsageGrouping, UsageQuery, UsageRow};
