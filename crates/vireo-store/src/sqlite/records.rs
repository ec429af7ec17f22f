//! How SQLite writes the record writer's batches and reads usage. Records and log lines go
//! in multi-row statements, as the batches are the invocation path's largest cost in the
//! store.

use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use vireo_core::{InvocationRecord, LogLine, StoreError, UsageGrouping};

use super::rows::{ROWS_PER_STATEMENT, push_padded_values};
use super::{SqliteStore, backend};
use crate::codec::{self, saturating_i64};
use crate::roles::records::{RecordsDialect, invocation_columns, record_invocations_conflict};

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
const RECORD_INVOCATIONS_END: &str = concat!(
    ") AS v ",
    of_existing_functions!(),
    record_invocations_conflict!()
);
/// Followed by padded VALUES and [`RECORD_LOGS_END`]; `seq` is left to SQLite: it orders lines
/// across all writers.
const RECORD_LOGS: &str = "INSERT INTO logs (invocation_id, namespace, function, version, at_us, stream, line) SELECT * FROM (";
const RECORD_LOGS_END: &str = concat!(") AS v ", of_existing_functions!());

#[async_trait::async_trait]
impl RecordsDialect for SqliteStore {
    /// Without statistics SQLite prefers the (namespace, function) index and would walk every
    /// line of the function.
    const LOGS_OF_INVOCATION: &'static str = " INDEXED BY logs_by_invocation";
    const USAGE_SUMS: &'static str =
        " AS key, SUM(executions), SUM(billed_ms), SUM(mib_ms), SUM(cold),
        SUM(request_bytes), SUM(response_bytes), SUM(kv_reads), SUM(kv_writes), SUM(kv_bytes),
        SUM(object_reads), SUM(object_writes), SUM(object_bytes)
    FROM invocations INDEXED BY invocations_by_start WHERE namespace = ";
    const LOG_SIZE_CUT: &'static str = "SELECT seq FROM (SELECT seq, SUM(length(CAST(line AS BLOB))) OVER (ORDER BY seq DESC) AS total FROM logs)
    WHERE total > $1 ORDER BY seq DESC LIMIT 1";

    fn usage_key(grouping: UsageGrouping) -> &'static str {
        match grouping {
            UsageGrouping::Function => "function",
            UsageGrouping::Version => "function || '@' || version",
            UsageGrouping::Day => "strftime('%Y-%m-%d', started_at_us / 1000000, 'unixepoch')",
            UsageGrouping::Hour => "strftime('%Y-%m-%dT%H', started_at_us / 1000000, 'unixepoch')",
        }
    }

    /// One multi-row statement per chunk: each statement is a round trip to the SQLite worker
    /// thread, and per-row statements made those hand-offs the invocation path's largest cost
    /// under load.
    async fn record(
        tx: &mut SqliteConnection,
        records: &[InvocationRecord],
        logs: &[LogLine],
    ) -> Result<(), StoreError> {
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(RECORD_INVOCATIONS);
            push_padded_values(&mut insert, chunk, 27, |mut row, record| {
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
                    .push_bind(saturating_i64(record.cpu_us))
                    .push_bind(saturating_i64(record.kv_reads))
                    .push_bind(saturating_i64(record.kv_writes))
                    .push_bind(saturating_i64(record.kv_bytes))
                    .push_bind(saturating_i64(record.object_reads))
                    .push_bind(saturating_i64(record.object_writes))
                    .push_bind(saturating_i64(record.object_bytes))
                    .push_bind(saturating_i64(record.outbound_calls))
                    .push_bind(saturating_i64(record.outbound_bytes));
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
        Ok(())
    }
}
