//! The SQLite [`Records`]: invocation records and log lines (written in multi-row statements,
//! as the record writer's batches are the invocation path's largest cost in the store), usage
//! summed from them, and retention.

use sqlx::sqlite::SqlitePool;
use sqlx::{QueryBuilder, Sqlite};
use vireo_core::{
    InvocationId, InvocationQuery, InvocationRecord, LogLine, LogQuery, Records, Retained,
    Retention, StoreError, UsageGrouping, UsageQuery, UsageRow,
};

use super::rows::{ROWS_PER_STATEMENT, push_padded_values};
use super::{SqliteStore, backend};
use crate::codec::{self, saturating_i64, unsigned};
use crate::roles::{Dialect as _, SqlStore, check_function};
use crate::rows;
use crate::sql::commit;

const MAX_INVOCATIONS_PER_PAGE: u32 = 1000;
const MAX_LOG_LINES_PER_READ: u32 = 10_000;

/// The columns [`rows::invocation_record`] reads, and the record writer writes.
macro_rules! invocation_columns {
    () => {
        r#"id, namespace, function, version, "trigger", started_at_us, duration_us, status, http_status, cold, error, init_us, executions, memory_mib, billed_ms, mib_ms, request_bytes, response_bytes, cpu_us"#
    };
}
/// Keeps only rows (namespace in `column2`, function in `column3` of a VALUES list) whose
/// function still exists.
macro_rules! of_existing_functions {
    () => {
        "WHERE EXISTS (SELECT 1 FROM functions f WHERE f.namespace = v.column2 AND f.name = v.column3)"
    };
}

/// Followed by padded VALUES and [`RECORD_INVOCATIONS_END`].
const RECORD_INVOCATIONS: &str = concat!(
    "INSERT INTO invocations (",
    invocation_columns!(),
    ") SELECT * FROM ("
);
/// A retried async invocation records each attempt under its id: the last one's outcome stays,
/// and the metering adds up.
const RECORD_INVOCATIONS_END: &str = concat!(
    ") AS v ",
    of_existing_functions!(),
    " ON CONFLICT (id) DO UPDATE SET version = excluded.version, started_at_us = excluded.started_at_us, duration_us = excluded.duration_us, status = excluded.status, http_status = excluded.http_status, cold = excluded.cold, error = excluded.error, init_us = excluded.init_us, memory_mib = excluded.memory_mib, executions = invocations.executions + excluded.executions, billed_ms = invocations.billed_ms + excluded.billed_ms, mib_ms = invocations.mib_ms + excluded.mib_ms, request_bytes = invocations.request_bytes + excluded.request_bytes, response_bytes = invocations.response_bytes + excluded.response_bytes, cpu_us = invocations.cpu_us + excluded.cpu_us"
);
/// Followed by padded VALUES and [`RECORD_LOGS_END`]; `seq` is left to SQLite: it orders lines
/// across all writers.
const RECORD_LOGS: &str = "INSERT INTO logs (invocation_id, namespace, function, version, at_us, stream, line) SELECT * FROM (";
const RECORD_LOGS_END: &str = concat!(") AS v ", of_existing_functions!());
const GET_INVOCATION: &str = concat!(
    "SELECT ",
    invocation_columns!(),
    " FROM invocations WHERE id = ?1"
);
/// Followed by the namespace, the function and the optional filters.
const LIST_INVOCATIONS: &str = concat!(
    "SELECT ",
    invocation_columns!(),
    " FROM invocations WHERE namespace = "
);
const READ_LOGS: &str =
    "SELECT seq, invocation_id, namespace, function, version, at_us, stream, line FROM logs";
/// Follows [`READ_LOGS`] when one invocation's lines are read: without statistics SQLite
/// prefers the (namespace, function) index and would walk every line of the function.
const READ_LOGS_OF_INVOCATION: &str = " INDEXED BY logs_by_invocation";
/// The group keys of [`USAGE_SUMS`]: the function, the UTC day, the UTC hour.
const USAGE_BY_FUNCTION: &str = "SELECT function";
const USAGE_BY_DAY: &str = "SELECT strftime('%Y-%m-%d', started_at_us / 1000000, 'unixepoch')";
const USAGE_BY_HOUR: &str = "SELECT strftime('%Y-%m-%dT%H', started_at_us / 1000000, 'unixepoch')";
/// Follows a group key; the namespace and the filters follow it.
const USAGE_SUMS: &str = " AS key, SUM(executions), SUM(billed_ms), SUM(mib_ms), SUM(cold),
        SUM(request_bytes), SUM(response_bytes)
    FROM invocations INDEXED BY invocations_by_start WHERE namespace = ";
