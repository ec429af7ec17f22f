//! The PostgreSQL [`Records`]: invocation records and log lines (each batch one statement per
//! table, its columns bound as arrays), usage summed from them, and retention.

use sqlx::QueryBuilder;
use sqlx::postgres::PgPool;
use vireo_core::{
    InvocationId, InvocationQuery, InvocationRecord, LogLine, LogQuery, Records, Retained,
    Retention, StoreError, UsageGrouping, UsageQuery, UsageRow,
};

use super::rows::rounds;
use super::{PgStore, backend};
use crate::codec::{self, saturating_i64, unsigned};
use crate::roles::{Dialect as _, SqlStore, check_function};
use crate::rows;
use crate::sql::commit;

const MAX_INVOCATIONS_PER_PAGE: u32 = 1000;
const MAX_LOG_LINES_PER_READ: u32 = 10_000;
/// The advisory lock every writer of log lines holds from its insert to its commit, so
/// sequence numbers become visible in order and a follower reading after the last number it
/// saw skips none. Taken after the transaction's other writes, so it is never held while
/// waiting for another lock.
const LOG_WRITER_LOCK: i64 = 0x7669_7265_6f4c_6f67; // "vireoLog"

/// The columns [`rows::invocation_record`] reads, and the record writer writes.
macro_rules! invocation_columns {
    () => {
        r#"id, namespace, function, version, "trigger", started_at_us, duration_us, status, http_status, cold, error, init_us, executions, memory_mib, billed_ms, mib_ms, request_bytes, response_bytes, cpu_us"#
    };
}
/// Keeps only rows (of `v`) whose function still exists.
macro_rules! of_existing_functions {
    () => {
        " WHERE EXISTS (SELECT 1 FROM functions f WHERE f.namespace = v.namespace AND f.name = v.function)"
    };
}

/// A retried async invocation records each attempt under its id: the last one's outcome stays,
/// and the metering adds up.
const RECORD_INVOCATIONS: &str = concat!(
    "INSERT INTO invocations (",
    invocation_columns!(),
    ") SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::BIGINT[], $7::BIGINT[], $8::TEXT[], $9::BIGINT[], $10::BOOLEAN[], $11::TEXT[], $12::BIGINT[], $13::BIGINT[], $14::BIGINT[], $15::BIGINT[], $16::BIGINT[], $17::BIGINT[], $18::BIGINT[], $19::BIGINT[]) AS v (",
    invocation_columns!(),
    ")",
    of_existing_functions!(),
    " ON CONFLICT (id) DO UPDATE SET version = excluded.version, started_at_us = excluded.started_at_us, duration_us = excluded.duration_us, status = excluded.status, http_status = excluded.http_status, cold = excluded.cold, error = excluded.error, init_us = excluded.init_us, memory_mib = excluded.memory_mib, executions = invocations.executions + excluded.executions, billed_ms = invocations.billed_ms + excluded.billed_ms, mib_ms = invocations.mib_ms + excluded.mib_ms, request_bytes = invocations.request_bytes + excluded.request_bytes, response_bytes = invocations.response_bytes + excluded.response_bytes, cpu_us = invocations.cpu_us + excluded.cpu_us"
);
const LOCK_LOG_WRITERS: &str = "SELECT pg_advisory_xact_lock($1)";
/// `seq` is left to the identity: it orders lines across all writers, and within a batch
/// follows the batch's order.
const RECORD_LOGS: &str = concat!(
    "INSERT INTO logs (invocation_id, namespace, function, version, at_us, stream, line)
    SELECT v.invocation_id, v.namespace, v.function, v.version, v.at_us, v.stream, v.line
    FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BIGINT[], $6::TEXT[], $7::TEXT[])
        WITH ORDINALITY AS v (invocation_id, namespace, function, version, at_us, stream, line, n)",
    of_existing_functions!(),
    " ORDER BY v.n"
);
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
/// `SELECT` and the group key come first; the namespace and the filters follow. Sums of
/// BIGINT are NUMERIC in PostgreSQL, hence the casts back.
const USAGE_SUMS: &str = " AS key, SUM(executions)::BIGINT, SUM(billed_ms)::BIGINT,
        SUM(mib_ms)::BIGINT, COUNT(*) FILTER (WHERE cold),
        SUM(request_bytes)::BIGINT, SUM(response_bytes)::BIGINT
    FROM invocations WHERE namespace = ";
