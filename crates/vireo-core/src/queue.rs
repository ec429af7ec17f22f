//! The durable async queue: invocations accepted with `202` are stored before the answer, claimed
//! by workers under a lease, retried with backoff, and dead-lettered when attempts or age run
//! out. Delivery is at-least-once; a redelivery carries the same invocation id.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::invocation::{InvocationId, Trigger};
use crate::names::{Name, VersionSelector};
use crate::store::StoreError;

/// How long an `Idempotency-Key` keeps returning the first invocation.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// Where an async invocation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AsyncStatus {
    /// Stored, waiting for its (next) attempt.
    Queued,
    /// Claimed by a worker whose lease has not expired.
    Running,
    /// The function answered with a 2xx or 3xx.
    Succeeded,
    /// The function answered with a status the retry policy does not retry, or is gone.
    Failed,
    /// Attempts or event age ran out; it waits in the dead-letter queue for a redrive.
    Dead,
}

impl AsyncStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AsyncStatus::Queued => "queued",
            AsyncStatus::Running => "running",
            AsyncStatus::Succeeded => "succeeded",
            AsyncStatus::Failed => "failed",
            AsyncStatus::Dead => "dead",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Running,
            Self::Succeeded,
            Self::Failed,
            Self::Dead,
        ]
        .into_iter()
        .find(|status| status.as_str() == value)
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Dead)
    }
}

/// An HTTP request kept in the store for a later delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    pub method: String,
    /// The function-relative path and query the guest sees.
    pub uri: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: HeaderMap,
    /// At most the server's stored-response limit; `body_truncated` says when more was sent.
    pub body: Bytes,
    pub body_truncated: bool,
}

/// A function's retry policy for async invocations. Missing fields take the defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts in total, the first included (default 3).
    pub max_attempts: u32,
    /// An invocation older than this (seconds since it was accepted or redriven) is not tried
    /// again (default 21600, six hours).
    pub max_event_age_secs: u64,
    /// Backoff before the second attempt, doubling for each further one, with jitter; none
    /// means the server's default.
    pub min_backoff_ms: Option<u64>,
    /// Upper bound of the backoff; none means the server's default.
    pub max_backoff_ms: Option<u64>,
    /// Retry 4xx answers too (default: only 5xx, traps and timeouts are retried).
    pub retry_on_4xx: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            max_event_age_secs: 6 * 60 * 60,
            min_backoff_ms: None,
            max_backoff_ms: None,
            retry_on_4xx: false,
        }
    }
}

const MAX_ATTEMPTS: u32 = 100;
const MAX_EVENT_AGE_SECS: u64 = 14 * 24 * 60 * 60;

/// A retry policy outside the bounds; the message names the field and the bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRetryPolicy(String);

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), InvalidRetryPolicy> {
        let fail = |message: String| Err(InvalidRetryPolicy(message));
        if self.max_attempts == 0 || self.max_attempts > MAX_ATTEMPTS {
            return fail(format!(
                "max_attempts must be between 1 and {MAX_ATTEMPTS}, got {}",
                self.max_attempts
            ));
        }
        if self.max_event_age_secs == 0 || self.max_event_age_secs > MAX_EVENT_AGE_SECS {
            return fail(format!(
                "max_event_age_secs must be between 1 and {MAX_EVENT_AGE_SECS} (14 days), got {}",
                self.max_event_age_secs
            ));
        }
        if let (Some(min), Some(max)) = (self.min_backoff_ms, self.max_backoff_ms)
            && min > max
        {
            return fail(format!(
                "min_backoff_ms ({min}) must not exceed max_backoff_ms ({max})"
            ));
        }
        Ok(())
    }
}

/// An invocation to store for later delivery.
#[derive(Debug, Clone)]
pub struct NewAsyncInvocation {
    pub id: InvocationId,
    pub namespace: Name,
    pub function: Name,
    pub selector: VersionSelector,
    pub trigger: Trigger,
    /// The CloudEvents `ce-source` of the delivery.
    pub source: String,
    pub request: StoredRequest,
    pub idempotency_key: Option<String>,
    pub accepted_at_us: i64,
    /// When the event happened (the CloudEvents `time`): its acceptance, or a schedule's slot.
    pub event_time_us: i64,
}

/// What became of one invocation accepted in a [`QueueCycle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    /// Stored durably; it will be delivered.
    Accepted,
    /// The idempotency key was used within the window: this is the first invocation's id, and
    /// nothing new was stored.
    Duplicate(InvocationId),
    /// The namespace already has this many invocations waiting or running.
    QueueFull { limit: u64 },
    /// The function was deleted before the invocation could be stored.
    FunctionNotFound,
}

