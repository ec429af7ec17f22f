//! Fixtures shared by the tests; nothing here is specific to one store implementation except
//! [`sqlite_store`].

use std::collections::BTreeMap;

use tempfile::TempDir;
use vireo_core::{
    InvocationId, InvocationRecord, InvocationStatus, InvokeAuth, LogLine, LogStream, Name,
    NewVersion, RateLimit, SecretName, Trigger, VersionSettings,
};
use vireo_store::SqliteStore;

/// A store on a fresh file; keep the directory alive as long as the store.
pub async fn sqlite_store() -> (TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("vireo.db"))
        .await
        .unwrap();
    (dir, store)
}

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