const DELETE_LOGS_BEFORE: &str = "DELETE FROM logs WHERE at_us < $1";
/// The newest line whose running total, newest first, passes the limit: it and everything
/// older go.
const LOG_SIZE_CUT: &str = "SELECT seq FROM (SELECT seq, SUM(octet_length(line)) OVER (ORDER BY seq DESC) AS total FROM logs) AS sized
    WHERE total > $1 ORDER BY seq DESC LIMIT 1";
const DELETE_LOGS_UP_TO: &str = "DELETE FROM logs WHERE seq <= $1";
const DELETE_RECORDS_BEFORE: &str = "DELETE FROM invocations WHERE started_at_us < $1";
const DELETE_FINISHED_ASYNC_BEFORE: &str =
    "DELETE FROM async_invocations WHERE status IN ('succeeded', 'failed') AND updated_at_us < $1";

#[async_trait::async_trait]
impl Records for SqlStore<PgStore> {
    /// Rows of functions deleted while their invocations were still queued are skipped, so a
    /// late batch cannot resurrect records of a deleted (or re-created) function. A repeated id
    /// replaces the earlier record's outcome and adds to its metering (a retried attempt).
    async fn record_invocations(
        &self,
        records: &[InvocationRecord],
        logs: &[LogLine],
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        // Usually one round: only a batch holding two attempts of one invocation needs more.
        for round in rounds(records, |record| record.id.as_str()) {
            let mut columns = InvocationColumns::default();
            for record in round {
                columns.push(record);
            }
            columns
                .bind(sqlx::query(RECORD_INVOCATIONS))
                .execute(&mut *tx)
                .await
                .map_err(backend("recording invocations"))?;
        }
        if !logs.is_empty() {
            sqlx::query(LOCK_LOG_WRITERS)
                .bind(LOG_WRITER_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(backend("waiting for other log writers"))?;
            sqlx::query(RECORD_LOGS)
                .bind(
                    logs.iter()
                        .map(|l| l.invocation_id.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    logs.iter()
                        .map(|l| l.namespace.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(logs.iter().map(|l| l.function.as_str()).collect::<Vec<_>>())
                .bind(
                    logs.iter()
                        .map(|l| i64::from(l.version))
                        .collect::<Vec<_>>(),
                )
                .bind(logs.iter().map(|l| l.at_us).collect::<Vec<_>>())
                .bind(logs.iter().map(|l| l.stream.as_str()).collect::<Vec<_>>())
                .bind(logs.iter().map(|l| l.line.as_str()).collect::<Vec<_>>())
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
            .fetch_optional(&self.pool)
            .await
            .map_err(backend("reading invocation"))?;
        row.as_ref().map(rows::invocation_record).transpose()
    }

    async fn list_invocations(
        &self,
        query: &InvocationQuery,
    ) -> Result<Vec<InvocationRecord>, StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut *tx, &query.namespace, &query.function).await?;
        let mut sql = QueryBuilder::new(LIST_INVOCATIONS);
        sql.push_bind(query.namespace.as_str());
        sql.push(" AND function = ")
            .push_bind(query.function.as_str());
        if let Some(before) = &query.before {
            sql.push(" AND id < ").push_bind(before.as_str());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::from(query.limit.min(MAX_INVOCATIONS_PER_PAGE)));
        let rows = sql
            .build()
            .fetch_all(&mut *tx)
            .await
            .map_err(backend("listing invocations"))?;
        rows.iter().map(rows::invocation_record).collect()
    }

    async fn read_logs(&self, query: &LogQuery) -> Result<Vec<LogLine>, StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut *tx, &query.namespace, &query.function).await?;
        let mut sql = QueryBuilder::new(READ_LOGS);
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
            .push_bind(i64::from(query.limit.min(MAX_LOG_LINES_PER_READ)));
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
            UsageGrouping::Function => "function",
            UsageGrouping::Day => {
                "to_char(to_timestamp(started_at_us / 1000000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
            }
            UsageGrouping::Hour => {
                r#"to_char(to_timestamp(started_at_us / 1000000) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24')"#
            }
        };
        let mut sql = QueryBuilder::new("SELECT ");
        sql.push(key).push(USAGE_SUMS);
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
            .fetch_all(&self.pool)
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
        let pool = &self.pool;
        let mut log_lines_deleted = delete(pool, DELETE_LOGS_BEFORE, rules.logs_before_us).await?;
        let cut: Option<i64> = sqlx::query_scalar(LOG_SIZE_CUT)
            .bind(saturating_i64(rules.max_log_bytes))
            .fetch_optional(pool)
            .await
            .map_err(backend("measuring logs"))?;
        if let Some(seq) = cut {
            log_lines_deleted += delete(pool, DELETE_LOGS_UP_TO, seq).await?;
        }
        let records_deleted = delete(pool, DELETE_RECORDS_BEFORE, rules.records_before_us).await?;
        let async_deleted =
            delete(pool, DELETE_FINISHED_ASYNC_BEFORE, rules.records_before_us).await?;
        Ok(Retained {
            log_lines_deleted,
            records_deleted,
            async_deleted,
        })
    }
}

