//! The records: what ran (invocation records and their log lines, written in batches off the
//! invocation path), the usage summed from them, and retention deleting what is old.

use super::StoreError;
use crate::invocation::{InvocationId, InvocationMatch, InvocationRecord, LogLine};
use crate::names::Name;
use crate::usage::{UsageQuery, UsageRow};

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
    pub invocation: Option<InvocationMatch>,
    /// Only lines written at or after this time.
    pub since_us: Option<i64>,
    /// Only lines after this sequence number (for following).
    pub after_seq: Option<i64>,
    pub limit: u32,
    /// The last `limit` lines rather than the first (still returned oldest first), as `tail`.
    pub newest: bool,
}

#[async_trait::async_trait]
pub trait Records: Send + Sync + 'static {
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
