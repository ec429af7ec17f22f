//! The async worker: claims due invocations under a lease while it has free slots, delivers
//! each through the `Invoker`, and settles the results in batches. A heartbeat extends its
//! leases and reclaims those of workers that died.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use vireo_core::backoff::Retry;
use vireo_core::queue::IDEMPOTENCY_WINDOW;
use vireo_core::time::now_micros;
use vireo_core::{
    AttemptResult, ClaimedInvocation, Invoker, Queue, Settlement, StartedAttempt, StoreError,
};

use super::delivery::{self, DeliverySettings};
use super::writer::QueueWriter;

/// Gauge of async invocations queued or running, per namespace, refreshed by the heartbeat.
pub const ASYNC_PENDING_METRIC: &str = "vireo_async_pending";

/// Most invocations claimed in one statement, and held claimed ahead of free slots.
const CLAIM_BATCH: usize = 256;
/// Finished attempts whose results may wait for storage at once. A slot is freed when its
/// attempt ends, not when its result is stored, so the next attempt does not wait for a
/// commit; this bounds what piles up when the store falls behind.
const UNSETTLED_LIMIT: usize = 1024;

#[derive(Debug, Clone, Copy)]
pub struct WorkerSettings {
    /// Attempts running at once in this server.
    pub concurrency: usize,
    /// How long a claim holds without a heartbeat; a crashed server's work is redelivered
    /// after this (at once on restart of a single-node store).
    pub lease: Duration,
    /// Longest wait before looking for due work again when nothing woke the worker.
    pub poll_interval: Duration,
    pub delivery: DeliverySettings,
}

/// A running worker; [`WorkerHandle::stop`] ends it.
pub struct WorkerHandle {
    cancel: CancellationToken,
    tasks: TaskTracker,
}

impl WorkerHandle {
    /// Stops claiming and waits up to `grace` for attempts in flight. Attempts still running
    /// keep their leases and are redelivered after the next start.
    pub async fn stop(self, grace: Duration) -> bool {
        self.cancel.cancel();
        self.tasks.close();
        tokio::time::timeout(grace, self.tasks.wait()).await.is_ok()
    }
}

struct Worker {
    queue: Arc<dyn Queue>,
    invoker: Arc<dyn Invoker>,
    settings: WorkerSettings,
    writer: QueueWriter,
    wake: Arc<Notify>,
    slots: Arc<Semaphore>,
    unsettled: Arc<Semaphore>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// Starts the worker, claiming and settling through `writer` as its owner; `wake` is
/// notified when new invocations are accepted.
pub fn start(
    queue: Arc<dyn Queue>,
    invoker: Arc<dyn Invoker>,
    settings: WorkerSettings,
    writer: QueueWriter,
    wake: Arc<Notify>,
) -> WorkerHandle {
    let cancel = CancellationToken::new();
    let tasks = TaskTracker::new();
    let worker = Arc::new(Worker {
        queue,
        invoker,
        writer,
        wake,
        slots: Arc::new(Semaphore::new(settings.concurrency.max(1))),
        unsettled: Arc::new(Semaphore::new(UNSETTLED_LIMIT.max(settings.concurrency))),
        settings,
        cancel: cancel.clone(),
        tasks: tasks.clone(),
    });
    tasks.spawn(worker.clone().heartbeat());
    tasks.spawn(worker.run());
    WorkerHandle { cancel, tasks }
}

impl Worker {
    /// Claims ahead into a local buffer in large batches (one transaction for many
    /// invocations, instead of one per freed slot), and starts the buffered attempts as slots
    /// free up. Buffered invocations are leased like running ones, but their attempts count
    /// only once they start.
    async fn run(self: Arc<Self>) {
        tracing::info!(owner = %self.writer.owner(), concurrency = self.settings.concurrency, "async worker started");
        let mut ready: VecDeque<ClaimedInvocation> = VecDeque::new();
        // The last claim found fewer due invocations than it asked for: claim again only once
        // the buffer is empty, so new arrivals gather into one claim instead of one each.
        let mut drained = false;
        let mut retry = Retry::new("claiming async invocations");
        // After a failed claim, none before this.
        let mut claim_after: Option<Instant> = None;
        while !self.cancel.is_cancelled() {
            let may_claim = claim_after.is_none_or(|at| Instant::now() >= at);
            if ready.len() < self.settings.concurrency && !drained && may_claim {
                let wanted = CLAIM_BATCH.saturating_sub(ready.len());
                match self.claim(wanted).await {
                    Ok(claimed) => {
                        retry.succeeded();
                        claim_after = None;
                        drained = claimed.len() < wanted;
                        ready.extend(claimed);
                    }
                    Err(error) => claim_after = Some(Instant::now() + retry.failed(&error)),
                }
            }
            if ready.is_empty() {
                if let Some(at) = claim_after {
                    // A new invocation was just stored: the store takes writes again.
                    tokio::select! {
                        () = self.cancel.cancelled() => {}
                        () = self.wake.notified() => claim_after = None,
                        () = tokio::time::sleep_until(at) => {}
                    }
                } else if drained {
                    let next_due = self.queue.next_due_us().await.ok().flatten();
                    self.idle(next_due.map(until)).await;
                    drained = false;
                }
                continue;
            }
            let (slot, unsettled) = tokio::select! {
                () = self.cancel.cancelled() => break,
                permits = self.permits() => permits,
            };
            let job = ready.pop_front().expect("checked above");
            let worker = self.clone();
            let span = tracing::info_span!("async_attempt", invocation_id = %job.id, function = %job.function, attempt = job.attempt);
            self.tasks.spawn(
                async move {
                    let result = worker.attempt(job, slot).await;
                    worker.store(result).await;
                    drop(unsettled);
                }
                .instrument(span),
            );
        }
        self.release(ready).await;
    }

