//! The [`Queue`], as workers drive it. Every cycle (started, settle, accept, claim) is one
//! transaction; how it begins and commits, and how each of its steps writes a batch, is the
//! backend's own (SQLite syncs the transaction that accepts and writes padded multi-row
//! statements; PostgreSQL binds a batch's columns as arrays and locks what nodes share).
//! Which invocations a batch accepts is decided once, by `plan::accept`.

use std::collections::HashMap;

use vireo_core::{
    AttemptResult, ClaimRequest, ClaimedInvocation, CycleOutcome, Enqueued, Name,
    NewAsyncInvocation, Queue, QueueCycle, StartedAttempt, StoreError,
};

use super::{Conn, Dialect, SqlStore};
use crate::codec::{self, unsigned};
use crate::plan::accept::{self, FunctionRef, FunctionState, KeyRef, Plan, StoredKey};
use crate::rows;
use crate::sql::{Sql, query};

/// Where the dialects differ for the queue.
#[async_trait::async_trait]
pub(crate) trait QueueDialect: Dialect {
    /// Leases (to `$1` until `$2`) at most `$4` queued invocations due by `$3`, oldest due
    /// first, returning what [`rows::claimed_invocations`] reads.
    const CLAIM: &'static str;
    /// Every namespace with invocations queued or running, and how many.
    const PENDING_BY_NAMESPACE: &'static str;

    /// Runs [`cycle_steps`] in one transaction of this database's kind.
    async fn run_cycle(&self, cycle: &QueueCycle<'_>) -> Result<CycleOutcome, StoreError>;

    /// Counts each attempt `owner` started on the invocation it still leases.
    async fn count_started(
        tx: &mut Conn<Self>,
        owner: &str,
        started: &[StartedAttempt],
    ) -> Result<(), StoreError>;

    /// Applies results to the invocations `owner` still leases: one of another worker's, or
    /// one already settled, is left alone.
    async fn settle(
        tx: &mut Conn<Self>,
        owner: &str,
        results: &[AttemptResult],
    ) -> Result<(), StoreError>;

    /// What the accept rules need of each function, read so that nothing changes before the
    /// transaction commits.
    async fn function_states<'a>(
        tx: &mut Conn<Self>,
        functions: &[FunctionRef<'a>],
    ) -> Result<HashMap<FunctionRef<'a>, FunctionState>, StoreError>;

    /// The idempotency keys among `keys` that are stored.
    async fn stored_keys<'a>(
        tx: &mut Conn<Self>,
        keys: &[KeyRef<'a>],
    ) -> Result<HashMap<KeyRef<'a>, StoredKey>, StoreError>;

    /// Stores what `plan` accepts: its invocations, then their idempotency keys.
    async fn store_accepted(tx: &mut Conn<Self>, plan: &Plan<'_>) -> Result<(), StoreError>;
}

const EXTEND_LEASES: &str = "UPDATE async_invocations SET lease_until_us = $2 WHERE status = 'running' AND lease_owner = $1";
const RECLAIM_EXPIRED: &str = "UPDATE async_invocations
    SET status = 'queued', lease_owner = NULL, lease_until_us = NULL,
        next_attempt_at_us = $2, updated_at_us = $2
    WHERE status = 'running' AND lease_until_us < $1";
const NEXT_DUE: &str =
    "SELECT MIN(next_attempt_at_us) FROM async_invocations WHERE status = 'queued'";
const EXPIRE_IDEMPOTENCY_KEYS: &str = "DELETE FROM idempotency_keys WHERE created_at_us < $1";

#[async_trait::async_trait]
impl<D: QueueDialect> Queue for SqlStore<D> {
    async fn cycle(&self, cycle: &QueueCycle<'_>) -> Result<CycleOutcome, StoreError> {
        self.backend.run_cycle(cycle).await
    }

    async fn extend_leases(&self, owner: &str, lease_until_us: i64) -> Result<(), StoreError> {
        query(EXTEND_LEASES)
            .bind(owner)
            .bind(lease_until_us)
            .execute(&mut *self.writer().await?, "extending leases")
            .await?;
        Ok(())
    }

    async fn reclaim_expired(
        &self,
        expired_before_us: i64,
        now_us: i64,
    ) -> Result<u64, StoreError> {
        query(RECLAIM_EXPIRED)
            .bind(expired_before_us)
            .bind(now_us)
            .execute(&mut *self.writer().await?, "reclaiming expired leases")
            .await
    }

    async fn pending_by_namespace(&self) -> Result<Vec<(Name, u64)>, StoreError> {
        let rows = query(D::PENDING_BY_NAMESPACE)
            .fetch_all(&mut *self.reader().await?, "reading queue depths")
            .await?;
        rows.iter()
            .map(|row| {
                let namespace: String = rows::column(row, 0)?;
                Ok((
                    codec::name_value("namespace", &namespace)?,
                    unsigned(rows::column(row, 1)?),
                ))
            })
            .collect()
    }

    async fn next_due_us(&self) -> Result<Option<i64>, StoreError> {
        query(NEXT_DUE)
            .scalar(
                &mut *self.reader().await?,
                "reading the next due invocation",
            )
            .await
    }

    async fn expire_idempotency_keys(&self, before_us: i64) -> Result<u64, StoreError> {
        query(EXPIRE_IDEMPOTENCY_KEYS)
            .bind(before_us)
            .execute(&mut *self.writer().await?, "expiring idempotency keys")
            .await
    }
}

/// A cycle's steps, in the transaction `tx` the backend began and commits.
pub(crate) async fn cycle_steps<D: QueueDialect>(
    tx: &mut Conn<D>,
    cycle: &QueueCycle<'_>,
) -> Result<CycleOutcome, StoreError> {
    if !cycle.started.is_empty() {
        D::count_started(tx, cycle.owner, cycle.started).await?;
    }
    if !cycle.settle.is_empty() {
        D::settle(tx, cycle.owner, cycle.settle).await?;
    }
    let accepted = if cycle.accept.is_empty() {
        Vec::new()
    } else {
        accept::<D>(tx, cycle.accept, cycle.max_pending).await?
    };
    let claimed = match cycle.claim {
        Some(request) => claim::<D>(tx, cycle.owner, request).await?,
        None => Vec::new(),
    };
    Ok(CycleOutcome { accepted, claimed })
}

/// Looks up what the accept rules need, in the transaction that stores what they accept, so
/// nothing changes in between (a function deleted since the caller checked gets nothing
/// stored).
pub(crate) async fn accept<D: QueueDialect>(
    tx: &mut Conn<D>,
    batch: &[NewAsyncInvocation],
    max_pending: u64,
) -> Result<Vec<Enqueued>, StoreError> {
    let functions = D::function_states(tx, &accept::functions(batch)).await?;
    let keys = accept::keys(batch, &functions);
    let stored_keys = if keys.is_empty() {
        HashMap::new()
    } else {
        D::stored_keys(tx, &keys).await?
    };
    let plan = accept::plan(batch, max_pending, &functions, &stored_keys);
    D::store_accepted(tx, &plan).await?;
    Ok(plan.outcomes)
}

async fn claim<D: QueueDialect>(
    tx: &mut impl Sql,
    owner: &str,
    request: ClaimRequest,
) -> Result<Vec<ClaimedInvocation>, StoreError> {
    let rows = query(D::CLAIM)
        .bind(owner)
        .bind(request.lease_until_us)
        .bind(request.now_us)
        .bind(request.limit)
        .fetch_all(tx, "claiming invocations")
        .await?;
    rows::claimed_invocations(&rows)
}
