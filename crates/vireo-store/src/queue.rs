//! The SQLite implementation of the durable async [`Queue`]. Every cycle (started, settle,
//! accept, claim) is one transaction on the single writer connection, synced when it accepts.

use std::collections::{BTreeMap, HashMap};

use sqlx::query_builder::Separated;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::{Connection as _, QueryBuilder, Sqlite};
use vireo_core::queue::{IDEMPOTENCY_WINDOW, decode_headers, encode_headers};
use vireo_core::{
    AsyncInvocation, AsyncStatus, AttemptResult, ClaimRequest, ClaimedInvocation, CycleOutcome,
    Enqueued, InvocationId, Name, NewAsyncInvocation, Queue, QueueCounts, QueueCycle, RetryPolicy,
    Settlement, StartedAttempt, StoreError, StoredRequest, StoredResponse, Trigger,
};

use crate::rows::{ROWS_PER_STATEMENT, push_padded_values};
use crate::sqlite::{
    SqliteStore, backend, check_function, column, commit, name_column, parsed_column,
};

const MAX_DEAD_PER_PAGE: u32 = 1000;

macro_rules! async_columns {
    () => {
        r#"id, namespace, function, selector, "trigger", status, attempts, accepted_at_us, updated_at_us, next_attempt_at_us, idempotency_key, response_status, response_headers, response_body, response_truncated, error"#
    };
}

#[async_trait::async_trait]
impl Queue for SqliteStore {
    /// A cycle that accepts is the one transaction synced to disk at commit (`synchronous =
    /// FULL`): a 202 is only sent for an invocation that survives a power loss. Every other
    /// write runs at `NORMAL`, which in WAL mode survives a crash of the process; losing one of
    /// those to a power cut costs a redelivery, never an accepted invocation.
    async fn cycle(&self, cycle: &QueueCycle<'_>) -> Result<CycleOutcome, StoreError> {
        // Held throughout, so no other write can run between the pragmas and the transaction.
        let mut conn = self
            .writer
            .acquire()
            .await
            .map_err(backend("acquiring the writer"))?;
        let synced = !cycle.accept.is_empty();
        let outcome = run_cycle(&mut conn, cycle, synced).await;
        if synced {
            set_synchronous(&mut conn, "NORMAL").await?;
        }
        outcome
    }

