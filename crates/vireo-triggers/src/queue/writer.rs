//! The queue writer: one task that turns everything waiting to be written to the async queue
//! (new invocations, attempts that began, attempt results, and the worker's request for more
//! work) into one store cycle, so a busy queue pays one transaction and one fsync for all of it.
//! Whatever arrives while a cycle is being written goes into the next one (group commit).
//!
//! When a cycle fails, its new invocations and claims fail with it (their callers answer or
//! retry), but started attempts and results are kept and written with the next cycle, tried
//! again with backoff: the work they record is done, and dropping them would leave their
//! invocations running under leases this server keeps extending.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use vireo_core::backoff::Retry;
use vireo_core::time::now_micros;
use vireo_core::{
    AsyncSubmitter, AttemptResult, ClaimRequest, ClaimedInvocation, CycleOutcome, Enqueued,
    InvocationId, NewAsyncInvocation, Queue, QueueCycle, StartedAttempt, StoreError,
};

/// Most requests written in one cycle.
const MAX_CYCLE: usize = 1024;

type Reply<T> = oneshot::Sender<Result<T, String>>;

enum Request {
    Accept(NewAsyncInvocation, Reply<Enqueued>),
    Started(StartedAttempt),
    Settle(AttemptResult, Reply<()>),
    Claim {
        limit: u32,
        lease: Duration,
        reply: Reply<Vec<ClaimedInvocation>>,
    },
}

/// A handle to the writer task; cheap to clone. The task ends once every handle is dropped
/// and what was sent is written.
#[derive(Clone)]
pub struct QueueWriter {
    sender: mpsc::UnboundedSender<Request>,
    owner: Arc<str>,
    wake: Arc<Notify>,
}

/// The writer task stopped (the server is shutting down) before answering.
const STOPPED: &str = "the async queue writer has stopped";

impl QueueWriter {
    /// Starts the task. It settles and claims as a new worker identity (see
    /// [`QueueWriter::owner`]); `max_pending` bounds the queued and running invocations of each
    /// namespace; `wake` is notified when something was accepted.
    pub fn spawn(
        queue: Arc<dyn Queue>,
        max_pending: u64,
        wake: Arc<Notify>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let owner: Arc<str> = format!("worker-{}", InvocationId::generate()).into();
        let (sender, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(queue, owner.clone(), max_pending, receiver));
        (
            Self {
                sender,
                owner,
                wake,
            },
            task,
        )
    }

    /// The lease owner this writer's claims and settlements act for.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Counts an attempt that has begun, in the next cycle; does not wait for it.
    pub fn started(&self, attempt: StartedAttempt) {
        if self.sender.send(Request::Started(attempt)).is_err() {
            tracing::debug!("{STOPPED}: a started attempt is not counted");
        }
    }

    /// Stores an attempt's result in the next cycle that succeeds; fails only if the writer
    /// stops first.
    pub async fn settle(&self, result: AttemptResult) -> Result<(), String> {
        self.call(|reply| Request::Settle(result, reply)).await
    }

    /// Claims up to `limit` due invocations in the next cycle, leased for `lease`.
    pub async fn claim(
        &self,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<ClaimedInvocation>, String> {
        self.call(|reply| Request::Claim {
            limit,
            lease,
            reply,
        })
        .await
    }

    async fn call<T>(&self, request: impl FnOnce(Reply<T>) -> Request) -> Result<T, String> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(request(reply))
            .map_err(|_| STOPPED.to_string())?;
        answer.await.map_err(|_| STOPPED.to_string())?
    }
}

#[async_trait::async_trait]
impl AsyncSubmitter for QueueWriter {
    async fn submit(&self, invocation: NewAsyncInvocation) -> Result<Enqueued, StoreError> {
        let outcome = self
            .call(|reply| Request::Accept(invocation, reply))
            .await
            .map_err(|stopped| {
                StoreError::unavailable("submitting an async invocation", stopped)
            })?;
        if outcome == Enqueued::Accepted {
            self.wake.notify_one();
        }
        Ok(outcome)
    }
}