/// An invocation a worker has claimed; its lease is held by the claiming owner. Claiming does
/// not count an attempt: the worker may hold it unstarted for a while, and one it never starts
/// (a crash, a shutdown) must not use up the invocation's attempts.
#[derive(Debug, Clone)]
pub struct ClaimedInvocation {
    pub id: InvocationId,
    pub namespace: Name,
    pub function: Name,
    pub selector: VersionSelector,
    pub trigger: Trigger,
    pub source: String,
    pub request: StoredRequest,
    /// This attempt's number, from 1: the attempts begun so far, plus one.
    pub attempt: u32,
    /// When it was accepted (or redriven): its event age counts from here.
    pub accepted_at_us: i64,
    pub event_time_us: i64,
    /// The function's policy as it is now.
    pub policy: RetryPolicy,
}

/// What an attempt decided about its invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    Succeeded,
    Failed,
    Dead,
    /// Try again at this time; the attempt counted.
    Retry {
        at_us: i64,
    },
    /// Try again at this time; the attempt did not count (the server had no capacity, or it
    /// never started).
    Postpone {
        at_us: i64,
    },
}

/// An attempt that has begun: from now on it counts, even if the server dies before it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartedAttempt {
    pub id: InvocationId,
    /// Its number, which becomes the invocation's count of attempts.
    pub attempt: u32,
}

#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub id: InvocationId,
    /// The invocation's count of attempts once this is stored: the attempt's number if it began
    /// and counts, one less if it never began or did not count.
    pub attempts: u32,
    pub settlement: Settlement,
    pub response: Option<StoredResponse>,
    pub error: Option<String>,
    pub at_us: i64,
}

/// Claim due invocations as part of a [`QueueCycle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimRequest {
    pub now_us: i64,
    pub lease_until_us: i64,
    pub limit: u32,
}

/// One write of the async queue, applied in a single transaction so a busy queue pays one
/// commit for all its kinds of work: first `started` (counting attempts that began), then
/// `settle` (freeing quota), then `accept`, then `claim` (which can take invocations accepted in
/// the same cycle). The commit is synced to disk before returning whenever `accept` is not empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueCycle<'a> {
    /// The worker whose attempts `started` counts, whose leases `settle` ends and `claim` takes.
    pub owner: &'a str,
    /// Attempts that began; one of an invocation `owner` no longer leases is ignored.
    pub started: &'a [StartedAttempt],
    /// Attempt results; one for an invocation `owner` no longer leases (it was reclaimed) is
    /// ignored, since another attempt already owns it.
    pub settle: &'a [AttemptResult],
    /// New invocations; a namespace with `max_pending` invocations queued or running (or its
    /// own `max_queued` quota) takes no more.
    pub accept: &'a [NewAsyncInvocation],
    pub max_pending: u64,
    /// Claims up to `limit` due invocations until `lease_until_us`, oldest due first; their
    /// attempts count once they are reported in `started`.
    pub claim: Option<ClaimRequest>,
}

/// What a [`QueueCycle`] did: one outcome per accepted item, in order, and the claimed
/// invocations.
#[derive(Debug, Clone, Default)]
pub struct CycleOutcome {
    pub accepted: Vec<Enqueued>,
    pub claimed: Vec<ClaimedInvocation>,
}

/// An async invocation as the API shows it.
#[derive(Debug, Clone)]
pub struct AsyncInvocation {
    pub id: InvocationId,
    pub namespace: Name,
    pub function: Name,
    pub selector: String,
    pub trigger: Trigger,
    pub status: AsyncStatus,
    /// Attempts started so far.
    pub attempts: u32,
    pub accepted_at_us: i64,
    pub updated_at_us: i64,
    /// When a queued invocation becomes due.
    pub next_attempt_at_us: Option<i64>,
    pub idempotency_key: Option<String>,
    /// The last attempt's answer, if it gave one.
    pub response: Option<StoredResponse>,
    pub error: Option<String>,
}

/// How many of a function's async invocations are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueueCounts {
    pub queued: u64,
    pub running: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub dead: u64,
}