    async fn extend_leases(&self, owner: &str, lease_until_us: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE async_invocations SET lease_until_us = ?2 WHERE status = 'running' AND lease_owner = ?1",
        )
        .bind(owner)
        .bind(lease_until_us)
        .execute(&self.writer)
        .await
        .map_err(backend("extending leases"))?;
        Ok(())
    }

    async fn reclaim_expired(
        &self,
        expired_before_us: i64,
        now_us: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE async_invocations
             SET status = 'queued', lease_owner = NULL, lease_until_us = NULL,
                 next_attempt_at_us = ?2, updated_at_us = ?2
             WHERE status = 'running' AND lease_until_us < ?1",
        )
        .bind(expired_before_us)
        .bind(now_us)
        .execute(&self.writer)
        .await
        .map_err(backend("reclaiming expired leases"))?;
        Ok(done.rows_affected())
    }

    async fn pending_by_namespace(&self) -> Result<Vec<(Name, u64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT namespace, pending FROM async_pending ORDER BY namespace")
                .fetch_all(&self.reader)
                .await
                .map_err(backend("reading queue depths"))?;
        rows.into_iter()
            .map(|(namespace, pending)| {
                let namespace = Name::parse("stored", &namespace).map_err(|e| {
                    StoreError::Backend(format!("stored namespace is invalid: {e}"))
                })?;
                Ok((namespace, u64::try_from(pending).unwrap_or(0)))
            })
            .collect()
    }

    async fn next_due_us(&self) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(
            "SELECT MIN(next_attempt_at_us) FROM async_invocations WHERE status = 'queued'",
        )
        .fetch_one(&self.reader)
        .await
        .map_err(backend("reading the next due invocation"))
    }

    async fn expire_idempotency_keys(&self, before_us: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at_us < ?1")
            .bind(before_us)
            .execute(&self.writer)
            .await
            .map_err(backend("expiring idempotency keys"))?;
        Ok(done.rows_affected())
    }

    async fn get_async(&self, id: &InvocationId) -> Result<Option<AsyncInvocation>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            async_columns!(),
            " FROM async_invocations WHERE id = ?1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend("reading async invocation"))?;
        row.as_ref().map(async_from_row).transpose()
    }

    async fn queue_counts(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<QueueCounts, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut tx, namespace, function).await?;
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM async_invocations
             WHERE namespace = ?1 AND function = ?2 GROUP BY status",
        )
        .bind(namespace.as_str())
        .bind(function.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(backend("counting async invocations"))?;
        let mut counts = QueueCounts::default();
        for (status, count) in rows {
            let count = u64::try_from(count).unwrap_or(0);
            match AsyncStatus::parse(&status) {
                Some(AsyncStatus::Queued) => counts.queued = count,
                Some(AsyncStatus::Running) => counts.running = count,
                Some(AsyncStatus::Succeeded) => counts.succeeded = count,
                Some(AsyncStatus::Failed) => counts.failed = count,
                Some(AsyncStatus::Dead) => counts.dead = count,
                None => {
                    return Err(StoreError::Backend(format!(
                        "async invocation status {status:?} is unknown"
                    )));
                }
            }
        }
        Ok(counts)
    }

    async fn list_dead(
        &self,
        namespace: &Name,
        function: &Name,
        limit: u32,
    ) -> Result<Vec<AsyncInvocation>, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut tx, namespace, function).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            async_columns!(),
            " FROM async_invocations WHERE namespace = ?1 AND function = ?2 AND status = 'dead' ORDER BY id LIMIT ?3"
        ))
        .bind(namespace.as_str())
        .bind(function.as_str())
        .bind(limit.min(MAX_DEAD_PER_PAGE))
        .fetch_all(&mut *tx)
        .await
        .map_err(backend("listing dead invocations"))?;
        rows.iter().map(async_from_row).collect()
    }

    async fn redrive(
        &self,
        namespace: &Name,
        function: &Name,
        ids: Option<&[InvocationId]>,
        now_us: i64,
    ) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut tx, namespace, function).await?;
        let mut update = QueryBuilder::<Sqlite>::new(
            "UPDATE async_invocations SET status = 'queued', attempts = 0, error = NULL, accepted_at_us = ",
        );
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
        check_function(&mut tx, namespace, function).await?;
        read_policy(&mut tx, namespace, function).await
    }

    async fn set_retry_policy(
        &self,
        namespace: &Name,
        function: &Name,
        policy: &RetryPolicy,
    ) -> Result<(), StoreError> {
        let encoded = serde_json::to_string(policy)
            .map_err(|e| StoreError::Backend(format!("encoding retry policy: {e}")))?;
        let mut tx = self.write().await?;
        check_function(&mut tx, namespace, function).await?;
        sqlx::query("UPDATE functions SET retry_policy = ?3 WHERE namespace = ?1 AND name = ?2")
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
    conn: &mut sqlx::SqliteConnection,
    namespace: &Name,
    function: &Name,
) -> Result<RetryPolicy, StoreError> {
    let stored: Option<Option<String>> =
        sqlx::query_scalar("SELECT retry_policy FROM functions WHERE namespace = ?1 AND name = ?2")
            .bind(namespace.as_str())
            .bind(function.as_str())
            .fetch_optional(conn)
            .await
            .map_err(backend("reading retry policy"))?;
    parse_policy(stored.flatten().as_deref())
}

/// A function's stored retry policy; none stored means the default.
fn parse_policy(stored: Option<&str>) -> Result<RetryPolicy, StoreError> {
    stored.map_or(Ok(RetryPolicy::default()), |json| {
        serde_json::from_str(json)
            .map_err(|e| StoreError::Backend(format!("stored retry policy is unreadable: {e}")))
    })
}

fn async_from_row(row: &SqliteRow) -> Result<AsyncInvocation, StoreError> {
    let status = parsed_column(row, "status", AsyncStatus::parse)?;
    let response_status: Option<u16> = column(row, "response_status")?;
    let response = match response_status {
        Some(status) => {
            let headers: Option<Vec<u8>> = column(row, "response_headers")?;
            let body: Option<Vec<u8>> = column(row, "response_body")?;
            let truncated: Option<bool> = column(row, "response_truncated")?;
            Some(StoredResponse {
                status,
                headers: decode_headers(&headers.unwrap_or_default()),
                body: body.unwrap_or_default().into(),
                body_truncated: truncated.unwrap_or(false),
            })
        }
        None => None,
    };
    Ok(AsyncInvocation {
        id: parsed_column(row, "id", InvocationId::parse)?,
        namespace: name_column(row, "namespace")?,
        function: name_column(row, "function")?,
        selector: column(row, "selector")?,
        trigger: parsed_column(row, "trigger", Trigger::parse)?,
        attempts: column(row, "attempts")?,
        accepted_at_us: column(row, "accepted_at_us")?,
        updated_at_us: column(row, "updated_at_us")?,
        next_attempt_at_us: (status == AsyncStatus::Queued)
            .then(|| column(row, "next_attempt_at_us"))
            .transpose()?,
        idempotency_key: column(row, "idempotency_key")?,
        error: column(row, "error")?,
        response,
        status,
    })
}

