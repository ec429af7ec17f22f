//! How PostgreSQL runs the queue's cycle for the workers of every node: one transaction, each
//! of its steps one statement whatever the batch's size. Claims lock the rows they take and
//! skip rows another node's claim holds, so two nodes never take the same invocation; a
//! settlement applies only under the lease that claimed it.

use std::collections::HashMap;

use sqlx::PgConnection;
use vireo_core::{
    AttemptResult, CycleOutcome, InvocationId, QueueCycle, StartedAttempt, StoreError,
};

use super::rows::array;
use super::{PgStore, backend};
use crate::codec::{self, encode_headers, unsigned};
use crate::plan::accept::{FunctionRef, FunctionState, KeyRef, Plan, StoredKey};
use crate::roles::Dialect as _;
use crate::roles::queue::{QueueDialect, cycle_steps};
use crate::sql::commit;

const COUNT_STARTED: &str = "UPDATE async_invocations AS a SET attempts = v.attempt
    FROM UNNEST($1::TEXT[], $2::BIGINT[]) AS v (id, attempt)
    WHERE a.id = v.id AND a.status = 'running' AND a.lease_owner = $3";
const SETTLE: &str = "UPDATE async_invocations AS a SET status = v.status,
        next_attempt_at_us = COALESCE(v.next_at_us, a.next_attempt_at_us), attempts = v.attempts,
        response_status = COALESCE(v.response_status, a.response_status),
        response_headers = COALESCE(v.response_headers, a.response_headers),
        response_body = COALESCE(v.response_body, a.response_body),
        response_truncated = COALESCE(v.response_truncated, a.response_truncated),
        error = v.error, updated_at_us = v.at_us, lease_owner = NULL, lease_until_us = NULL
    FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[], $6::BYTEA[],
                $7::BYTEA[], $8::BOOLEAN[], $9::TEXT[], $10::BIGINT[])
        AS v (id, status, next_at_us, attempts, response_status, response_headers, response_body,
              response_truncated, error, at_us)
    WHERE a.id = v.id AND a.status = 'running' AND a.lease_owner = $11";
/// Waits for other nodes accepting into the same namespaces (in one order, so two accepts
/// cannot wait for each other), so each counts what the other committed.
const LOCK_NAMESPACES: &str =
    "SELECT name FROM namespaces WHERE name = ANY($1) ORDER BY name FOR NO KEY UPDATE";
/// For each function: whether it exists, its namespace's queued and running invocations
/// (counted from the `async_pending` partial index) and the namespace's `max_queued` quota.
const ACCEPT_FUNCTIONS: &str = "WITH wanted AS (
        SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[]) AS u (namespace, function)),
    pending AS (
        SELECT namespace, COUNT(*) AS pending FROM async_invocations
        WHERE status IN ('queued', 'running') AND namespace IN (SELECT namespace FROM wanted)
        GROUP BY namespace)
    SELECT w.namespace, w.function,
        EXISTS (SELECT 1 FROM functions f WHERE f.namespace = w.namespace AND f.name = w.function),
        COALESCE(p.pending, 0),
        (SELECT (n.quotas::jsonb ->> 'max_queued')::BIGINT FROM namespaces n WHERE n.name = w.namespace)
    FROM wanted w LEFT JOIN pending p ON p.namespace = w.namespace";
const ACCEPT_KEYS: &str = "SELECT k.namespace, k.function, k.key, k.invocation_id, k.created_at_us
    FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[]) AS u (namespace, function, key)
    JOIN idempotency_keys k
        ON k.namespace = u.namespace AND k.function = u.function AND k.key = u.key";
const INSERT_INVOCATIONS: &str = r#"INSERT INTO async_invocations (id, namespace, function, selector, "trigger", source, method, uri, headers, body, idempotency_key, accepted_at_us, event_time_us, status, updated_at_us, next_attempt_at_us)
    SELECT *, 'queued', v.accepted_at_us, v.accepted_at_us
    FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[],
                $8::TEXT[], $9::BYTEA[], $10::BYTEA[], $11::TEXT[], $12::BIGINT[], $13::BIGINT[])
        AS v (id, namespace, function, selector, "trigger", source, method, uri, headers, body,
              idempotency_key, accepted_at_us, event_time_us)"#;
