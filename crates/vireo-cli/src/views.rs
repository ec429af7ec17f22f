//! The parts of the server's JSON answers that the CLI shows. Unknown fields are ignored, so a
//! newer server does not break an older CLI.

use std::collections::BTreeMap;

use serde::Deserialize;
pub use vireo_core::settings::SettingChange;

#[derive(Deserialize)]
pub struct FunctionList {
    pub functions: Vec<FunctionView>,
}

#[derive(Deserialize)]
pub struct FunctionView {
    pub name: String,
    pub created_at_us: i64,
    pub latest_version: Option<u32>,
    pub aliases: BTreeMap<String, u32>,
    #[serde(default)]
    pub splits: BTreeMap<String, vireo_core::AliasTarget>,
    /// Versions that fell back to a fresh instance per request on the server.
    #[serde(default)]
    pub reuse_fallback_versions: Vec<u32>,
}

#[derive(Deserialize)]
pub struct VersionList {
    pub versions: Vec<VersionView>,
}

#[derive(Deserialize)]
pub struct VersionView {
    pub version: u32,
    pub component_sha256: String,
    pub component_size: u64,
    pub settings: SettingsView,
    pub created_at_us: i64,
    /// Only on deploy: the settings that differ from the latest version's.
    #[serde(default)]
    pub settings_changed: Option<Vec<SettingChange>>,
    /// Only on deploy: imports linked as traps.
    #[serde(default)]
    pub unimplemented_imports: Option<Vec<String>>,
    /// Only on deploy: what the deployer should know.
    #[serde(default)]
    pub warnings: Option<Vec<String>>,
}

#[derive(Deserialize)]
pub struct SettingsView {
    pub memory_mib: u32,
    pub timeout_ms: u64,
}

#[derive(Deserialize)]
pub struct InvocationList {
    pub invocations: Vec<InvocationView>,
}

#[derive(Deserialize)]
pub struct InvocationView {
    pub id: String,
    pub namespace: String,
    pub function: String,
    pub version: u32,
    pub trigger: String,
    pub started_at_us: i64,
    pub duration_us: u64,
    pub status: String,
    pub http_status: Option<u16>,
    pub cold: bool,
    pub error: Option<String>,
}

/// A page of log lines; each line stays raw JSON so `-o json` can pass it through untouched.
#[derive(Deserialize)]
pub struct LogPage {
    pub lines: Vec<serde_json::Value>,
    pub next_after: i64,
    #[serde(default)]
    pub earlier_lines_left_out: bool,
}

#[derive(Deserialize)]
pub struct LogLineView {
    pub invocation_id: String,
    pub at: String,
    pub stream: String,
    pub line: String,
}

#[derive(Deserialize)]
pub struct QueueCounts {
    pub queued: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub dead: u64,
}

#[derive(Deserialize)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub max_event_age_secs: u64,
    pub min_backoff_ms: Option<u64>,
    pub max_backoff_ms: Option<u64>,
    pub retry_on_4xx: bool,
}

#[derive(Deserialize)]
pub struct AsyncInvocationList {
    pub invocations: Vec<AsyncInvocationView>,
}

#[derive(Deserialize)]
pub struct AsyncInvocationView {
    pub id: String,
    pub namespace: String,
    pub function: String,
    pub target: String,
    pub trigger: String,
    pub status: String,
    pub attempts: u32,
    pub accepted_at_us: i64,
    pub next_attempt_at: Option<String>,
    pub error: Option<String>,
    pub response: Option<StoredResponseView>,
}

#[derive(Deserialize)]
pub struct StoredResponseView {
    pub status: u16,
    pub body: Option<String>,
    pub body_base64: Option<String>,
    pub body_truncated: bool,
}

/// `GET /v1/invocations/{id}`: async invocations carry `attempts`, direct ones do not.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum InvocationDetail {
    Async(AsyncInvocationView),
    Direct(InvocationView),
}

#[derive(Deserialize)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleView>,
}

#[derive(Deserialize)]
pub struct ScheduleView {
    pub name: String,
    pub function: String,
    pub schedule: String,
    pub time_zone: String,
    #[serde(default)]
    pub payload: String,
    pub missed: String,
    pub paused: bool,
    pub next_fire_at_us: Option<i64>,
    pub last_invocation_id: Option<String>,
    pub last_status: Option<String>,
}

#[derive(Deserialize)]
pub struct SourceList {
    pub sources: Vec<SourceView>,
}

#[derive(Deserialize)]
pub struct SourceView {
    pub name: String,
    pub kind: String,
    #[serde(default)]
    pub url: String,
    pub stream: String,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub password_secret: Option<String>,
    #[serde(default)]
    pub batch_size: u32,
    #[serde(default)]
    pub batch_window_ms: Option<u32>,
    #[serde(default)]
    pub filter: Option<serde_json::Value>,
    #[serde(default)]
    pub qos: Option<u8>,
    pub function: String,
    pub paused: bool,
    pub state: String,
    pub received: u64,
    pub acknowledged: u64,
    #[serde(default)]
    pub acknowledged_per_second: f64,
    #[serde(default)]
    pub filtered: u64,
    pub lag: Option<u64>,
    pub last_error: Option<String>,
}

#[derive(Deserialize)]
pub struct SecretList {
    pub secrets: Vec<SecretView>,
}

#[derive(Deserialize)]
pub struct SecretView {
    pub name: String,
    pub created_at_us: i64,
    pub updated_at_us: i64,
}