async fn set_synchronous(conn: &mut SqliteConnection, level: &str) -> Result<(), StoreError> {
    sqlx::query(&format!("PRAGMA synchronous = {level}"))
        .execute(conn)
        .await
        .map_err(backend("setting the sync level"))?;
    Ok(())
}

/// Runs a cycle in one transaction; `synced` raises the connection to `synchronous = FULL`
/// first (in the same round trip to SQLite), and the caller lowers it again.
async fn run_cycle(
    conn: &mut SqliteConnection,
    cycle: &QueueCycle<'_>,
    synced: bool,
) -> Result<CycleOutcome, StoreError> {
    let begin = if synced {
        "PRAGMA synchronous = FULL; BEGIN IMMEDIATE"
    } else {
        "BEGIN IMMEDIATE"
    };
    let mut tx = conn
        .begin_with(begin)
        .await
        .map_err(backend("starting a write"))?;
    if !cycle.started.is_empty() {
        count_started(&mut tx, cycle.owner, cycle.started).await?;
    }
    if !cycle.settle.is_empty() {
        settle(&mut tx, cycle.owner, cycle.settle).await?;
    }
    let accepted = if cycle.accept.is_empty() {
        Vec::new()
    } else {
        accept(&mut tx, cycle.accept, cycle.max_pending).await?
    };
    let claimed = match cycle.claim {
        Some(request) => claim(&mut tx, cycle.owner, request).await?,
        None => Vec::new(),
    };
    tx.commit().await.map_err(backend("committing"))?;
    Ok(CycleOutcome { accepted, claimed })
}

async fn count_started(
    tx: &mut SqliteConnection,
    owner: &str,
    started: &[StartedAttempt],
) -> Result<(), StoreError> {
    let set = "attempts = v.column2";
    update_leased(
        tx,
        owner,
        set,
        started,
        2,
        "counting started attempts",
        |mut row, attempt| {
            row.push_bind(attempt.id.as_str())
                .push_bind(attempt.attempt);
        },
    )
    .await
}

async fn settle(
    tx: &mut SqliteConnection,
    owner: &str,
    results: &[AttemptResult],
) -> Result<(), StoreError> {
    let set = "status = v.column2, next_attempt_at_us = COALESCE(v.column3, a.next_attempt_at_us), attempts = v.column4, response_status = COALESCE(v.column5, a.response_status), response_headers = COALESCE(v.column6, a.response_headers), response_body = COALESCE(v.column7, a.response_body), response_truncated = COALESCE(v.column8, a.response_truncated), error = v.column9, updated_at_us = v.column10, lease_owner = NULL, lease_until_us = NULL";
    update_leased(
        tx,
        owner,
        set,
        results,
        10,
        "settling invocations",
        |mut row, result| {
            let (status, next_at) = match result.settlement {
                Settlement::Succeeded => (AsyncStatus::Succeeded, None),
                Settlement::Failed => (AsyncStatus::Failed, None),
                Settlement::Dead => (AsyncStatus::Dead, None),
                Settlement::Retry { at_us } | Settlement::Postpone { at_us } => {
                    (AsyncStatus::Queued, Some(at_us))
                }
            };
            let response = result.response.as_ref();
            row.push_bind(result.id.as_str())
                .push_bind(status.as_str())
                .push_bind(next_at)
                .push_bind(result.attempts)
                .push_bind(response.map(|r| r.status))
                .push_bind(response.map(|r| encode_headers(&r.headers)))
                .push_bind(response.map(|r| r.body.to_vec()))
                .push_bind(response.map(|r| r.body_truncated))
                .push_bind(result.error.as_deref())
                .push_bind(result.at_us);
        },
    )
    .await
}

/// Applies `set` (assignments from the `VALUES` columns `v.column2`...) to the invocations named
/// in `v.column1` that `owner` still leases: one of another worker's, or one already settled,
/// is left alone.
async fn update_leased<'a, T>(
    tx: &mut SqliteConnection,
    owner: &'a str,
    set: &str,
    items: &'a [T],
    columns: usize,
    context: &'static str,
    mut push_row: impl FnMut(Separated<'_, 'a, Sqlite, &'static str>, &'a T),
) -> Result<(), StoreError> {
    for chunk in items.chunks(ROWS_PER_STATEMENT) {
        let mut update = QueryBuilder::<Sqlite>::new("UPDATE async_invocations AS a SET ");
        update.push(set).push(" FROM (");
        push_padded_values(&mut update, chunk, columns, &mut push_row);
        update.push(") AS v WHERE a.id = v.column1 AND a.status = 'running' AND a.lease_owner = ");
        update.push_bind(owner);
        update
            .build()
            .execute(&mut *tx)
            .await
            .map_err(backend(context))?;
    }
    Ok(())
}