/// The queue as its workers drive it: cycles that accept, start, settle and claim, leases, and
/// the housekeeping a worker does between cycles.
#[async_trait::async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Applies one cycle in one transaction; if it fails, none of it took effect.
    async fn cycle(&self, cycle: &QueueCycle<'_>) -> Result<CycleOutcome, StoreError>;

    /// A cycle that only accepts `batch` (synced before this returns).
    async fn enqueue(
        &self,
        batch: &[NewAsyncInvocation],
        max_pending: u64,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let cycle = QueueCycle {
            accept: batch,
            max_pending,
            ..QueueCycle::default()
        };
        Ok(self.cycle(&cycle).await?.accepted)
    }

    /// A cycle that only claims, for `owner`.
    async fn claim(
        &self,
        owner: &str,
        now_us: i64,
        lease_until_us: i64,
        limit: u32,
    ) -> Result<Vec<ClaimedInvocation>, StoreError> {
        let cycle = QueueCycle {
            owner,
            claim: Some(ClaimRequest {
                now_us,
                lease_until_us,
                limit,
            }),
            ..QueueCycle::default()
        };
        Ok(self.cycle(&cycle).await?.claimed)
    }

    /// A cycle that only settles `results` of `owner`'s attempts.
    async fn settle(&self, owner: &str, results: &[AttemptResult]) -> Result<(), StoreError> {
        let cycle = QueueCycle {
            owner,
            settle: results,
            ..QueueCycle::default()
        };
        self.cycle(&cycle).await.map(drop)
    }

    /// Extends every lease `owner` holds; a worker calls this while its attempts run.
    async fn extend_leases(&self, owner: &str, lease_until_us: i64) -> Result<(), StoreError>;

    /// Makes invocations whose lease expires before `expired_before_us` claimable again at
    /// `now_us` (their worker died); returns how many.
    async fn reclaim_expired(&self, expired_before_us: i64, now_us: i64)
    -> Result<u64, StoreError>;

    /// Invocations queued or running, per namespace.
    async fn pending_by_namespace(&self) -> Result<Vec<(Name, u64)>, StoreError>;

    /// When the earliest queued invocation is due, if any is queued.
    async fn next_due_us(&self) -> Result<Option<i64>, StoreError>;

    /// Forgets idempotency keys older than `before_us`.
    async fn expire_idempotency_keys(&self, before_us: i64) -> Result<u64, StoreError>;
}

/// The queue as the admin API sees it: one invocation's state, a function's counts and its
/// dead letters, redriving them, and the function's retry policy.
#[async_trait::async_trait]
pub trait QueueAdmin: Send + Sync + 'static {
    async fn get_async(&self, id: &InvocationId) -> Result<Option<AsyncInvocation>, StoreError>;

    async fn queue_counts(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<QueueCounts, StoreError>;

    /// A function's dead-letter queue, oldest first.
    async fn list_dead(
        &self,
        namespace: &Name,
        function: &Name,
        limit: u32,
    ) -> Result<Vec<AsyncInvocation>, StoreError>;

    /// Queues dead invocations again with fresh attempts and age (all of the function's when
    /// `ids` is `None`); returns how many.
    async fn redrive(
        &self,
        namespace: &Name,
        function: &Name,
        ids: Option<&[InvocationId]>,
        now_us: i64,
    ) -> Result<u64, StoreError>;

    async fn retry_policy(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<RetryPolicy, StoreError>;

    async fn set_retry_policy(
        &self,
        namespace: &Name,
        function: &Name,
        policy: &RetryPolicy,
    ) -> Result<(), StoreError>;
}

/// Accepts async invocations on behalf of triggers, batching concurrent ones into one durable
/// commit.
#[async_trait::async_trait]
pub trait AsyncSubmitter: Send + Sync + 'static {
    async fn submit(&self, invocation: NewAsyncInvocation) -> Result<Enqueued, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_bounds_are_checked() {
        assert!(RetryPolicy::default().validate().is_ok());
        let zero = RetryPolicy {
            max_attempts: 0,
            ..RetryPolicy::default()
        };
        assert!(
            zero.validate()
                .unwrap_err()
                .to_string()
                .contains("max_attempts")
        );
        let inverted = RetryPolicy {
            min_backoff_ms: Some(10),
            max_backoff_ms: Some(5),
            ..RetryPolicy::default()
        };
        assert!(
            inverted
                .validate()
                .unwrap_err()
                .to_string()
                .contains("min_backoff_ms")
        );
    }

    #[test]
    fn statuses_round_trip() {
        for status in ["queued", "running", "succeeded", "failed", "dead"] {
            assert_eq!(AsyncStatus::parse(status).unwrap().as_str(), status);
        }
        assert!(AsyncStatus::Dead.is_terminal() && !AsyncStatus::Running.is_terminal());
    }
}