/// An expired key is taken over by the new invocation.
const INSERT_KEYS: &str =
    "INSERT INTO idempotency_keys (namespace, function, key, invocation_id, created_at_us)
    SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[])
    ON CONFLICT (namespace, function, key) DO UPDATE SET invocation_id = excluded.invocation_id,
        created_at_us = excluded.created_at_us";

#[async_trait::async_trait]
impl QueueDialect for PgStore {
    /// Rows another node's claim has locked are skipped, not waited for; what is taken is
    /// returned oldest due first.
    const CLAIM: &'static str = r#"WITH due AS (
        SELECT id FROM async_invocations
        WHERE status = 'queued' AND next_attempt_at_us <= $3
        ORDER BY next_attempt_at_us LIMIT $4
        FOR UPDATE SKIP LOCKED),
    claimed AS (
        UPDATE async_invocations AS a
        SET status = 'running', lease_owner = $1, lease_until_us = $2, updated_at_us = $3
        FROM due WHERE a.id = due.id
        RETURNING a.id, a.namespace, a.function, a.selector, a."trigger", a.source, a.method,
                  a.uri, a.headers, a.body, a.attempts + 1 AS attempt, a.accepted_at_us,
                  a.event_time_us, a.next_attempt_at_us,
                  (SELECT retry_policy FROM functions AS f
                   WHERE f.namespace = a.namespace AND f.name = a.function) AS retry_policy)
    SELECT * FROM claimed ORDER BY next_attempt_at_us, id"#;
    /// Every namespace, those with nothing pending at zero.
    const PENDING_BY_NAMESPACE: &'static str = "SELECT n.name, COUNT(a.id) FROM namespaces n
    LEFT JOIN async_invocations a ON a.namespace = n.name AND a.status IN ('queued', 'running')
    GROUP BY n.name ORDER BY n.name";

    /// PostgreSQL syncs every commit, so an accepted invocation survives a crash of the
    /// database without a setting of its own.
    async fn run_cycle(&self, cycle: &QueueCycle<'_>) -> Result<CycleOutcome, StoreError> {
        let mut tx = self.write().await?;
        let outcome = cycle_steps::<PgStore>(&mut tx, cycle).await?;
        commit(tx).await?;
        Ok(outcome)
    }

    async fn count_started(
        tx: &mut PgConnection,
        owner: &str,
        started: &[StartedAttempt],
    ) -> Result<(), StoreError> {
        sqlx::query(COUNT_STARTED)
            .bind(array(started, |s| s.id.as_str()))
            .bind(array(started, |s| i64::from(s.attempt)))
            .bind(owner)
            .execute(tx)
            .await
            .map_err(backend("counting started attempts"))?;
        Ok(())
    }

    async fn settle(
        tx: &mut PgConnection,
        owner: &str,
        results: &[AttemptResult],
    ) -> Result<(), StoreError> {
        let settled: Vec<_> = results
            .iter()
            .map(|result| codec::settled(&result.settlement))
            .collect();
        let responses: Vec<_> = results
            .iter()
            .map(|result| result.response.as_ref())
            .collect();
        sqlx::query(SETTLE)
            .bind(array(results, |r| r.id.as_str()))
            .bind(array(&settled, |(status, _)| status.as_str()))
            .bind(array(&settled, |(_, next_at)| *next_at))
            .bind(array(results, |r| i64::from(r.attempts)))
            .bind(array(&responses, |r| r.map(|r| i64::from(r.status))))
            .bind(array(&responses, |r| r.map(|r| encode_headers(&r.headers))))
            .bind(array(&responses, |r| r.map(|r| r.body.to_vec())))
            .bind(array(&responses, |r| r.map(|r| r.body_truncated)))
            .bind(array(results, |r| r.error.as_deref()))
            .bind(array(results, |r| r.at_us))
            .bind(owner)
            .execute(tx)
            .await
            .map_err(backend("settling invocations"))?;
        Ok(())
    }

    /// After waiting for other accepts into the same namespaces (in one order, so two accepts
    /// cannot wait for each other), so each counts what the other committed; one statement.
    async fn function_states<'a>(
        tx: &mut PgConnection,
        functions: &[FunctionRef<'a>],
    ) -> Result<HashMap<FunctionRef<'a>, FunctionState>, StoreError> {
        let mut namespaces: Vec<&str> = functions.iter().map(|function| function.0).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        sqlx::query(LOCK_NAMESPACES)
            .bind(&namespaces)
            .execute(&mut *tx)
            .await
            .map_err(backend("locking namespaces"))?;
        let found: Vec<(String, String, bool, i64, Option<i64>)> = sqlx::query_as(ACCEPT_FUNCTIONS)
            .bind(array(functions, |function| function.0))
            .bind(array(functions, |function| function.1))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend("checking functions and queue depth"))?;
        let by_name: HashMap<(&str, &str), _> = found
            .iter()
            .map(|(namespace, function, exists, pending, max_queued)| {
                let state = FunctionState {
                    exists: *exists,
                    pending: unsigned(*pending),
                    max_queued: max_queued.and_then(|quota| u64::try_from(quota).ok()),
                };
                ((namespace.as_str(), function.as_str()), state)
            })
            .collect();
        Ok(functions
            .iter()
            .filter_map(|function| Some((*function, *by_name.get(function)?)))
            .collect())
    }

    /// One statement for every key.
    async fn stored_keys<'a>(
        tx: &mut PgConnection,
        keys: &[KeyRef<'a>],
    ) -> Result<HashMap<KeyRef<'a>, StoredKey>, StoreError> {
        let mut stored_keys = HashMap::new();
        let found: Vec<(String, String, String, String, i64)> = sqlx::query_as(ACCEPT_KEYS)
            .bind(array(keys, |key| key.0))
            .bind(array(keys, |key| key.1))
            .bind(array(keys, |key| key.2))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend("looking up idempotency keys"))?;
        let by_key: HashMap<(&str, &str, &str), (&str, i64)> = found
            .iter()
            .map(|(namespace, function, key, invocation, at)| {
                (
                    (namespace.as_str(), function.as_str(), key.as_str()),
                    (invocation.as_str(), *at),
                )
            })
            .collect();
        for key in keys.iter().copied() {
            if let Some((invocation, created_at_us)) = by_key.get(&key)
                && let Some(invocation) = InvocationId::parse(invocation)
            {
                stored_keys.insert(
                    key,
                    StoredKey {
                        invocation,
                        created_at_us: *created_at_us,
                    },
                );
            }
        }
        Ok(stored_keys)
    }

    /// One statement per table.
    async fn store_accepted(tx: &mut PgConnection, plan: &Plan<'_>) -> Result<(), StoreError> {
        if !plan.insert.is_empty() {
            let items = &plan.insert;
            sqlx::query(INSERT_INVOCATIONS)
                .bind(array(items, |i| i.id.as_str()))
                .bind(array(items, |i| i.namespace.as_str()))
                .bind(array(items, |i| i.function.as_str()))
                .bind(array(items, |i| i.selector.to_string()))
                .bind(array(items, |i| i.trigger.as_str()))
                .bind(array(items, |i| i.source.as_str()))
                .bind(array(items, |i| i.request.method.as_str()))
                .bind(array(items, |i| i.request.uri.as_str()))
                .bind(array(items, |i| encode_headers(&i.request.headers)))
                .bind(array(items, |i| i.request.body.as_ref()))
                .bind(array(items, |i| i.idempotency_key.as_deref()))
                .bind(array(items, |i| i.accepted_at_us))
                .bind(array(items, |i| i.event_time_us))
                .execute(&mut *tx)
                .await
                .map_err(backend("queueing invocations"))?;
        }
        if !plan.keys.is_empty() {
            let items = &plan.keys;
            sqlx::query(INSERT_KEYS)
                .bind(array(items, |i| i.namespace.as_str()))
                .bind(array(items, |i| i.function.as_str()))
                .bind(array(items, |i| i.idempotency_key.as_deref()))
                .bind(array(items, |i| i.id.as_str()))
                .bind(array(items, |i| i.accepted_at_us))
                .execute(&mut *tx)
                .await
                .map_err(backend("storing idempotency keys"))?;
        }
        Ok(())
    }
}