async fn claim(
    tx: &mut SqliteConnection,
    owner: &str,
    request: ClaimRequest,
) -> Result<Vec<ClaimedInvocation>, StoreError> {
    let rows = sqlx::query(
        r#"UPDATE async_invocations
               SET status = 'running', lease_owner = ?1, lease_until_us = ?2, updated_at_us = ?3
               WHERE id IN (SELECT id FROM async_invocations
                            WHERE status = 'queued' AND next_attempt_at_us <= ?3
                            ORDER BY next_attempt_at_us LIMIT ?4)
               RETURNING id, namespace, function, selector, "trigger", source, method, uri,
                         headers, body, attempts + 1 AS attempt, accepted_at_us, event_time_us,
                         (SELECT retry_policy FROM functions AS f
                          WHERE f.namespace = async_invocations.namespace
                            AND f.name = async_invocations.function) AS retry_policy"#,
    )
    .bind(owner)
    .bind(request.lease_until_us)
    .bind(request.now_us)
    .bind(request.limit)
    .fetch_all(&mut *tx)
    .await
    .map_err(backend("claiming invocations"))?;
    // Parsed once per distinct stored policy, not per row.
    let mut policies: HashMap<Option<String>, RetryPolicy> = HashMap::new();
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        let stored: Option<String> = column(row, "retry_policy")?;
        let policy = match policies.get(&stored) {
            Some(policy) => policy.clone(),
            None => {
                let policy = parse_policy(stored.as_deref())?;
                policies.insert(stored, policy.clone());
                policy
            }
        };
        let headers: Vec<u8> = column(row, "headers")?;
        let body: Vec<u8> = column(row, "body")?;
        claimed.push(ClaimedInvocation {
            id: parsed_column(row, "id", InvocationId::parse)?,
            selector: parsed_column(row, "selector", |s| s.parse().ok())?,
            trigger: parsed_column(row, "trigger", Trigger::parse)?,
            source: column(row, "source")?,
            request: StoredRequest {
                method: column(row, "method")?,
                uri: column(row, "uri")?,
                headers: decode_headers(&headers),
                body: body.into(),
            },
            attempt: column(row, "attempt")?,
            accepted_at_us: column(row, "accepted_at_us")?,
            event_time_us: column(row, "event_time_us")?,
            policy,
            namespace: name_column(row, "namespace")?,
            function: name_column(row, "function")?,
        });
    }
    Ok(claimed)
}