/// One cycle's worth of requests, split by kind, each with the replies it owes.
#[derive(Default)]
struct Gathered {
    accept: Vec<NewAsyncInvocation>,
    accepted: Vec<Reply<Enqueued>>,
    started: Vec<StartedAttempt>,
    settle: Vec<AttemptResult>,
    settled: Vec<Reply<()>>,
    claims: Vec<(u32, Reply<Vec<ClaimedInvocation>>)>,
    lease: Duration,
}

impl Gathered {
    fn add(&mut self, request: Request) {
        match request {
            Request::Accept(invocation, reply) => {
                self.accept.push(invocation);
                self.accepted.push(reply);
            }
            Request::Started(attempt) => self.started.push(attempt),
            Request::Settle(result, reply) => {
                self.settle.push(result);
                self.settled.push(reply);
            }
            Request::Claim {
                limit,
                lease,
                reply,
            } => {
                self.claims.push((limit, reply));
                self.lease = self.lease.max(lease);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.accept.is_empty()
            && self.started.is_empty()
            && self.settle.is_empty()
            && self.claims.is_empty()
    }

    /// Answers the requests of a cycle that was written.
    fn succeeded(self, outcome: CycleOutcome) {
        for (reply, enqueued) in self.accepted.into_iter().zip(outcome.accepted) {
            let _ = reply.send(Ok(enqueued));
        }
        for reply in self.settled {
            let _ = reply.send(Ok(()));
        }
        let mut claimed = outcome.claimed.into_iter();
        for (limit, reply) in self.claims {
            let _ = reply.send(Ok(claimed.by_ref().take(limit as usize).collect()));
        }
    }

    /// Fails the new invocations and claims of a cycle that was not written, and returns what
    /// must be written all the same: the started attempts and the results.
    fn failed(self, error: &str) -> Gathered {
        for reply in self.accepted {
            let _ = reply.send(Err(error.to_string()));
        }
        for (_, reply) in self.claims {
            let _ = reply.send(Err(error.to_string()));
        }
        Gathered {
            started: self.started,
            settle: self.settle,
            settled: self.settled,
            ..Gathered::default()
        }
    }

    fn claim(&self) -> Option<ClaimRequest> {
        if self.claims.is_empty() {
            return None;
        }
        let now_us = now_micros();
        let lease = i64::try_from(self.lease.as_micros()).unwrap_or(i64::MAX);
        Some(ClaimRequest {
            now_us,
            lease_until_us: now_us.saturating_add(lease),
            limit: self.claims.iter().map(|(limit, _)| *limit).sum(),
        })
    }
}

async fn run(
    queue: Arc<dyn Queue>,
    owner: Arc<str>,
    max_pending: u64,
    mut receiver: mpsc::UnboundedReceiver<Request>,
) {
    let mut requests = Vec::with_capacity(MAX_CYCLE);
    let mut retry = Retry::new("writing the async queue");
    // Started attempts and results of failed cycles, and how long to wait before retrying them
    // when nothing new arrives.
    let mut kept = Gathered::default();
    let mut backoff: Option<Duration> = None;
    let mut closed = false;
    loop {
        if !closed {
            closed = match backoff {
                None => receiver.recv_many(&mut requests, MAX_CYCLE).await == 0,
                Some(delay) => tokio::select! {
                    received = receiver.recv_many(&mut requests, MAX_CYCLE) => received == 0,
                    () = tokio::time::sleep(delay) => false,
                },
            };
        } else if let Some(delay) = backoff {
            tokio::time::sleep(delay).await;
        }
        if closed && kept.is_empty() {
            return;
        }
        let mut gathered = std::mem::take(&mut kept);
        for request in requests.drain(..) {
            gathered.add(request);
        }
        if gathered.is_empty() {
            continue;
        }
        let cycle = QueueCycle {
            owner: &owner,
            started: &gathered.started,
            settle: &gathered.settle,
            accept: &gathered.accept,
            max_pending,
            claim: gathered.claim(),
        };
        // The callers may have given up waiting; what they sent was written all the same.
        match queue.cycle(&cycle).await {
            Ok(outcome) => {
                retry.succeeded();
                backoff = None;
                gathered.succeeded(outcome);
            }
            Err(error) => {
                let delay = retry.failed(&error);
                kept = gathered.failed(&error.to_string());
                backoff = (!kept.is_empty()).then_some(delay);
            }
        }
    }
}
