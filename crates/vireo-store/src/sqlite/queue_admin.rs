//! The SQLite [`QueueAdmin`]: the async queue as the admin API reads and changes it.

use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite};
use vireo_core::{
    AsyncInvocation, InvocationId, Name, QueueAdmin, QueueCounts, RetryPolicy, StoreError,
};

use super::{SqliteStore, backend};
use crate::roles::{Dialect as _, SqlStore, check_function};
use crate::sql::commit;
use crate::{codec, rows};

const MAX_DEAD_PER_PAGE: u32 = 1000;

/// The columns [`rows::async_invocation`] reads.
macro_rules! async_columns {
    () => {
        r#"id, namespace, function, selector, "trigger", status, attempts, accepted_at_us, updated_at_us, next_attempt_at_us, idempotency_key, response_status, response_headers, response_body, response_truncated, error"#
    };
}

const GET_ASYNC: &str = concat!(
    "SELECT ",
    async_columns!(),
    " FROM async_invocations WHERE id = ?1"
);
const QUEUE_COUNTS: &str = "SELECT status, COUNT(*) FROM async_invocations
    WHERE namespace = ?1 AND function = ?2 GROUP BY status";
const LIST_DEAD: &str = concat!(
    "SELECT ",
    async_columns!(),
    " FROM async_invocations WHERE namespace = ?1 AND function = ?2 AND status = 'dead' ORDER BY id LIMIT ?3"
);
/// Followed by the time three times, the namespace, the function and optionally the ids.
const REDRIVE: &str =
    "UPDATE async_invocations SET status = 'queued', attempts = 0, error = NULL, accepted_at_us = ";
const RETRY_POLICY: &str = "SELECT retry_policy FROM functions WHERE namespace = ?1 AND name = ?2";
const SET_RETRY_POLICY: &str =
    "UPDATE functions SET retry_policy = ?3 WHERE namespace = ?1 AND name = ?2";

#[async_trait::async_trait]
impl QueueAdmin for SqlStore<SqliteStore> {
    async fn get_async(&self, id: &InvocationId) -> Result<Option<AsyncInvocation>, StoreError> {
        let row = sqlx::query(GET_ASYNC)
            .bind(id.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(backend("reading async invocation"))?;
        row.as_ref().map(rows::async_invocation).transpose()
    }

    async fn queue_counts(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<QueueCounts, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut *tx, namespace, function).await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(QUEUE_COUNTS)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(backend("counting async invocations"))?;
        codec::queue_counts(rows)
    }

    async fn list_dead(
        &self,
        namespace: &Name,
        function: &Name,
        limit: u32,
    ) -> Result<Vec<AsyncInvocation>, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut *tx, namespace, function).await?;
        let rows = sqlx::query(LIST_DEAD)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(limit.min(MAX_DEAD_PER_PAGE))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend("listing dead invocations"))?;
        rows.iter().map(rows::async_invocation).collect()
    }

    async fn redrive(
        &self,
        namespace: &Name,
        function: &Name,
        ids: Option<&[InvocationId]>,
        now_us: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut *tx, namespace, function).await?;
        let mut update = QueryBuilder::<Sqlite>::new(REDRIVE);
        update
            .push_bind(now_us)
            .push(", next_attempt_at_us = ")
            .push_bind(now_us)
            .push(", updated_at_us = ")
            .push_bind(now_us)
            .push(" WHERE status = 'dead' AND namespace = ")
            .push_bind(namespace.as_str())
            .push(" AND function = ")
            .push_bind(function.as_str());
        if let Some(ids) = ids {
            update.push(" AND id IN (");
            let mut list = update.separated(", ");
            for id in ids {
                list.push_bind(id.as_str());
            }
            update.push(")");
        }
        let done = update
            .build()
            .execute(&mut *tx)
            .await
            .map_err(backend("redriving invocations"))?;
        commit(tx).await?;
        Ok(done.rows_affected())
    }

    async fn retry_policy(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<RetryPolicy, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut *tx, namespace, function).await?;
        read_policy(&mut tx, namespace, function).await
    }

    async fn set_retry_policy(
        &self,
        namespace: &Name,
        function: &Name,
        policy: &RetryPolicy,
    ) -> Result<(), StoreError> {
        let encoded = codec::to_json("retry policy", policy)?;
        let mut tx = self.write().await?;
        check_function(&mut *tx, namespace, function).await?;
        sqlx::query(SET_RETRY_POLICY)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(encoded)
            .execute(&mut *tx)
            .await
            .map_err(backend("setting retry policy"))?;
        commit(tx).await
    }
}

async fn read_policy(
    conn: &mut SqliteConnection,
    namespace: &Name,
    function: &Name,
) -> Result<RetryPolicy, StoreError> {
    let stored: Option<Option<String>> = sqlx::query_scalar(RETRY_POLICY)
        .bind(namespace.as_str())
        .bind(function.as_str())
        .fetch_optional(conn)
        .await
        .map_err(backend("reading retry policy"))?;
    codec::retry_policy(stored.flatten().as_deref())
}
