//! The PostgreSQL [`Queue`], as the workers of every node drive it. Every cycle (started,
//! settle, accept, claim) is one transaction, and each of its parts one statement whatever the
//! batch's size. Claims lock the rows they take and skip rows another node's claim holds, so
//! two nodes never take the same invocation; a settlement applies only under the lease that
//! claimed it.

use std::collections::HashMap;

use sqlx::PgConnection;
use vireo_core::{
    AttemptResult, ClaimRequest, ClaimedInvocation, CycleOutcome, Enqueued, InvocationId, Name,
    NewAsyncInvocation, Queue, QueueCycle, StartedAttempt, StoreError,
};

use super::{PgStore, backend};
use crate::codec::{self, encode_headers, unsigned};
use crate::plan::accept::{self, FunctionState, StoredKey};
use crate::roles::{Dialect as _, SqlStore};
use crate::rows;
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
/// Rows another node's claim has locked are skipped, not waited for; what is taken is
/// returned oldest due first.
const CLAIM: &str = r#"WITH due AS (
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
const EXTEND_LEASES: &str = "UPDATE async_invocations SET lease_until_us = $2 WHERE status = 'running' AND lease_owner = $1";
const RECLAIM_EXPIRED: &str = "UPDATE async_invocations
    SET status = 'queued', lease_owner = NULL, lease_until_us = NULL,
        next_attempt_at_us = $2, updated_at_us = $2
    WHERE status = 'running' AND lease_until_us < $1";
/// Every namespace, those with nothing pending at zero.
const PENDING_BY_NAMESPACE: &str = "SELECT n.name, COUNT(a.id) FROM namespaces n
    LEFT JOIN async_invocations a ON a.namespace = n.name AND a.status IN ('queued', 'running')
    GROUP BY n.name ORDER BY n.name";
const NEXT_DUE: &str =
    "SELECT MIN(next_attempt_at_us) FROM async_invocations WHERE status = 'queued'";
const EXPIRE_IDEMPOTENCY_KEYS: &str = "DELETE FROM idempotency_keys WHERE created_at_us < $1";

#[async_trait::async_trait]
impl Queue for SqlStore<PgStore> {
    /// PostgreSQL syncs every commit, so an accepted invocation survives a crash of the
    /// database without a setting of its own.
    async fn cycle(&self, cycle: &QueueCycle<'_>) -> Result<CycleOutcome, StoreError> {
        let mut tx = self.write().await?;
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
        commit(tx).await?;
        Ok(CycleOutcome { accepted, claimed })
    }

    async fn extend_leases(&self, owner: &str, lease_until_us: i64) -> Result<(), StoreError> {
        sqlx::query(EXTEND_LEASES)
            .bind(owner)
            .bind(lease_until_us)
            .execute(&self.pool)
            .await
            .map_err(backend("extending leases"))?;
        Ok(())
    }

    async fn reclaim_expired(
        &self,
        expired_before_us: i64,
        now_us: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(RECLAIM_EXPIRED)
            .bind(expired_before_us)
            .bind(now_us)
            .execute(&self.pool)
            .await
            .map_err(backend("reclaiming expired leases"))?;
        Ok(done.rows_affected())
    }

    async fn pending_by_namespace(&self) -> Result<Vec<(Name, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(PENDING_BY_NAMESPACE)
            .fetch_all(&self.pool)
            .await
            .map_err(backend("reading queue depths"))?;
        rows.into_iter()
            .map(|(namespace, pending)| {
                Ok((
                    codec::name_value("namespace", &namespace)?,
                    unsigned(pending),
                ))
            })
            .collect()
    }

    async fn next_due_us(&self) -> Result<Option<i64>, StoreError> {
        sqlx::query_scalar(NEXT_DUE)
            .fetch_one(&self.pool)
            .await
            .map_err(backend("reading the next due invocation"))
    }

    async fn expire_idempotency_keys(&self, before_us: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(EXPIRE_IDEMPOTENCY_KEYS)
            .bind(before_us)
            .execute(&self.pool)
            .await
            .map_err(backend("expiring idempotency keys"))?;
        Ok(done.rows_affected())
    }
}

async fn count_started(
    tx: &mut PgConnection,
    owner: &str,
    started: &[StartedAttempt],
) -> Result<(), StoreError> {
    sqlx::query(COUNT_STARTED)
        .bind(started.iter().map(|s| s.id.as_str()).collect::<Vec<_>>())
        .bind(
            started
                .iter()
                .map(|s| i64::from(s.attempt))
                .collect::<Vec<_>>(),
        )
        .bind(owner)
        .execute(tx)
        .await
        .map_err(backend("counting started attempts"))?;
    Ok(())
}