    async fn claim(&self, limit: usize) -> Result<Vec<ClaimedInvocation>, String> {
        let limit = u32::try_from(limit).unwrap_or(u32::MAX);
        self.writer.claim(limit, self.settings.lease).await
    }

    /// Returns claimed invocations that never started to the queue, with no attempt counted.
    async fn release(&self, unstarted: VecDeque<ClaimedInvocation>) {
        if unstarted.is_empty() {
            return;
        }
        let now = now_micros();
        let results: Vec<AttemptResult> = unstarted
            .into_iter()
            .map(|job| AttemptResult {
                id: job.id,
                attempts: job.attempt.saturating_sub(1),
                settlement: Settlement::Postpone { at_us: now },
                response: None,
                error: None,
                at_us: now,
            })
            .collect();
        if let Err(error) = self.queue.settle(self.writer.owner(), &results).await {
            tracing::warn!(%error, unstarted = results.len(), "returning unstarted invocations failed; they are redelivered after the lease");
        }
    }

    /// Waits for new work, a due retry, the poll interval, or shutdown, whichever comes first.
    async fn idle(&self, due_in: Option<Duration>) {
        let wait = due_in.map_or(self.settings.poll_interval, |due| {
            due.min(self.settings.poll_interval)
        });
        tokio::select! {
            () = self.cancel.cancelled() => {}
            () = self.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }

    /// A room for one more unsettled result, then a free slot to run its attempt in.
    async fn permits(&self) -> (OwnedSemaphorePermit, OwnedSemaphorePermit) {
        let unsettled = self.unsettled.clone().acquire_owned().await;
        let slot = self.slots.clone().acquire_owned().await;
        (
            slot.expect("the semaphore is never closed"),
            unsettled.expect("the semaphore is never closed"),
        )
    }

    /// Runs one attempt in `slot`, freed as soon as the function has answered. The attempt
    /// counts from the moment the function is invoked.
    async fn attempt(&self, job: ClaimedInvocation, slot: OwnedSemaphorePermit) -> AttemptResult {
        let started = StartedAttempt {
            id: job.id.clone(),
            attempt: job.attempt,
        };
        let begins = || self.writer.started(started);
        let result =
            delivery::attempt(self.invoker.as_ref(), job, &self.settings.delivery, begins).await;
        drop(slot);
        tracing::debug!(settlement = ?result.settlement, "attempt finished");
        result
    }

    /// Stores an attempt's result; the writer keeps it until a cycle succeeds.
    async fn store(&self, result: AttemptResult) {
        if let Err(error) = self.writer.settle(result).await {
            tracing::debug!(%error, "an attempt's result was not stored; the invocation is redelivered after the next start");
        }
    }

    /// Keeps this worker's leases alive and returns dead workers' invocations to the queue,
    /// every third of the lease; after a failure it tries again sooner, backing off up to that.
    async fn heartbeat(self: Arc<Self>) {
        let period = self.settings.lease / 3;
        let mut retry = Retry::new("the async queue's heartbeat").capped_at(period);
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                () = self.cancel.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            wait = match self.beat().await {
                Ok(()) => {
                    retry.succeeded();
                    period
                }
                Err(error) => retry.failed(&error),
            };
        }
    }

    /// One heartbeat: extend this worker's leases first, so a heartbeat that was late cannot
    /// take this worker's own invocations for orphans.
    async fn beat(&self) -> Result<(), StoreError> {
        let now = now_micros();
        self.queue
            .extend_leases(
                self.writer.owner(),
                now.saturating_add(micros(self.settings.lease)),
            )
            .await?;
        let reclaimed = self.queue.reclaim_expired(now, now).await?;
        if reclaimed > 0 {
            tracing::info!(reclaimed, "requeued async invocations whose worker stopped");
            self.wake.notify_one();
        }
        for (namespace, pending) in self.queue.pending_by_namespace().await? {
            #[expect(clippy::cast_precision_loss, reason = "exact below 2^53")]
            metrics::gauge!(ASYNC_PENDING_METRIC, "namespace" => namespace.to_string())
                .set(pending as f64);
        }
        let window = micros(IDEMPOTENCY_WINDOW);
        self.queue
            .expire_idempotency_keys(now.saturating_sub(window))
            .await?;
        Ok(())
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

/// How long until `at_us`, zero if it has passed.
fn until(at_us: i64) -> Duration {
    Duration::from_micros(u64::try_from(at_us.saturating_sub(now_micros())).unwrap_or(0))
}
