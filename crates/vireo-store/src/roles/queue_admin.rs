//! The [`QueueAdmin`]: the async queue as the admin API reads and changes it.

use vireo_core::{
    AsyncInvocation, InvocationId, Name, QueueAdmin, QueueCounts, RetryPolicy, StoreError,
};

use super::{Dialect, SqlStore, check_function, commit};
use crate::sql::{Sql, query};
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
    " FROM async_invocations WHERE id = $1"
);
const QUEUE_COUNTS: &str = "SELECT status, COUNT(*) FROM async_invocations
    WHERE namespace = $1 AND function = $2 GROUP BY status";
const LIST_DEAD: &str = concat!(
    "SELECT ",
    async_columns!(),
    " FROM async_invocations WHERE namespace = $1 AND function = $2 AND status = 'dead' ORDER BY id LIMIT $3"
);
/// All of the function's dead invocations, or followed by ` AND id IN ` and the ids.
const REDRIVE: &str = "UPDATE async_invocations SET status = 'queued', attempts = 0, error = NULL,
        accepted_at_us = $3, next_attempt_at_us = $3, updated_at_us = $3
    WHERE status = 'dead' AND namespace = $1 AND function = $2";
const RETRY_POLICY: &str = "SELECT retry_policy FROM functions WHERE namespace = $1 AND name = $2";
const SET_RETRY_POLICY: &str =
    "UPDATE functions SET retry_policy = $3 WHERE namespace = $1 AND name = $2";

#[async_trait::async_trait]
impl<D: Dialect> QueueAdmin for SqlStore<D> {
    async fn get_async(&self, id: &InvocationId) -> Result<Option<AsyncInvocation>, StoreError> {
        let row = query(GET_ASYNC)
            .bind(id.as_str())
            .fetch_optional(&mut *self.reader().await?, "reading async invocation")
            .await?;
        row.as_ref().map(rows::async_invocation).transpose()
    }

    async fn queue_counts(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<QueueCounts, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut *tx, namespace, function).await?;
        let rows = query(QUEUE_COUNTS)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .fetch_all(&mut *tx, "counting async invocations")
            .await?;
        let counts = rows
            .iter()
            .map(|row| Ok((rows::column(row, 0)?, rows::column(row, 1)?)))
            .collect::<Result<Vec<(String, i64)>, StoreError>>()?;
        codec::queue_counts(counts)
    }

    async fn list_dead(
        &self,
        namespace: &Name,
        function: &Name,
        limit: u32,
    ) -> Result<Vec<AsyncInvocation>, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut *tx, namespace, function).await?;
        let rows = query(LIST_DEAD)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(limit.min(MAX_DEAD_PER_PAGE))
            .fetch_all(&mut *tx, "listing dead invocations")
            .await?;
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
        let mut update = query(REDRIVE)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(now_us);
        if let Some(ids) = ids {
            update
                .push(" AND id IN ")
                .push_list(ids.iter().map(InvocationId::as_str));
        }
        let redriven = update.execute(&mut *tx, "redriving invocations").await?;
        commit::<D>(tx).await?;
        Ok(redriven)
    }

    async fn retry_policy(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<RetryPolicy, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut *tx, namespace, function).await?;
        read_policy(&mut *tx, namespace, function).await
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
        query(SET_RETRY_POLICY)
            .bind(namespace.as_str())
            .bind(function.as_str())
            .bind(encoded)
            .execute(&mut *tx, "setting retry policy")
            .await?;
        commit::<D>(tx).await
    }
}

async fn read_policy(
    conn: &mut impl Sql,
    namespace: &Name,
    function: &Name,
) -> Result<RetryPolicy, StoreError> {
    let stored: Option<Option<String>> = query(RETRY_POLICY)
        .bind(namespace.as_str())
        .bind(function.as_str())
        .optional_scalar(conn, "reading retry policy")
        .await?;
    codec::retry_policy(stored.flatten().as_deref())
}
