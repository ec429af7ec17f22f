//! The JSON shapes of the admin API.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;
use vireo_core::time::rfc3339;
use vireo_core::{
    FunctionInfo, InvocationRecord, InvocationStatus, LogLine, LogStream, Trigger, VersionInfo,
    VersionSettings,
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
    /// Where the function answers, relative to the server.
    pub url: String,
    /// Versions whose compiled state is loaded in this server; the others are scaled to zero
    /// and their next request is a cold start.
    pub warm_versions: Vec<u32>,
}

impl FunctionView {
    pub fn new(info: FunctionInfo, warm_versions: Vec<u32>) -> Self {
        Self {
            warm_versions,
            url: format!("/fn/{}/{}", info.namespace, info.name),
            namespace: info.namespace.to_string(),
            name: info.name.to_string(),
            created_at: rfc3339(info.created_at_us),
            created_at_us: info.created_at_us,
            latest_version: info.latest_version,
            aliases: info.aliases,
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
    pub error: Option<String>,
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
            error: record.error,
        }
    }
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
}