/// Runs one of retention's deletes; how many rows went.
async fn delete(pool: &PgPool, sql: &'static str, bound: i64) -> Result<u64, StoreError> {
    sqlx::query(sql)
        .bind(bound)
        .execute(pool)
        .await
        .map(|done| done.rows_affected())
        .map_err(backend("applying retention"))
}

/// A batch of invocation records as one array per column of [`RECORD_INVOCATIONS`].
#[derive(Default)]
struct InvocationColumns<'a> {
    ids: Vec<&'a str>,
    namespaces: Vec<&'a str>,
    functions: Vec<&'a str>,
    versions: Vec<i64>,
    triggers: Vec<&'a str>,
    started_at_us: Vec<i64>,
    duration_us: Vec<i64>,
    statuses: Vec<&'a str>,
    http_statuses: Vec<Option<i64>>,
    cold: Vec<bool>,
    errors: Vec<Option<&'a str>>,
    init_us: Vec<i64>,
    executions: Vec<i64>,
    memory_mib: Vec<i64>,
    billed_ms: Vec<i64>,
    mib_ms: Vec<i64>,
    request_bytes: Vec<i64>,
    response_bytes: Vec<i64>,
    cpu_us: Vec<i64>,
}

impl<'a> InvocationColumns<'a> {
    fn push(&mut self, record: &'a InvocationRecord) {
        self.ids.push(record.id.as_str());
        self.namespaces.push(record.namespace.as_str());
        self.functions.push(record.function.as_str());
        self.versions.push(i64::from(record.version));
        self.triggers.push(record.trigger.as_str());
        self.started_at_us.push(record.started_at_us);
        self.duration_us.push(saturating_i64(record.duration_us));
        self.statuses.push(record.status.as_str());
        self.http_statuses.push(record.http_status.map(i64::from));
        self.cold.push(record.cold);
        self.errors.push(record.error.as_deref());
        self.init_us.push(saturating_i64(record.init_us));
        self.executions.push(i64::from(record.executions));
        self.memory_mib.push(i64::from(record.memory_mib));
        self.billed_ms.push(saturating_i64(record.billed_ms));
        self.mib_ms.push(codec::mib_ms(record));
        self.request_bytes
            .push(saturating_i64(record.request_bytes));
        self.response_bytes
            .push(saturating_i64(record.response_bytes));
        self.cpu_us.push(saturating_i64(record.cpu_us));
    }

    fn bind(
        self,
        query: sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'a, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(self.ids)
            .bind(self.namespaces)
            .bind(self.functions)
            .bind(self.versions)
            .bind(self.triggers)
            .bind(self.started_at_us)
            .bind(self.duration_us)
            .bind(self.statuses)
            .bind(self.http_statuses)
            .bind(self.cold)
            .bind(self.errors)
            .bind(self.init_us)
            .bind(self.executions)
            .bind(self.memory_mib)
            .bind(self.billed_ms)
            .bind(self.mib_ms)
            .bind(self.request_bytes)
            .bind(self.response_bytes)
            .bind(self.cpu_us)
    }
}
