//! The JSON shapes of the admin API.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Serialize;
use utoipa::ToSchema;
use vireo_core::time::rfc3339;
use vireo_core::{
    AliasTarget, AsyncInvocation, AsyncStatus, FunctionInfo, InvocationRecord, InvocationStatus,
    LogLine, LogStream, StoredResponse, Trigger, VersionInfo, VersionSettings,
};

#[derive(Serialize, ToSchema)]
pub struct FunctionView {
    pub namespace: String,
    pub name: String,
    pub created_at: String,
    pub created_at_us: i64,
    pub latest_version: Option<u32>,
    /// Alias → version; `latest` always points at the newest version.
    pub aliases: BTreeMap<String, u32>,
    /// Aliases that split their traffic by weight (their primary version is in `aliases`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub splits: BTreeMap<String, AliasTarget>,
    /// Where the function answers, relative to the server.
    pub url: String,
    /// Versions whose compiled state is loaded in this server; the others are scaled to zero
    /// and their next request is a cold start.
    pub warm_versions: Vec<u32>,
    /// Loaded versions whose instances could not serve a second request (componentize-js
    /// components cannot): they run on a fresh instance per request whatever their
    /// `instance_reuse` says.
    pub reuse_fallback_versions: Vec<u32>,
}

impl FunctionView {
    pub fn new(
        info: FunctionInfo,
        warm_versions: Vec<u32>,
        reuse_fallback_versions: Vec<u32>,
    ) -> Self {
        Self {
            warm_versions,
            reuse_fallback_versions,
            url: format!("/fn/{}/{}", info.namespace, info.name),
            namespace: info.namespace.to_string(),
            name: info.name.to_string(),
            created_at: rfc3339(info.created_at_us),
            created_at_us: info.created_at_us,
            latest_version: info.latest_version,
            aliases: info.aliases,
            splits: info.splits,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct VersionView {
    pub namespace: String,
    pub function: String,
    pub version: u32,
    pub component_sha256: String,
    pub component_size: u64,
    pub settings: VersionSettings,
    pub created_at: String,
    pub created_at_us: i64,
    /// Only on deploy: false when the upload was identical to the latest version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
    /// Only on deploy: the settings that differ from the latest version's (from the defaults,
    /// for a function's first version).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings_changed: Option<Vec<crate::api::inherit::SettingChange>>,
    /// Only on deploy: the imports linked as traps, which fail if called
    /// (`allow_unimplemented_imports`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unimplemented_imports: Option<Vec<String>>,
    /// Only on deploy: what the deployer should know, in words (such as `instance_reuse` that
    /// cannot take effect).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warnings: Option<Vec<String>>,
}

impl From<VersionInfo> for VersionView {
    fn from(info: VersionInfo) -> Self {
        Self {
            namespace: info.namespace.to_string(),
            function: info.function.to_string(),
            version: info.version,
            component_sha256: info.component_sha256,
            component_size: info.component_size,
            settings: info.settings,
            created_at: rfc3339(info.created_at_us),
            created_at_us: info.created_at_us,
            created: None,
            settings_changed: None,
            unimplemented_imports: None,
            warnings: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct InvocationView {
    pub id: String,
    pub namespace: String,
    pub function: String,
    pub version: u32,
    pub trigger: Trigger,
    pub started_at: String,
    pub started_at_us: i64,
    pub duration_us: u64,
    pub status: InvocationStatus,
    pub http_status: Option<u16>,
    /// The version's compiled state had to be loaded first (first use, or first after idling).
    pub cold: bool,
    /// Time to get an instance ready, microseconds: loading (when cold) plus instantiation.
    pub init_us: u64,
    /// CPU time used on the server's threads (guest code and the host calls made for it),
    /// microseconds, summed over runs.
    pub cpu_us: u64,
    pub error: Option<String>,
    /// Runs under this id (the attempts of a retried async invocation); the metering below
    /// adds them up.
    pub executions: u32,
    pub memory_mib: u32,
    /// Each run's duration rounded up to the millisecond, at least 1 ms, summed.
    pub billed_ms: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// Key-value operations: reads, writes, and the bytes of keys and values they moved.
    pub kv_reads: u64,
    pub kv_writes: u64,
    pub kv_bytes: u64,
    /// Bucket operations: reads, writes, and the object bytes read and written.
    pub object_reads: u64,
    pub object_writes: u64,
    pub object_bytes: u64,
    /// Calls over database and broker connections, and the bytes of their results and
    /// published messages.
    pub outbound_calls: u64,
    pub outbound_bytes: u64,
}

impl From<InvocationRecord> for InvocationView {
    fn from(record: InvocationRecord) -> Self {
        Self {
            id: record.id.to_string(),
            namespace: record.namespace.to_string(),
            function: record.function.to_string(),
            version: record.version,
            trigger: record.trigger,
            started_at: rfc3339(record.started_at_us),
            started_at_us: record.started_at_us,
            duration_us: record.duration_us,
            status: record.status,
            http_status: record.http_status,
            cold: record.cold,
            init_us: record.init_us,
            cpu_us: record.cpu_us,
            error: record.error,
            executions: record.executions,
            memory_mib: record.memory_mib,
            billed_ms: record.billed_ms,
            request_bytes: record.request_bytes,
            response_bytes: record.response_bytes,
            kv_reads: record.kv_reads,
            kv_writes: record.kv_writes,
            kv_bytes: record.kv_bytes,
            object_reads: record.object_reads,
            object_writes: record.object_writes,
            object_bytes: record.object_bytes,
            outbound_calls: record.outbound_calls,
            outbound_bytes: record.outbound_bytes,
        }
    }
}

/// An async invocation: where it is in its life, and the function's answer once it gave one.
#[derive(Serialize, ToSchema)]
pub struct AsyncInvocationView {
    pub id: String,
    pub namespace: String,
    pub function: String,
    /// The version or alias it was sent to (`latest`, `3`, `prod`).
    pub target: String,
    pub trigger: Trigger,
    /// queued → running → succeeded | failed | dead (dead: in the dead-letter queue).
    pub status: AsyncStatus,
    /// Attempts started so far.
    pub attempts: u32,
    pub accepted_at: String,
    pub accepted_at_us: i64,
    pub updated_at: String,
    pub updated_at_us: i64,
    /// When a queued invocation's next attempt is due.
    pub next_attempt_at: Option<String>,
    pub idempotency_key: Option<String>,
    /// Why the last attempt did not succeed.
    pub error: Option<String>,
    /// The last attempt's answer.
    pub response: Option<StoredResponseView>,
    /// The record of the last attempt's execution, once one has finished.
    pub execution: Option<InvocationView>,
}

impl AsyncInvocationView {
    pub fn new(invocation: AsyncInvocation, execution: Option<InvocationRecord>) -> Self {
        Self {
            id: invocation.id.to_string(),
            namespace: invocation.namespace.to_string(),
            function: invocation.function.to_string(),
            target: invocation.selector,
            trigger: invocation.trigger,
            status: invocation.status,
            attempts: invocation.attempts,
            accepted_at: rfc3339(invocation.accepted_at_us),
            accepted_at_us: invocation.accepted_at_us,
            updated_at: rfc3339(invocation.updated_at_us),
            updated_at_us: invocation.updated_at_us,
            next_attempt_at: invocation.next_attempt_at_us.map(rfc3339),
            idempotency_key: invocation.idempotency_key,
            error: invocation.error,
            response: invocation.response.map(StoredResponseView::from),
            execution: execution.map(InvocationView::from),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct StoredResponseView {
    pub status: u16,
    /// Repeated headers are joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The body when it is UTF-8 text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The body, base64-encoded, when it is not UTF-8 text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_base64: Option<String>,
    /// Only the first part of a larger body was kept.
    pub body_truncated: bool,
}

impl From<StoredResponse> for StoredResponseView {
    fn from(response: StoredResponse) -> Self {
        let mut headers: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &response.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            headers
                .entry(name.to_string())
                .and_modify(|joined| {
                    joined.push_str(", ");
                    joined.push_str(&value);
                })
                .or_insert_with(|| value.into_owned());
        }
        let (body, body_base64) = match std::str::from_utf8(&response.body) {
            Ok(text) => (Some(text.to_string()), None),
            Err(_) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(&response.body)),
            ),
        };
        Self {
            status: response.status,
            headers,
            body,
            body_base64,
            body_truncated: response.body_truncated,
        }
    }
}

/// `GET /v1/invocations/{id}`: an async invocation, or the record of a direct one.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
pub enum InvocationDetail {
    Async(Box<AsyncInvocationView>),
    Direct(Box<InvocationView>),
}

#[derive(Serialize, ToSchema)]
pub struct AsyncInvocationList {
    pub invocations: Vec<AsyncInvocationView>,
}

#[derive(Serialize, ToSchema)]
pub struct LogLineView {
    pub seq: i64,
    pub invocation_id: String,
    pub function: String,
    pub version: u32,
    pub at: String,
    pub at_us: i64,
    pub stream: LogStream,
    pub line: String,
}

impl From<LogLine> for LogLineView {
    fn from(line: LogLine) -> Self {
        Self {
            seq: line.seq,
            invocation_id: line.invocation_id.to_string(),
            function: line.function.to_string(),
            version: line.version,
            at: rfc3339(line.at_us),
            at_us: line.at_us,
            stream: line.stream,
            line: line.line,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct FunctionList {
    pub functions: Vec<FunctionView>,
}

#[derive(Serialize, ToSchema)]
pub struct VersionList {
    pub versions: Vec<VersionView>,
}

#[derive(Serialize, ToSchema)]
pub struct InvocationList {
    pub invocations: Vec<InvocationView>,
}

#[derive(Serialize, ToSchema)]
pub struct LogPage {
    pub lines: Vec<LogLineView>,
    /// Pass as `after` to read the lines written since.
    pub next_after: i64,
    /// With `tail`: older lines exist that this page leaves out.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub earlier_lines_left_out: bool,
}
