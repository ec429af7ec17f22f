//! What the cases share, and a backend's own tests may use: names, versions, records and async
//! invocations whose values are not defaults (so round trips show), and the steps several cases
//! take.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use vireo_core::variables::VariableValue;
use vireo_core::{
    AliasName, AsyncInvocation, AsyncStatus, AttemptResult, Change, ClaimedInvocation,
    InvocationId, InvocationQuery, InvocationRecord, InvocationStatus, InvokeAuth, LogLine,
    LogQuery, LogStream, Name, NewAsyncInvocation, NewVersion, QueueCycle, RateLimit, SecretName,
    Settlement, StartedAttempt, StoredRequest, StoredResponse, Subscription, Trigger, VersionInfo,
    VersionSelector, VersionSettings,
};

use crate::Stores;

/// The time every write in the cases is stamped with, unless the case is about time.
pub const AT: i64 = 1_000;
/// A bound on pending invocations that never refuses.
pub const NO_QUOTA: u64 = u64::MAX;

/// Asserts that `$result` is an `Err` matching `$pattern` (and the guard, if given).
macro_rules! assert_err {
    ($result:expr, $pattern:pat $(if $guard:expr)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!("expected {}, got {other:?}", stringify!($pattern)),
        }
    };
}

pub(crate) use assert_err;

pub fn name(value: &str) -> Name {
    Name::parse("test", value).unwrap()
}

pub fn default_function(function: &str) -> (Name, Name) {
    (Name::default_namespace(), name(function))
}

/// A version whose hash is `sha` repeated to 64 characters and whose settings are not defaults,
/// so round trips are visible.
pub fn new_version(sha: &str) -> NewVersion {
    NewVersion {
        component_sha256: sha.repeat(64 / sha.len()),
        component_size: 1234,
        settings: VersionSettings {
            memory_mib: 64,
            timeout_ms: 2500,
            env: BTreeMap::from([("GREETING".to_string(), "hi".to_string())]),
            secrets: [SecretName::parse("DB_PASSWORD").unwrap()].into(),
            max_concurrency: Some(3),
            instance_reuse: 4,
            min_instances: 1,
            invoke_auth: InvokeAuth::Key,
            rate_limit: Some(RateLimit {
                per_second: 5,
                burst: 10,
            }),
            cors: None,
            allowed_outbound_hosts: vec!["https://api.example.com".to_string()],
            allow_unimplemented_imports: true,
            variables: BTreeMap::from([(
                "api_url".to_string(),
                VariableValue::Text("https://api.example.com".to_string()),
            )]),
            key_value_stores: [Name::default_kv_store()].into(),
            buckets: [Name::parse("bucket", "uploads").unwrap()].into(),
            sqlite_databases: [Name::parse("database", "orders").unwrap()].into(),
            spin_http: true,
        },
    }
}

/// A well-formed id that sorts by `n`, so ordering tests do not depend on the clock.
pub fn invocation_id(n: u64) -> InvocationId {
    InvocationId::parse(&format!("01900000-0000-7000-8000-{n:012x}")).unwrap()
}

pub fn record(function: &Name, n: u64) -> InvocationRecord {
    InvocationRecord {
        id: invocation_id(n),
        namespace: Name::default_namespace(),
        function: function.clone(),
        version: 1,
        trigger: Trigger::Http,
        started_at_us: 1_000_000 + i64::try_from(n).unwrap(),
        duration_us: 250,
        status: InvocationStatus::Ok,
        http_status: Some(200),
        cold: false,
        init_us: 40,
        cpu_us: 30,
        executions: 1,
        memory_mib: 128,
        billed_ms: 1,
        request_bytes: 10,
        response_bytes: 20,
        kv_reads: 3,
        kv_writes: 2,
        kv_bytes: 50,
        object_reads: 4,
        object_writes: 1,
        object_bytes: 700,
        outbound_calls: 5,
        outbound_bytes: 90,
        error: None,
    }
}

/// A log line of `record`; `seq` is a placeholder the store replaces.
pub fn log(record: &InvocationRecord, at_us: i64, line: &str) -> LogLine {
    LogLine {
        seq: -1,
        invocation_id: record.id.clone(),
        namespace: record.namespace.clone(),
        function: record.function.clone(),
        version: record.version,
        at_us,
        stream: LogStream::Stdout,
        line: line.to_string(),
    }
}

