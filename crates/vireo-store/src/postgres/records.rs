//! How PostgreSQL writes the record writer's batches (each one statement per table, its
//! columns bound as arrays) and reads usage.

use sqlx::PgConnection;
use vireo_core::{InvocationRecord, LogLine, StoreError, UsageGrouping};

use super::rows::{array, rounds};
use super::{PgStore, backend};
use crate::codec::{self, saturating_i64};
use crate::roles::records::{RecordsDialect, invocation_columns, record_invocations_conflict};

/// The advisory lock every writer of log lines holds from its insert to its commit, so
/// sequence numbers become visible in order and a follower reading after the last number it
/// saw skips none. Taken after the transaction's other writes, so it is never held while
/// waiting for another lock.
const LOG_WRITER_LOCK: i64 = 0x7669_7265_6f4c_6f67; // "vireoLog"

/// Keeps only rows (of `v`) whose function still exists.
macro_rules! of_existing_functions {
    () => {
        " WHERE EXISTS (SELECT 1 FROM functions f WHERE f.namespace = v.namespace AND f.name = v.function)"
    };
}

const RECORD_INVOCATIONS: &str = concat!(
    "INSERT INTO invocations (",
    invocation_columns!(),
    ") SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::BIGINT[], $7::BIGINT[], $8::TEXT[], $9::BIGINT[], $10::BOOLEAN[], $11::TEXT[], $12::BIGINT[], $13::BIGINT[], $14::BIGINT[], $15::BIGINT[], $16::BIGINT[], $17::BIGINT[], $18::BIGINT[], $19::BIGINT[], $20::BIGINT[], $21::BIGINT[], $22::BIGINT[], $23::BIGINT[], $24::BIGINT[], $25::BIGINT[], $26::BIGINT[], $27::BIGINT[]) AS v (",
    invocation_columns!(),
    ")",
    of_existing_functions!(),
    record_invocations_conflict!()
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
#[async_trait::async_trait]
impl RecordsDialect for PgStore {
    const LOGS_OF_INVOCATION: &'static str = "";
    /// Sums of BIGINT are NUMERIC in PostgreSQL, hence the casts back.
    const USAGE_SUMS: &'static str = " AS key, SUM(executions)::BIGINT, SUM(billed_ms)::BIGINT,
        SUM(mib_ms)::BIGINT, COUNT(*) FILTER (WHERE cold),
        SUM(request_bytes)::BIGINT, SUM(response_bytes)::BIGINT,
        SUM(kv_reads)::BIGINT, SUM(kv_writes)::BIGINT, SUM(kv_bytes)::BIGINT,
        SUM(object_reads)::BIGINT, SUM(object_writes)::BIGINT, SUM(object_bytes)::BIGINT
    FROM invocations WHERE namespace = ";
    const LOG_SIZE_CUT: &'static str = "SELECT seq FROM (SELECT seq, SUM(octet_length(line)) OVER (ORDER BY seq DESC) AS total FROM logs) AS sized
    WHERE total > $1 ORDER BY seq DESC LIMIT 1";

    fn usage_key(grouping: UsageGrouping) -> &'static str {
        match grouping {
            UsageGrouping::Function => "function",
            UsageGrouping::Version => "function || '@' || version::TEXT",
            UsageGrouping::Day => {
                "to_char(to_timestamp(started_at_us / 1000000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
            }
            UsageGrouping::Hour => {
                r#"to_char(to_timestamp(started_at_us / 1000000) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24')"#
            }
        }
    }

    async fn record(
        tx: &mut PgConnection,
        records: &[InvocationRecord],
        logs: &[LogLine],
    ) -> Result<(), StoreError> {
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
                .bind(array(logs, |l| l.invocation_id.as_str()))
                .bind(array(logs, |l| l.namespace.as_str()))
                .bind(array(logs, |l| l.function.as_str()))
                .bind(array(logs, |l| i64::from(l.version)))
                .bind(array(logs, |l| l.at_us))
                .bind(array(logs, |l| l.stream.as_str()))
                .bind(array(logs, |l| l.line.as_str()))
                .execute(&mut *tx)
                .await
                .map_err(backend("recording log lines"))?;
        }
        Ok(())
    }
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
    kv_reads: Vec<i64>,
    kv_writes: Vec<i64>,
    kv_bytes: Vec<i64>,
    object_reads: Vec<i64>,
    object_writes: Vec<i64>,
    object_bytes: Vec<i64>,
    outbound_calls: Vec<i64>,
    outbound_bytes: Vec<i64>,
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
        self.kv_reads.push(saturating_i64(record.kv_reads));
        self.kv_writes.push(saturating_i64(record.kv_writes));
        self.kv_bytes.push(saturating_i64(record.kv_bytes));
        self.object_reads.push(saturating_i64(record.object_reads));
        self.object_writes
            .push(saturating_i64(record.object_writes));
        self.object_bytes.push(saturating_i64(record.object_bytes));
        self.outbound_calls
            .push(saturating_i64(record.outbound_calls));
        self.outbound_bytes
            .push(saturating_i64(record.outbound_bytes));
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
            .bind(self.kv_reads)
            .bind(self.kv_writes)
            .bind(self.kv_bytes)
            .bind(self.object_reads)
            .bind(self.object_writes)
            .bind(self.object_bytes)
            .bind(self.outbound_calls)
            .bind(self.outbound_bytes)
    }
}
