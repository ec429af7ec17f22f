//! The store trait: functions, immutable versions, aliases, invocation records and logs.
//! Implemented for SQLite in `vireo-store`; every implementation passes the same tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::invocation::{InvocationId, InvocationRecord, LogLine};
use crate::names::{AliasName, Name, VersionSelector};
use crate::settings::VersionSettings;
use crate::usage::{UsageQuery, UsageRow};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("namespace {0} does not exist")]
    NamespaceNotFound(Name),
    #[error("namespace {0} already exists")]
    NamespaceExists(Name),
    #[error("namespace {namespace} still holds {what}; delete them first")]
    NamespaceNotEmpty { namespace: Name, what: String },
    #[error("API key {0} does not exist")]
    KeyNotFound(String),
    /// A namespace quota would be exceeded; the message names it and its value.
    #[error("{0}")]
    QuotaExceeded(String),
    #[error("function {namespace}/{function} does not exist")]
    FunctionNotFound { namespace: Name, function: Name },
    #[error("function {namespace}/{function} has no version {version}")]
    VersionNotFound {
        namespace: Name,
        function: Name,
        version: u32,
    },
    #[error("function {namespace}/{function} has no alias {alias}")]
    AliasNotFound {
        namespace: Name,
        function: Name,
        alias: AliasName,
    },
    #[error("function {namespace}/{function} already exists")]
    FunctionExists { namespace: Name, function: Name },
    #[error("schedule {namespace}/{name} does not exist")]
    ScheduleNotFound { namespace: Name, name: Name },
    #[error("schedule {namespace}/{name} already exists; choose another name")]
    ScheduleExists { namespace: Name, name: Name },
    #[error("secret {namespace}/{name} does not exist")]
    SecretNotFound {
        namespace: Name,
        name: crate::secrets::SecretName,
    },
    #[error("storage failure: {0}")]
    Backend(String),
}

/// A function and where its aliases point.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionInfo {
    pub namespace: Name,
    pub name: Name,
    pub created_at_us: i64,
    /// Newest version number; `None` before the first deploy.
    pub latest_version: Option<u32>,
    /// Alias → version, `latest` included when a version exists.
    pub aliases: BTreeMap<String, u32>,
}

/// One immutable version of a function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub namespace: Name,
    pub function: Name,
    pub version: u32,
    /// Content address of the component bytes (hex sha256).
    pub component_sha256: String,
    pub component_size: u64,
    pub settings: VersionSettings,
    pub created_at_us: i64,
}

/// What a deploy adds.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub component_sha256: String,
    pub component_size: u64,
    pub settings: VersionSettings,
}

/// Which invocation records to list, newest first.
#[derive(Debug, Clone)]
pub struct InvocationQuery {
    pub namespace: Name,
    pub function: Name,
    /// Only records that started before this id (for paging).
    pub before: Option<InvocationId>,
    pub limit: u32,
}

/// Which log lines to read, oldest first.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub namespace: Name,
    pub function: Name,
    pub invocation: Option<InvocationId>,
    /// Only lines written at or after this time.
    pub since_us: Option<i64>,
    /// Only lines after this sequence number (for following).
    pub after_seq: Option<i64>,
    pub limit: u32,
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    async fn namespace_exists(&self, namespace: &Name) -> Result<bool, StoreError>;

    /// Creates an empty function; `FunctionExists` if it is already there.
    async fn create_function(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<FunctionInfo, StoreError>;
    async fn get_function(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<FunctionInfo, StoreError>;
    async fn list_functions(&self, namespace: &Name) -> Result<Vec<FunctionInfo>, StoreError>;
    /// Deletes the function with its versions, aliases, invocation records and logs.
    async fn delete_function(&self, namespace: &Name, function: &Name) -> Result<(), StoreError>;

    /// Adds the next version (creating the function if needed) and points `latest` at it.
    async fn add_version(
        &self,
        namespace: &Name,
        function: &Name,
        version: NewVersion,
    ) -> Result<VersionInfo, StoreError>;
    async fn list_versions(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<Vec<VersionInfo>, StoreError>;
    async fn resolve_version(
        &self,
        namespace: &Name,
        function: &Name,
        selector: &VersionSelector,
    ) -> Result<VersionInfo, StoreError>;
    /// Every distinct component hash some version uses (to keep their artifacts).
    async fn component_hashes(&self) -> Result<Vec<String>, StoreError>;

    async fn set_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
        version: u32,
    ) -> Result<(), StoreError>;
    async fn delete_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
    ) -> Result<(), StoreError>;

    /// Writes finished invocations and their log lines in one transaction.
    async fn record_invocations(
        &self,
        records: &[InvocationRecord],
        logs: &[LogLine],
    ) -> Result<(), StoreError>;
    async fn get_invocation(
        &self,
        id: &InvocationId,
    ) -> Result<Option<InvocationRecord>, StoreError>;
    async fn list_invocations(
        &self,
        query: &InvocationQuery,
    ) -> Result<Vec<InvocationRecord>, StoreError>;
    async fn read_logs(&self, query: &LogQuery) -> Result<Vec<LogLine>, StoreError>;

    /// Invocation records summed per group, ordered by group key.
    async fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageRow>, StoreError>;

    /// Deletes what retention no longer keeps; returns what went.
    async fn apply_retention(&self, rules: &Retention) -> Result<Retained, StoreError>;
}

/// What to delete: everything older than its cut-off, and the oldest log lines beyond a size.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Log lines written before this time.
    pub logs_before_us: i64,
    /// Invocation records (and with them usage) started before this time, and finished async
    /// invocations last updated before it.
    pub records_before_us: i64,
    /// Keep at most this many bytes of log text, newest first.
    pub max_log_bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retained {
    pub log_lines_deleted: u64,
    pub records_deleted: u64,
    pub async_deleted: u64,
}
