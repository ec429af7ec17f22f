//! How SQLite runs the queue's cycle: one transaction on the single writer connection, synced
//! when it accepts, each step a padded multi-row statement per chunk of its batch.

use std::collections::HashMap;

use sqlx::query_builder::Separated;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection as _, QueryBuilder, Sqlite};
use vireo_core::{
    AttemptResult, CycleOutcome, InvocationId, QueueCycle, StartedAttempt, StoreError,
};

use super::rows::{ROWS_PER_STATEMENT, push_padded_values};
use super::{SqliteStore, backend};
use crate::codec::{self, encode_headers, unsigned};
use crate::plan::accept::{FunctionRef, FunctionState, KeyRef, Plan, StoredKey};
use crate::roles::queue::{QueueDialect, cycle_steps};
use crate::sql::query;

/// Raises the connection to `synchronous = FULL` in the same round trip as the `BEGIN`.
const BEGIN_SYNCED: &str = "PRAGMA synchronous = FULL; BEGIN IMMEDIATE";
const BEGIN: &str = "BEGIN IMMEDIATE";
const UNSYNCED: &str = "PRAGMA synchronous = NORMAL";
/// Assignments from a padded VALUES list: the invocation in `v.column1`, its attempt in
/// `v.column2`.
const COUNT_STARTED: &str = "attempts = v.column2";
/// Assignments from a padded VALUES list of [`settle`]'s columns.
const SETTLE: &str = "status = v.column2, next_attempt_at_us = COALESCE(v.column3, a.next_attempt_at_us), attempts = v.column4, response_status = COALESCE(v.column5, a.response_status), response_headers = COALESCE(v.column6, a.response_headers), response_body = COALESCE(v.column7, a.response_body), response_truncated = COALESCE(v.column8, a.response_truncated), error = v.column9, updated_at_us = v.column10, lease_owner = NULL, lease_until_us = NULL";
/// Followed by the assignments, [`UPDATE_LEASED_FROM`], padded VALUES, [`UPDATE_LEASED_WHERE`]
/// and the owner.
const UPDATE_LEASED: &str = "UPDATE async_invocations AS a SET ";
const UPDATE_LEASED_FROM: &str = " FROM (";
const UPDATE_LEASED_WHERE: &str =
    ") AS v WHERE a.id = v.column1 AND a.status = 'running' AND a.lease_owner = ";
/// Whether a function exists, its namespace's queued and running invocations (kept by triggers
/// in `async_pending`), and the namespace's own `max_queued` quota.
const ACCEPT_FUNCTION: &str =
    "SELECT EXISTS (SELECT 1 FROM functions WHERE namespace = $1 AND name = $2),
        (SELECT pending FROM async_pending WHERE namespace = $1),
        (SELECT json_extract(quotas, '$.max_queued') FROM namespaces WHERE name = $1)";
const ACCEPT_KEY: &str = "SELECT invocation_id, created_at_us FROM idempotency_keys
    WHERE namespace = $1 AND function = $2 AND key = $3";
