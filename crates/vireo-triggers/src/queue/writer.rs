//! The queue writer: one task that turns everything waiting to be written to the async queue
//! (new invocations, attempt results, and the worker's request for more work) into one store
//! cycle, so a busy queue pays one transaction and one fsync for all of it. Whatever arrives
//! while a cycle is being written goes into the next one (group commit).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};
use vireo_core::time::now_micros;
use vireo_core::{
    AsyncSubmitter, AttemptResult, ClaimRequest, ClaimedInvocation, Enqueued, InvocationId,
    NewAsyncInvocation, Queue, QueueCycle, StoreError,
};

/// Most requests written in one cycle.
const MAX_CYCLE: usize = 1024;

type Reply<T> = oneshot::Sender<Result<T, String>>;

enum Request {
    Accept(NewAsyncInvocation, Reply<Enqueued>),
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

    /// Stores an attempt's result in the next cycle.
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
            .map_err(StoreError::Backend)?;
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
    while receiver.recv_many(&mut requests, MAX_CYCLE).await > 0 {
        let mut gathered = Gathered::default();
        for request in requests.drain(..) {
            gathered.add(request);
        }
        let cycle = QueueCycle {
            owner: &owner,
            settle: &gathered.settle,
            accept: &gathered.accept,
            max_pending,
            claim: gathered.claim(),
        };
        // The callers may have given up waiting; what they sent was written all the same.
        match queue.cycle(&cycle).await {
            Ok(outcome) => {
                for (reply, enqueued) in gathered.accepted.into_iter().zip(outcome.accepted) {
                    let _ = reply.send(Ok(enqueued));
                }
                for reply in gathered.settled {
                    let _ = reply.send(Ok(()));
                }
                let mut claimed = outcome.claimed.into_iter();
                for (limit, reply) in gathered.claims {
                    let _ = reply.send(Ok(claimed.by_ref().take(limit as usize).collect()));
                }
            }
            Err(error) => {
                // One transaction: every request of the cycle failed the same way.
                let message = error.to_string();
                for reply in gathered.accepted {
                    let _ = reply.send(Err(message.clone()));
                }
                for reply in gathered.settled {
                    let _ = reply.send(Err(message.clone()));
                }
                for (_, reply) in gathered.claims {
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
    }
}