pub fn job(function: &Name, n: u64, key: Option<&str>) -> NewAsyncInvocation {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    NewAsyncInvocation {
        id: invocation_id(n),
        namespace: Name::default_namespace(),
        function: function.clone(),
        selector: VersionSelector::Alias(AliasName::latest()),
        trigger: Trigger::Async,
        source: format!("/namespaces/default/functions/{function}"),
        request: StoredRequest {
            method: "POST".to_string(),
            uri: format!("/path?n={n}"),
            headers,
            body: Bytes::from(format!("payload {n}")),
        },
        idempotency_key: key.map(str::to_string),
        accepted_at_us: 1_000,
        event_time_us: 900,
    }
}

/// A result that leaves the invocation with `attempts` counted.
pub fn result(n: u64, attempts: u32, settlement: Settlement, status: Option<u16>) -> AttemptResult {
    AttemptResult {
        id: invocation_id(n),
        attempts,
        settlement,
        response: status.map(|status| StoredResponse {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"answer"),
            body_truncated: false,
        }),
        error: None,
        at_us: 2_000,
    }
}

/// Reports the claimed attempts as begun, as a worker does when it starts each.
pub async fn start(stores: &Stores, owner: &str, claimed: &[ClaimedInvocation]) {
    let started: Vec<StartedAttempt> = claimed
        .iter()
        .map(|job| StartedAttempt {
            id: job.id.clone(),
            attempt: job.attempt,
        })
        .collect();
    let cycle = QueueCycle {
        owner,
        started: &started,
        ..QueueCycle::default()
    };
    stores.queue.cycle(&cycle).await.unwrap();
}

/// Adds [`new_version`]`(sha)` to `function` at [`AT`].
pub async fn add_version(
    stores: &Stores,
    namespace: &Name,
    function: &Name,
    sha: &str,
) -> VersionInfo {
    stores
        .catalog
        .add_version(namespace, function, new_version(sha), AT)
        .await
        .unwrap()
}

/// The version `selector` resolves to, which must exist.
pub async fn resolved(
    stores: &Stores,
    namespace: &Name,
    function: &Name,
    selector: &VersionSelector,
) -> VersionInfo {
    stores
        .catalog
        .resolve_version(namespace, function, selector)
        .await
        .unwrap()
}

/// Claims up to `limit` invocations for `owner`, ordered by id: the order of a claim is not
/// part of the contract.
pub async fn claim_by_id(
    stores: &Stores,
    owner: &str,
    now_us: i64,
    lease_until_us: i64,
    limit: u32,
) -> Vec<ClaimedInvocation> {
    let mut claimed = stores
        .queue
        .claim(owner, now_us, lease_until_us, limit)
        .await
        .unwrap();
    claimed.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    claimed
}

pub async fn deployed(stores: &Stores, function: &str) -> Name {
    let (namespace, function) = default_function(function);
    add_version(stores, &namespace, &function, "ab").await;
    function
}

/// The async invocation [`invocation_id`]`(n)`, which must exist.
pub async fn async_invocation(stores: &Stores, n: u64) -> AsyncInvocation {
    stores
        .queue_admin
        .get_async(&invocation_id(n))
        .await
        .unwrap()
        .unwrap()
}

pub async fn status(stores: &Stores, n: u64) -> (AsyncStatus, u32) {
    let found = async_invocation(stores, n).await;
    (found.status, found.attempts)
}

/// The first page of `function`'s records, or the page before `before`.
pub fn invocations(function: &Name, before: Option<u64>, limit: u32) -> InvocationQuery {
    InvocationQuery {
        namespace: Name::default_namespace(),
        function: function.clone(),
        before: before.map(invocation_id),
        limit,
    }
}

/// Every log line of `function`, at most 100.
pub fn logs(function: &Name) -> LogQuery {
    LogQuery {
        namespace: Name::default_namespace(),
        function: function.clone(),
        invocation: None,
        since_us: None,
        after_seq: None,
        limit: 100,
        newest: false,
    }
}

/// How long a change may take to reach a subscriber on another node: the feed's promise is
/// one second; the rest is slack for a loaded test machine.
pub const CHANGE_DEADLINE: Duration = Duration::from_secs(5);

/// Waits for `expected` on `subscription`, past other changes (a node may still be delivering
/// earlier ones); fails with what it saw if it does not come within [`CHANGE_DEADLINE`].
pub async fn receive(subscription: &mut Subscription, expected: &Change) {
    let mut seen = Vec::new();
    let waited = tokio::time::timeout(CHANGE_DEADLINE, async {
        loop {
            match subscription.next().await {
                Some(Ok(change)) if change == *expected => return,
                Some(other) => seen.push(other),
                None => panic!("the feed ended before {expected:?}"),
            }
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "{expected:?} did not arrive within {CHANGE_DEADLINE:?}; saw {seen:?}"
    );
}