/// Followed by padded VALUES and [`INSERT_INVOCATIONS_END`].
const INSERT_INVOCATIONS: &str = r#"INSERT INTO async_invocations (id, namespace, function, selector, "trigger", source, method, uri, headers, body, idempotency_key, accepted_at_us, event_time_us, status, updated_at_us, next_attempt_at_us)
    SELECT *, 'queued', v.column12, v.column12 FROM ("#;
const INSERT_INVOCATIONS_END: &str = ") AS v WHERE v.column1 IS NOT NULL";
/// Followed by padded VALUES and [`INSERT_KEYS_END`].
const INSERT_KEYS: &str = "INSERT INTO idempotency_keys (namespace, function, key, invocation_id, created_at_us) SELECT * FROM (";
/// An expired key is taken over by the new invocation.
const INSERT_KEYS_END: &str = ") AS v WHERE v.column1 IS NOT NULL ON CONFLICT (namespace, function, key) DO UPDATE SET invocation_id = excluded.invocation_id, created_at_us = excluded.created_at_us";

#[async_trait::async_trait]
impl QueueDialect for SqliteStore {
    const CLAIM: &'static str = r#"UPDATE async_invocations
    SET status = 'running', lease_owner = $1, lease_until_us = $2, updated_at_us = $3
    WHERE id IN (SELECT id FROM async_invocations
                 WHERE status = 'queued' AND next_attempt_at_us <= $3
                 ORDER BY next_attempt_at_us LIMIT $4)
    RETURNING id, namespace, function, selector, "trigger", source, method, uri,
              headers, body, attempts + 1 AS attempt, accepted_at_us, event_time_us,
              (SELECT retry_policy FROM functions AS f
               WHERE f.namespace = async_invocations.namespace
                 AND f.name = async_invocations.function) AS retry_policy"#;
    /// Kept by triggers in `async_pending`.
    const PENDING_BY_NAMESPACE: &'static str =
        "SELECT namespace, pending FROM async_pending ORDER BY namespace";

    /// A cycle that accepts is the one transaction synced to disk at commit (`synchronous =
    /// FULL`): a 202 is only sent for an invocation that survives a power loss. Every other
    /// write runs at `NORMAL`, which in WAL mode survives a crash of the process; losing one of
    /// those to a power cut costs a redelivery, never an accepted invocation.
    async fn run_cycle(&self, cycle: &QueueCycle<'_>) -> Result<CycleOutcome, StoreError> {
        // Held throughout, so no other write can run between the pragmas and the transaction.
        let mut conn = self
            .writer
            .acquire()
            .await
            .map_err(backend("acquiring the writer"))?;
        let synced = !cycle.accept.is_empty();
        let outcome = synced_cycle(&mut conn, cycle, synced).await;
        if synced {
            sqlx::query(UNSYNCED)
                .execute(&mut *conn)
                .await
                .map_err(backend("setting the sync level"))?;
        }
        outcome
    }

    async fn count_started(
        tx: &mut SqliteConnection,
        owner: &str,
        started: &[StartedAttempt],
    ) -> Result<(), StoreError> {
        update_leased(
            tx,
            owner,
            COUNT_STARTED,
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
        update_leased(
            tx,
            owner,
            SETTLE,
            results,
            10,
            "settling invocations",
            |mut row, result| {
                let (status, next_at) = codec::settled(&result.settlement);
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

    /// One lookup per function: the one writer runs them back to back.
    async fn function_states<'a>(
        tx: &mut SqliteConnection,
        functions: &[FunctionRef<'a>],
    ) -> Result<HashMap<FunctionRef<'a>, FunctionState>, StoreError> {
        let mut states = HashMap::new();
        for function in functions {
            let row = query(ACCEPT_FUNCTION)
                .bind(function.0)
                .bind(function.1)
                .fetch_one(&mut *tx, "checking function and queue depth")
                .await?;
            let pending: Option<i64> = crate::rows::column(&row, 1)?;
            let max_queued: Option<i64> = crate::rows::column(&row, 2)?;
            let state = FunctionState {
                exists: crate::rows::column(&row, 0)?,
                pending: pending.map_or(0, unsigned),
                max_queued: max_queued.and_then(|quota| u64::try_from(quota).ok()),
            };
            states.insert(*function, state);
        }
        Ok(states)
    }

    async fn stored_keys<'a>(
        tx: &mut SqliteConnection,
        keys: &[KeyRef<'a>],
    ) -> Result<HashMap<KeyRef<'a>, StoredKey>, StoreError> {
        let mut stored_keys = HashMap::new();
        for key in keys {
            let stored = query(ACCEPT_KEY)
                .bind(key.0)
                .bind(key.1)
                .bind(key.2)
                .fetch_optional(&mut *tx, "looking up idempotency key")
                .await?;
            let Some(stored) = stored else {
                continue;
            };
            let invocation: String = crate::rows::column(&stored, 0)?;
            if let Some(invocation) = InvocationId::parse(&invocation) {
                let created_at_us = crate::rows::column(&stored, 1)?;
                stored_keys.insert(
                    *key,
                    StoredKey {
                        invocation,
                        created_at_us,
                    },
                );
            }
        }
        Ok(stored_keys)
    }

    async fn store_accepted(tx: &mut SqliteConnection, plan: &Plan<'_>) -> Result<(), StoreError> {
        for chunk in plan.insert.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(INSERT_INVOCATIONS);
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
            insert.push(INSERT_INVOCATIONS_END);
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(backend("queueing invocations"))?;
        }
        for chunk in plan.keys.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(INSERT_KEYS);
            push_padded_values(&mut insert, chunk, 5, |mut row, item| {
                row.push_bind(item.namespace.as_str())
                    .push_bind(item.function.as_str())
                    .push_bind(item.idempotency_key.as_deref())
                    .push_bind(item.id.as_str())
                    .push_bind(item.accepted_at_us);
            });
            insert.push(INSERT_KEYS_END);
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(backend("storing idempotency keys"))?;
        }
        Ok(())
    }
}

/// Runs a cycle in one transaction; `synced` raises the connection to `synchronous = FULL`
/// first, and the caller lowers it again.
async fn synced_cycle(
    conn: &mut SqliteConnection,
    cycle: &QueueCycle<'_>,
    synced: bool,
) -> Result<CycleOutcome, StoreError> {
    let mut tx = conn
        .begin_with(if synced { BEGIN_SYNCED } else { BEGIN })
        .await
        .map_err(backend("starting a write"))?;
    let outcome = cycle_steps::<SqliteStore>(&mut tx, cycle).await?;
    tx.commit().await.map_err(backend("committing"))?;
    Ok(outcome)
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
        let mut update = QueryBuilder::<Sqlite>::new(UPDATE_LEASED);
        update.push(set).push(UPDATE_LEASED_FROM);
        push_padded_values(&mut update, chunk, columns, &mut push_row);
        update.push(UPDATE_LEASED_WHERE);
        update.push_bind(owner);
        update
            .build()
            .execute(&mut *tx)
            .await
            .map_err(backend(context))?;
    }
    Ok(())
}
