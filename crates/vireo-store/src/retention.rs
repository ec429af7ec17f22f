//! Retention: deleting log lines, invocation records and finished async invocations that are
//! older than their cut-off, and the oldest log lines beyond the size limit.

use sqlx::SqlitePool;
use vireo_core::{Retained, Retention, StoreError};

use crate::sqlite::{backend, saturating_i64};

pub(crate) async fn apply(writer: &SqlitePool, rules: &Retention) -> Result<Retained, StoreError> {
    let delete = |sql: &'static str, bound: i64| async move {
        sqlx::query(sql)
            .bind(bound)
            .execute(writer)
            .await
            .map(|done| done.rows_affected())
            .map_err(backend("applying retention"))
    };
    let mut log_lines_deleted =
        delete("DELETE FROM logs WHERE at_us < ?1", rules.logs_before_us).await?;
    // The newest line whose running total, newest first, passes the limit: it and everything
    // older go.
    let cut: Option<i64> = sqlx::query_scalar(
        "SELECT seq FROM (SELECT seq, SUM(length(CAST(line AS BLOB))) OVER (ORDER BY seq DESC) AS total FROM logs)
         WHERE total > ?1 ORDER BY seq DESC LIMIT 1",
    )
    .bind(saturating_i64(rules.max_log_bytes))
    .fetch_optional(writer)
    .await
    .map_err(backend("measuring logs"))?;
    if let Some(seq) = cut {
        log_lines_deleted += delete("DELETE FROM logs WHERE seq <= ?1", seq).await?;
    }
    let records_deleted = delete(
        "DELETE FROM invocations WHERE started_at_us < ?1",
        rules.records_before_us,
    )
    .await?;
    let async_deleted = delete(
        "DELETE FROM async_invocations WHERE status IN ('succeeded', 'failed') AND updated_at_us < ?1",
        rules.records_before_us,
    )
    .await?;
    Ok(Retained {
        log_lines_deleted,
        records_deleted,
        async_deleted,
    })
}