async fn accept(
    tx: &mut SqliteConnection,
    batch: &[NewAsyncInvocation],
    max_pending: u64,
) -> Result<Vec<Enqueued>, StoreError> {
    let mut outcomes: Vec<Option<Enqueued>> = vec![None; batch.len()];
    let window = i64::try_from(IDEMPOTENCY_WINDOW.as_micros()).unwrap_or(i64::MAX);

    // One lookup per distinct function, in the transaction that inserts, so nothing changes in
    // between: whether it still exists (a function deleted since the caller checked gets
    // nothing stored), and its namespace's pending count (kept by triggers in `async_pending`)
    // and own `max_queued` quota, which wins over the server-wide default.
    let mut exists: HashMap<(&str, &str), bool> = HashMap::new();
    let mut pending: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (item, outcome) in batch.iter().zip(&mut outcomes) {
        let function = (item.namespace.as_str(), item.function.as_str());
        let found = match exists.get(&function) {
            Some(found) => *found,
            None => {
                let (found, stored, quota): (bool, Option<i64>, Option<i64>) = sqlx::query_as(
                    "SELECT EXISTS (SELECT 1 FROM functions WHERE namespace = ?1 AND name = ?2),
                            (SELECT pending FROM async_pending WHERE namespace = ?1),
                            (SELECT json_extract(quotas, '$.max_queued') FROM namespaces WHERE name = ?1)",
                )
                .bind(function.0)
                .bind(function.1)
                .fetch_one(&mut *tx)
                .await
                .map_err(backend("checking function and queue depth"))?;
                let count = stored.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
                let limit = quota
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(max_pending);
                pending.entry(function.0).or_insert((count, limit));
                exists.insert(function, found);
                found
            }
        };
        if !found {
            *outcome = Some(Enqueued::FunctionNotFound);
        }
    }

    // Keys seen earlier (within the window) or earlier in this batch name their invocation.
    let mut keys_in_batch: HashMap<(&str, &str, &str), &InvocationId> = HashMap::new();
    for (item, outcome) in batch.iter().zip(&mut outcomes) {
        let Some(key) = item.idempotency_key.as_deref() else {
            continue;
        };
        if outcome.is_some() {
            continue;
        }
        let batch_key = (item.namespace.as_str(), item.function.as_str(), key);
        if let Some(first) = keys_in_batch.get(&batch_key) {
            *outcome = Some(Enqueued::Duplicate((*first).clone()));
            continue;
        }
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT invocation_id FROM idempotency_keys
             WHERE namespace = ?1 AND function = ?2 AND key = ?3 AND created_at_us >= ?4",
        )
        .bind(item.namespace.as_str())
        .bind(item.function.as_str())
        .bind(key)
        .bind(item.accepted_at_us.saturating_sub(window))
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend("looking up idempotency key"))?;
        match existing.as_deref().and_then(InvocationId::parse) {
            Some(first) => *outcome = Some(Enqueued::Duplicate(first)),
            None => {
                keys_in_batch.insert(batch_key, &item.id);
            }
        }
    }

    // The namespace quota, counting what this batch adds.
    for (item, outcome) in batch.iter().zip(&mut outcomes) {
        if outcome.is_some() {
            continue;
        }
        let namespace = item.namespace.as_str();
        let (count, limit) = pending
            .get_mut(namespace)
            .expect("looked up with its function");
        if *count >= *limit {
            *outcome = Some(Enqueued::QueueFull { limit: *limit });
            // A key whose invocation was refused must not make a retry look like a duplicate.
            if let Some(key) = item.idempotency_key.as_deref() {
                keys_in_batch.remove(&(namespace, item.function.as_str(), key));
            }
        } else {
            *count += 1;
        }
    }

    let to_insert: Vec<&NewAsyncInvocation> = batch
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_none())
        .map(|(item, _)| item)
        .collect();
    for chunk in to_insert.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            r#"INSERT INTO async_invocations (id, namespace, function, selector, "trigger", source, method, uri, headers, body, idempotency_key, accepted_at_us, event_time_us, status, updated_at_us, next_attempt_at_us)
               SELECT *, 'queued', v.column12, v.column12 FROM ("#,
        );
        push_padded_values(&mut insert, chunk, 13, |mut row, item| {
            row.push_bind(item.id.as_str())
                .push_bind(item.namespace.as_str())
                .push_bind(item.function.as_str())
                .push_bind(item.selector.to_string())
                .push_bind(item.trigger.as_str())
                .push_bind(&item.source)
                .push_bind(&item.request.method)
                .push_bind(&item.request.uri)
                .push_bind(encode_headers(&item.request.headers))
                .push_bind(item.request.body.as_ref())
                .push_bind(item.idempotency_key.as_deref())
                .push_bind(item.accepted_at_us)
                .push_bind(item.event_time_us);
        });
        insert.push(") AS v WHERE v.column1 IS NOT NULL");
        insert
            .build()
            .execute(&mut *tx)
            .await
            .map_err(backend("queueing invocations"))?;
    }

    let keyed: Vec<&NewAsyncInvocation> = to_insert
        .iter()
        .copied()
        .filter(|item| item.idempotency_key.is_some())
        .collect();
    for chunk in keyed.chunks(ROWS_PER_STATEMENT) {
        let mut insert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO idempotency_keys (namespace, function, key, invocation_id, created_at_us) SELECT * FROM (",
        );
        push_padded_values(&mut insert, chunk, 5, |mut row, item| {
            row.push_bind(item.namespace.as_str())
                .push_bind(item.function.as_str())
                .push_bind(item.idempotency_key.as_deref())
                .push_bind(item.id.as_str())
                .push_bind(item.accepted_at_us);
        });
        // An expired key is taken over by the new invocation.
        insert.push(
            ") AS v WHERE v.column1 IS NOT NULL ON CONFLICT (namespace, function, key) DO UPDATE SET invocation_id = excluded.invocation_id, created_at_us = excluded.created_at_us",
        );
        insert
            .build()
            .execute(&mut *tx)
            .await
            .map_err(backend("storing idempotency keys"))?;
    }
    Ok(outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or(Enqueued::Accepted))
        .collect())
}
