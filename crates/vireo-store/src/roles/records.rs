//! The [`Records`]: invocation records and log lines (each backend writes a batch its own
//! fastest way), usage summed from them, and retention.

use vireo_core::{
    InvocationId, InvocationMatch, InvocationQuery, InvocationRecord, LogLine, LogQuery, Records,
    Retained, Retention, StoreError, UsageGrouping, UsageQuery, UsageRow,
};

use super::{Conn, Dialect, SqlStore, check_function, commit};
use crate::codec::{saturating_i64, unsigned};
use crate::rows;
use crate::sql::query;

/// Where the dialects differ for records.
#[async_trait::async_trait]
pub(crate) trait RecordsDialect: Dialect {
    /// Follows [`READ_LOGS`] when one invocation's lines are read: how to make the database
    /// use the per-invocation index.
    const LOGS_OF_INVOCATION: &'static str;
    /// Follows `SELECT` and a [`Self::usage_key`]: the sums, then `WHERE namespace = `.
    const USAGE_SUMS: &'static str;
    /// The newest line (`seq`) whose running total of bytes, newest first, passes `$1`.
    const LOG_SIZE_CUT: &'static str;

    /// The group key of a usage row: the function, the UTC day or the UTC hour.
    fn usage_key(grouping: UsageGrouping) -> &'static str;

    /// Writes a batch of records and log lines in the transaction `tx`. Rows of functions
    /// deleted while their invocations were still queued are skipped, so a late batch cannot
    /// resurrect records of a deleted (or re-created) function. A repeated id replaces the
    /// earlier record's outcome and adds to its metering (a retried attempt).
    async fn record(
        tx: &mut Conn<Self>,
        records: &[InvocationRecord],
        logs: &[LogLine],
    ) -> Result<(), StoreError>;
}

const MAX_INVOCATIONS_PER_PAGE: u32 = 1000;
const MAX_LOG_LINES_PER_READ: u32 = 10_000;

/// The columns [`rows::invocation_record`] reads, and the record writer writes.
macro_rules! invocation_columns {
    () => {
        r#"id, namespace, function, version, "trigger", started_at_us, duration_us, status, http_status, cold, error, init_us, executions, memory_mib, billed_ms, mib_ms, request_bytes, response_bytes, cpu_us, kv_reads, kv_writes, kv_bytes, object_reads, object_writes, object_bytes, outbound_calls, outbound_bytes"#
    };
}
pub(crate) use invocation_columns;

/// A retried async invocation records each attempt under its id: the last one's outcome stays,
/// and the metering adds up. Ends an insert into `invocations`.
macro_rules! record_invocations_conflict {
    () => {
        " ON CONFLICT (id) DO UPDATE SET version = excluded.version, started_at_us = excluded.started_at_us, duration_us = excluded.duration_us, status = excluded.status, http_status = excluded.http_status, cold = excluded.cold, error = excluded.error, init_us = excluded.init_us, memory_mib = excluded.memory_mib, executions = invocations.executions + excluded.executions, billed_ms = invocations.billed_ms + excluded.billed_ms, mib_ms = invocations.mib_ms + excluded.mib_ms, request_bytes = invocations.request_bytes + excluded.request_bytes, response_bytes = invocations.response_bytes + excluded.response_bytes, cpu_us = invocations.cpu_us + excluded.cpu_us, kv_reads = invocations.kv_reads + excluded.kv_reads, kv_writes = invocations.kv_writes + excluded.kv_writes, kv_bytes = invocations.kv_bytes + excluded.kv_bytes, object_reads = invocations.object_reads + excluded.object_reads, object_writes = invocations.object_writes + excluded.object_writes, object_bytes = invocations.object_bytes + excluded.object_bytes, outbound_calls = invocations.outbound_calls + excluded.outbound_calls, outbound_bytes = invocations.outbound_bytes + excluded.outbound_bytes"
    };
}
pub(crate) use record_invocations_conflict;
const GET_INVOCATION: &str = concat!(
    "SELECT ",
    invocation_columns!(),
    " FROM invocations WHERE id = $1"
);
/// Followed by the namespace, the function and the optional filters.
const LIST_INVOCATIONS: &str = concat!(
    "SELECT ",
    invocation_columns!(),
    " FROM invocations WHERE namespace = "
);
const READ_LOGS: &str =
    "SELECT seq, invocation_id, namespace, function, version, at_us, stream, line FROM logs";
const DELETE_LOGS_BEFORE: &str = "DELETE FROM logs WHERE at_us < $1";
const DELETE_LOGS_UP_TO: &str = "DELETE FROM logs WHERE seq <= $1";
const DELETE_RECORDS_BEFORE: &str = "DELETE FROM invocations WHERE started_at_us < $1";
const DELETE_FINISHED_ASYNC_BEFORE: &str =
    "DELETE FROM async_invocations WHERE status IN ('succeeded', 'failed') AND updated_at_us < $1";

#[async_trait::async_trait]
impl<D: RecordsDialect> Records for SqlStore<D> {
    async fn record_invocations(
        &self,
        records: &[InvocationRecord],
        logs: &[LogLine],
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        D::record(&mut tx, records, logs).await?;
        commit::<D>(tx).await
    }

    async fn get_invocation(
        &self,
        id: &InvocationId,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        let row = query(GET_INVOCATION)
            .bind(id.as_str())
            .fetch_optional(&mut *self.reader().await?, "reading invocation")
            .await?;
        row.as_ref().map(rows::invocation_record).transpose()
    }