/// Applies results to the invocations `owner` still leases: one of another worker's, or one
/// already settled, is left alone.
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
        .bind(results.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
        .bind(
            settled
                .iter()
                .map(|(status, _)| status.as_str())
                .collect::<Vec<_>>(),
        )
        .bind(
            settled
                .iter()
                .map(|(_, next_at)| *next_at)
                .collect::<Vec<_>>(),
        )
        .bind(
            results
                .iter()
                .map(|r| i64::from(r.attempts))
                .collect::<Vec<_>>(),
        )
        .bind(
            responses
                .iter()
                .map(|r| r.map(|r| i64::from(r.status)))
                .collect::<Vec<_>>(),
        )
        .bind(
            responses
                .iter()
                .map(|r| r.map(|r| encode_headers(&r.headers)))
                .collect::<Vec<_>>(),
        )
        .bind(
            responses
                .iter()
                .map(|r| r.map(|r| r.body.to_vec()))
                .collect::<Vec<_>>(),
        )
        .bind(
            responses
                .iter()
                .map(|r| r.map(|r| r.body_truncated))
                .collect::<Vec<_>>(),
        )
        .bind(
            results
                .iter()
                .map(|r| r.error.as_deref())
                .collect::<Vec<_>>(),
        )
        .bind(results.iter().map(|r| r.at_us).collect::<Vec<_>>())
        .bind(owner)
        .execute(tx)
        .await
        .map_err(backend("settling invocations"))?;
    Ok(())
}

/// Looks up what the accept rules need, in the transaction that stores what they accept and
/// after waiting for other accepts into the same namespaces, so nothing changes in between:
/// one statement for the functions, one for the keys, one per table written.
async fn accept(
    tx: &mut PgConnection,
    batch: &[NewAsyncInvocation],
    max_pending: u64,
) -> Result<Vec<Enqueued>, StoreError> {
    let wanted = accept::functions(batch);
    let mut namespaces: Vec<&str> = wanted.iter().map(|function| function.0).collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    sqlx::query(LOCK_NAMESPACES)
        .bind(&namespaces)
        .execute(&mut *tx)
        .await
        .map_err(backend("locking namespaces"))?;
    let found: Vec<(String, String, bool, i64, Option<i64>)> = sqlx::query_as(ACCEPT_FUNCTIONS)
        .bind(wanted.iter().map(|function| function.0).collect::<Vec<_>>())
        .bind(wanted.iter().map(|function| function.1).collect::<Vec<_>>())
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
    let functions: HashMap<_, _> = wanted
        .iter()
        .filter_map(|function| Some((*function, *by_name.get(function)?)))
        .collect();

    let keys = accept::keys(batch, &functions);
    let mut stored_keys = HashMap::new();
    if !keys.is_empty() {
        let found: Vec<(String, String, String, String, i64)> = sqlx::query_as(ACCEPT_KEYS)
            .bind(keys.iter().map(|key| key.0).collect::<Vec<_>>())
            .bind(keys.iter().map(|key| key.1).collect::<Vec<_>>())
            .bind(keys.iter().map(|key| key.2).collect::<Vec<_>>())
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
        for key in keys {
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
    }
    let plan = accept::plan(batch, max_pending, &functions, &stored_keys);

    if !plan.insert.is_empty() {
        let items = &plan.insert;
        sqlx::query(INSERT_INVOCATIONS)
            .bind(items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>())
            .bind(
                items
                    .iter()
                    .map(|i| i.namespace.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                items
                    .iter()
                    .map(|i| i.function.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                items
                    .iter()
                    .map(|i| i.selector.to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(items.iter().map(|i| i.trigger.as_str()).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.source.as_str()).collect::<Vec<_>>())
            .bind(
                items
                    .iter()
                    .map(|i| i.request.method.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                items
                    .iter()
                    .map(|i| i.request.uri.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                items
                    .iter()
                    .map(|i| encode_headers(&i.request.headers))
                    .collect::<Vec<_>>(),
            )
            .bind(
                items
                    .iter()
                    .map(|i| i.request.body.as_ref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                items
                    .iter()
                    .map(|i| i.idempotency_key.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(items.iter().map(|i| i.accepted_at_us).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.event_time_us).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(backend("queueing invocations"))?;
    }
    if !plan.keys.is_empty() {
        let items = &plan.keys;
        sqlx::query(INSERT_KEYS)
            .bind(
                items
                    .iter()
                    .map(|i| i.namespace.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                items
                    .iter()
                    .map(|i| i.function.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                items
                    .iter()
                    .map(|i| i.idempotency_key.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>())
            .bind(items.iter().map(|i| i.accepted_at_us).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(backend("storing idempotency keys"))?;
    }
    Ok(plan.outcomes)
}

async fn claim(
    tx: &mut PgConnection,
    owner: &str,
    request: ClaimRequest,
) -> Result<Vec<ClaimedInvocation>, StoreError> {
    let rows = sqlx::query(CLAIM)
        .bind(owner)
        .bind(request.lease_until_us)
        .bind(request.now_us)
        .bind(i64::from(request.limit))
        .fetch_all(tx)
        .await
        .map_err(backend("claiming invocations"))?;
    rows::claimed_invocations(&rows)
}
