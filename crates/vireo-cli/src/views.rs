//! The parts of the server's JSON answers that the CLI shows. Unknown fields are ignored, so a
//! newer server does not break an older CLI.

use std::collections::BTreeMap;

use serde::Deserialize;

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
}

#[derive(Deserialize)]
pub struct LogLineView {
    pub invocation_id: String,
    pub at: String,
    pub stream: String,
    pub line: String,
}