    async fn list_invocations(
        &self,
        query: &InvocationQuery,
    ) -> Result<Vec<InvocationRecord>, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut *tx, &query.namespace, &query.function).await?;
        // Filters are appended only when present so each shape gets a plan that uses the index.
        let mut sql = crate::sql::query(LIST_INVOCATIONS);
        sql.push_bind(query.namespace.as_str());
        sql.push(" AND function = ")
            .push_bind(query.function.as_str());
        if let Some(before) = &query.before {
            sql.push(" AND id < ").push_bind(before.as_str());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(query.limit.min(MAX_INVOCATIONS_PER_PAGE));
        let rows = sql.fetch_all(&mut *tx, "listing invocations").await?;
        rows.iter().map(rows::invocation_record).collect()
    }

    async fn read_logs(&self, query: &LogQuery) -> Result<Vec<LogLine>, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut *tx, &query.namespace, &query.function).await?;
        let mut sql = crate::sql::query(READ_LOGS);
        if let Some(InvocationMatch::Id(_)) = &query.invocation {
            sql.push(D::LOGS_OF_INVOCATION);
        }
        sql.push(" WHERE namespace = ")
            .push_bind(query.namespace.as_str());
        sql.push(" AND function = ")
            .push_bind(query.function.as_str());
        match &query.invocation {
            Some(InvocationMatch::Id(id)) => {
                sql.push(" AND invocation_id = ").push_bind(id.as_str());
            }
            // Hex digits and dashes only (checked by the parser), so nothing in it is a pattern.
            Some(InvocationMatch::EndsWith(end)) => {
                sql.push(" AND invocation_id LIKE ")
                    .push_bind(format!("%{end}"));
            }
            None => {}
        }
        if let Some(since_us) = query.since_us {
            sql.push(" AND at_us >= ").push_bind(since_us);
        }
        if let Some(after_seq) = query.after_seq {
            sql.push(" AND seq > ").push_bind(after_seq);
        }
        sql.push(if query.newest {
            " ORDER BY seq DESC LIMIT "
        } else {
            " ORDER BY seq LIMIT "
        })
        .push_bind(query.limit.min(MAX_LOG_LINES_PER_READ));
        let rows = sql.fetch_all(&mut *tx, "reading logs").await?;
        let mut lines = rows
            .iter()
            .map(rows::log_line)
            .collect::<Result<Vec<_>, _>>()?;
        if query.newest {
            lines.reverse();
        }
        Ok(lines)
    }

    /// Summed per function, UTC day or UTC hour.
    async fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
        let mut sql = crate::sql::query("SELECT ");
        sql.push(D::usage_key(query.group_by)).push(D::USAGE_SUMS);
        sql.push_bind(query.namespace.as_str())
            .push(" AND started_at_us >= ")
            .push_bind(query.from_us)
            .push(" AND started_at_us < ")
            .push_bind(query.to_us);
        if let Some(function) = &query.function {
            sql.push(" AND function = ").push_bind(function.as_str());
        }
        sql.push(" GROUP BY key ORDER BY key");
        let rows = sql
            .fetch_all(&mut *self.reader().await?, "summing usage")
            .await?;
        rows.iter()
            .map(|row| {
                let sum = |at: usize| rows::column::<i64>(row, at).map(unsigned);
                Ok(UsageRow {
                    key: rows::column(row, 0)?,
                    requests: sum(1)?,
                    billed_ms: sum(2)?,
                    mib_ms: sum(3)?,
                    cold_starts: sum(4)?,
                    request_bytes: sum(5)?,
                    response_bytes: sum(6)?,
                    kv_reads: sum(7)?,
                    kv_writes: sum(8)?,
                    kv_bytes: sum(9)?,
                    object_reads: sum(10)?,
                    object_writes: sum(11)?,
                    object_bytes: sum(12)?,
                })
            })
            .collect()
    }

    /// Each delete takes the writer on its own, and the logs are measured on a reader: on
    /// SQLite the writer is one connection, and the queue's commits wait while another holds
    /// it (measuring sums every stored line).
    async fn apply_retention(&self, rules: &Retention) -> Result<Retained, StoreError> {
        let mut log_lines_deleted = self
            .retention_delete(DELETE_LOGS_BEFORE, rules.logs_before_us)
            .await?;
        let cut: Option<i64> = query(D::LOG_SIZE_CUT)
            .bind(saturating_i64(rules.max_log_bytes))
            .optional_scalar(&mut *self.reader().await?, "measuring logs")
            .await?;
        if let Some(seq) = cut {
            log_lines_deleted += self.retention_delete(DELETE_LOGS_UP_TO, seq).await?;
        }
        let records_deleted = self
            .retention_delete(DELETE_RECORDS_BEFORE, rules.records_before_us)
            .await?;
        let async_deleted = self
            .retention_delete(DELETE_FINISHED_ASYNC_BEFORE, rules.records_before_us)
            .await?;
        Ok(Retained {
            log_lines_deleted,
            records_deleted,
            async_deleted,
        })
    }
}

impl<D: RecordsDialect> SqlStore<D> {
    /// Runs one of retention's deletes on the writer, held for that statement only; how many
    /// rows went.
    async fn retention_delete(&self, sql: &'static str, bound: i64) -> Result<u64, StoreError> {
        query(sql)
            .bind(bound)
            .execute(&mut *self.writer().await?, "applying retention")
            .await
    }
}
