//! Usage: invocation records summed per function, UTC day or UTC hour.

use sqlx::{QueryBuilder, Sqlite, SqlitePool};
use vireo_core::{StoreError, UsageGrouping, UsageQuery, UsageRow};

use crate::sqlite::backend;

pub(crate) async fn sum(
    pool: &SqlitePool,
    query: &UsageQuery,
) -> Result<Vec<UsageRow>, StoreError> {
    let key = match query.group_by {
        UsageGrouping::Function => "function",
        UsageGrouping::Day => "strftime('%Y-%m-%d', started_at_us / 1000000, 'unixepoch')",
        UsageGrouping::Hour => "strftime('%Y-%m-%dT%H', started_at_us / 1000000, 'unixepoch')",
    };
    let mut sql = QueryBuilder::<Sqlite>::new(format!(
        "SELECT {key} AS key, SUM(executions), SUM(billed_ms), SUM(mib_ms), SUM(cold),
                SUM(request_bytes), SUM(response_bytes)
         FROM invocations INDEXED BY invocations_by_start WHERE namespace = "
    ));
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
        .fetch_all(pool)
        .await
        .map_err(backend("summing usage"))?;
    let unsigned = |value: i64| u64::try_from(value).unwrap_or(0);
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