const DELETE_LOGS_BEFORE: &str = "DELETE FROM logs WHERE at_us < ?1";
/// The newest line whose running total, newest first, passes the limit: it and everything
/// older go.
const LOG_SIZE_CUT: &str = "SELECT seq FROM (SELECT seq, SUM(length(CAST(line AS BLOB))) OVER (ORDER BY seq DESC) AS total FROM logs)
    WHERE total > ?1 ORDER BY seq DESC LIMIT 1";
const DELETE_LOGS_UP_TO: &str = "DELETE FROM logs WHERE seq <= ?1";
const DELETE_RECORDS_BEFORE: &str = "DELETE FROM invocations WHERE started_at_us < ?1";
const DELETE_FINISHED_ASYNC_BEFORE: &str =
    "DELETE FROM async_invocations WHERE status IN ('succeeded', 'failed') AND updated_at_us < ?1";

#[async_trait::async_trait]
impl Records for SqlStore<SqliteStore> {
    /// Rows of functions deleted while their invocations were still queued are skipped, so a
    /// late batch cannot resurrect records of a deleted (or re-created) function. A repeated id
    /// replaces the earlier record's outcome and adds to its metering (a retried attempt).
    async fn record_invocations(
        &self,
        records: &[InvocationRecord],
        logs: &[LogLine],
    ) -> Result<(), StoreError> {
        // One multi-row statement per chunk: each statement is a round trip to the SQLite
        // worker thread, and per-row statements made those hand-offs the invocation path's
        // largest cost under load.
        let mut tx = self.write().await?;
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(RECORD_INVOCATIONS);
            push_padded_values(&mut insert, chunk, 19, |mut row, record| {
                row.push_bind(record.id.as_str())
                    .push_bind(record.namespace.as_str())
                    .push_bind(record.function.as_str())
                    .push_bind(record.version)
                    .push_bind(record.trigger.as_str())
                    .push_bind(record.started_at_us)
                    .push_bind(saturating_i64(record.duration_us))
                    .push_bind(record.status.as_str())
                    .push_bind(record.http_status)
                    .push_bind(record.cold)
                    .push_bind(record.error.as_deref())
                    .push_bind(saturating_i64(record.init_us))
                    .push_bind(record.executions)
                    .push_bind(record.memory_mib)
                    .push_bind(saturating_i64(record.billed_ms))
                    .push_bind(codec::mib_ms(record))
                    .push_bind(saturating_i64(record.request_bytes))
                    .push_bind(saturating_i64(record.response_bytes))
                    .push_bind(saturating_i64(record.cpu_us));
            });
            insert.push(RECORD_INVOCATIONS_END);
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(backend("recording invocations"))?;
        }
        for chunk in logs.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(RECORD_LOGS);
            push_padded_values(&mut insert, chunk, 7, |mut row, log| {
                row.push_bind(log.invocation_id.as_str())
                    .push_bind(log.namespace.as_str())
                    .push_bind(log.function.as_str())
                    .push_bind(log.version)
                    .push_bind(log.at_us)
                    .push_bind(log.stream.as_str())
                    .push_bind(&log.line);
            });
            insert.push(RECORD_LOGS_END);
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(backend("recording log lines"))?;
        }
        commit(tx).await
    }

    async fn get_invocation(
        &self,
        id: &InvocationId,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        let row = sqlx::query(GET_INVOCATION)
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(backend("reading invocation"))?;
        row.as_ref().map(rows::invocation_record).transpose()
    }

    async fn list_invocations(
        &self,
        query: &InvocationQuery,
    ) -> Result<Vec<InvocationRecord>, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut *tx, &query.namespace, &query.function).await?;
        // Filters are appended only when present so each shape gets a plan that uses the index.
        let mut sql = QueryBuilder::new(LIST_INVOCATIONS);
        sql.push_bind(query.namespace.as_str());
        sql.push(" AND function = ")
            .push_bind(query.function.as_str());
        if let Some(before) = &query.before {
            sql.push(" AND id < ").push_bind(before.as_str());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(query.limit.min(MAX_INVOCATIONS_PER_PAGE));
        let rows = sql
            .build()
            .fetch_all(&mut *tx)
            .await
            .map_err(backend("listing invocations"))?;
        rows.iter().map(rows::invocation_record).collect()
    }

    async fn read_logs(&self, query: &LogQuery) -> Result<Vec<LogLine>, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut *tx, &query.namespace, &query.function).await?;
        let mut sql = QueryBuilder::new(READ_LOGS);
        if query.invocation.is_some() {
            sql.push(READ_LOGS_OF_INVOCATION);
        }
        sql.push(" WHERE namespace = ")
            .push_bind(query.namespace.as_str());
        sql.push(" AND function = ")
            .push_bind(query.function.as_str());
        if let Some(invocation) = &query.invocation {
            sql.push(" AND invocation_id = ")
                .push_bind(invocation.as_str());
        }
        if let Some(since_us) = query.since_us {
            sql.push(" AND at_us >= ").push_bind(since_us);
        }
        if let Some(after_seq) = query.after_seq {
            sql.push(" AND seq > ").push_bind(after_seq);
        }
        sql.push(" ORDER BY seq LIMIT ")
            .push_bind(query.limit.min(MAX_LOG_LINES_PER_READ));
        let rows = sql
            .build()
            .fetch_all(&mut *tx)
            .await
            .map_err(backend("reading logs"))?;
        rows.iter().map(rows::log_line).collect()
    }

    /// Summed per function, UTC day or UTC hour.
    async fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
        let key = match query.group_by {
            UsageGrouping::Function => USAGE_BY_FUNCTION,
            UsageGrouping::Day => USAGE_BY_DAY,
            UsageGrouping::Hour => USAGE_BY_HOUR,
        };
        let mut sql = QueryBuilder::<Sqlite>::new(key);
        sql.push(USAGE_SUMS);
        sql.push_bind(query.namespace.as_str())
            .push(" AND started_at_us >= ")
            .push_bind(query.from_us)
            .push(" AND started_at_us < ")
            .push_bind(query.to_us);
        if let Some(function) = &query.function {
            sql.push(" AND function = ").push_bind(function.as_str());
        }
        sql.push(" GROUP BY key ORDER BY key");
        let rows: Vec<(String, i64, i64, i64, i64, i64, i64)> = sql
            .build_query_as()
            .fetch_all(&self.reader)
            .await
            .map_err(backend("summing usage"))?;
        Ok(rows
            .into_iter()
            .map(
                |(key, requests, billed, mib_ms, cold, request_bytes, response_bytes)| UsageRow {
                    key,
                    requests: unsigned(requests),
                    billed_ms: unsigned(billed),
                    mib_ms: unsigned(mib_ms),
                    cold_starts: unsigned(cold),
                    request_bytes: unsigned(request_bytes),
                    response_bytes: unsigned(response_bytes),
                },
            )
            .collect())
    }

    async fn apply_retention(&self, rules: &Retention) -> Result<Retained, StoreError> {
        let writer = &self.writer;
        let mut log_lines_deleted =
            delete(writer, DELETE_LOGS_BEFORE, rules.logs_before_us).await?;
        let cut: Option<i64> = sqlx::query_scalar(LOG_SIZE_CUT)
            .bind(saturating_i64(rules.max_log_bytes))
            .fetch_optional(writer)
            .await
            .map_err(backend("measuring logs"))?;
        if let Some(seq) = cut {
            log_lines_deleted += delete(writer, DELETE_LOGS_UP_TO, seq).await?;
        }
        let records_deleted =
            delete(writer, DELETE_RECORDS_BEFORE, rules.records_before_us).await?;
        let async_deleted = delete(
            writer,
            DELETE_FINISHED_ASYNC_BEFORE,
            rules.records_before_us,
        )
        .await?;
        Ok(Retained {
            log_lines_deleted,
            records_deleted,
            async_deleted,
        })
    }
}

/// Runs one of retention's deletes; how many rows went.
async fn delete(writer: &SqlitePool, sql: &'static str, bound: i64) -> Result<u64, StoreError> {
    sqlx::query(sql)
        .bind(bound)
        .execute(writer)
        .await
        .map(|done| done.rows_affected())
        .map_err(backend("applying retention"))
}
