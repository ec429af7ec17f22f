//! One source's runner on this node: connect, then receive, accept into the queue, and
//! acknowledge what the commit stored, until cancelled. Every kind runs through this loop, so
//! every kind has the same guarantee: a message is acknowledged to its broker only after the
//! queue's commit holds it (or held it already: a duplicate by its idempotency key).
//!
//! Backpressure: a namespace with as many async invocations queued or running as the queue
//! allows refuses further ones; the refused messages are released to the broker, which keeps
//! them, and the runner waits (doubling up to a few seconds) before it pulls again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use vireo_core::backoff::{Backoff, FIRST_DELAY, MAX_DELAY};
use vireo_core::time::now_micros;
use vireo_core::{AsyncSubmitter, Enqueued, SecretOpener, Source};

use super::status::Tracker;
use super::{ConnectOptions, Connector, Message, Receiver, SourceError, message};

/// How often the broker is asked for the lag.
const LAG_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait before reconnecting to a broker that failed.
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(10);

pub(crate) struct Runner {
    pub source: Source,
    pub connector: Arc<dyn Connector>,
    pub secrets: Arc<dyn SecretOpener>,
    pub submitter: Arc<dyn AsyncSubmitter>,
    pub options: ConnectOptions,
    pub tracker: Tracker,
}

impl Runner {
    /// Runs until `cancel`; a failure is reported as the source's state and retried with
    /// backoff, so a broker that comes back is read again by itself.
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let mut reconnect = Backoff::new(FIRST_DELAY, MAX_RECONNECT_DELAY);
        loop {
            let failure = tokio::select! {
                () = cancel.cancelled() => return,
                connected = self.connect() => match connected {
                    Ok(mut receiver) => {
                        self.tracker.running();
                        reconnect.reset();
                        match self.pump(receiver.as_mut(), &cancel).await {
                            Ok(()) => return,
                            Err(error) => error.0,
                        }
                    }
                    Err(error) => error,
                },
            };
            self.tracker.failing(&failure);
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(reconnect.next_delay()) => {}
            }
        }
    }

    async fn connect(&self) -> Result<Box<dyn Receiver>, String> {
        let source = &self.source;
        let password = match &source.spec.password_secret {
            Some(secret) => Some(
                self.secrets
                    .open_secret(&source.namespace, secret)
                    .await
                    .map_err(|e| format!("opening the password secret: {e}"))?,
            ),
            None => None,
        };
        self.connector
            .connect(source, password.as_ref(), &self.options)
            .await
            .map_err(|e| e.to_string())
    }

    /// Receives and stores until cancelled (`Ok`) or the broker or the store fails.
    async fn pump(
        &self,
        receiver: &mut dyn Receiver,
        cancel: &CancellationToken,
    ) -> Result<(), SourceError> {
        let mut refusals = Backoff::new(FIRST_DELAY, MAX_DELAY);
        let mut lag_read = None::<Instant>;
        loop {
            if lag_read.is_none_or(|at| at.elapsed() >= LAG_INTERVAL) {
                self.tracker.lag(receiver.lag().await?);
                lag_read = Some(Instant::now());
            }
            let messages = tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                received = receiver.receive(self.source.spec.batch_size) => received?,
            };
            if messages.is_empty() {
                continue;
            }
            self.tracker.count("received", messages.len());
            // The batch is finished even when cancelled now: what is stored gets acknowledged.
            let stored = self.store(messages).await;
            // One acknowledgement of both, so a broker that wants them in order gets that.
            let acknowledged = [stored.kept.as_slice(), stored.filtered.as_slice()].concat();
            receiver.acknowledge(&acknowledged).await?;
            self.tracker.count("acknowledged", stored.kept.len());
            self.tracker.count("filtered", stored.filtered.len());
            self.tracker.count("duplicate", stored.duplicates);
            if !stored.refused.is_empty() {
                receiver.release(&stored.refused).await?;
                self.tracker.count("refused", stored.refused.len());
            }
            if let Some(error) = stored.error {
                return Err(SourceError(error));
            }
            if stored.refused.is_empty() {
                refusals.reset();
            } else {
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(refusals.next_delay()) => {}
                }
            }
        }
    }

    /// Submits every message the filter lets through at once, so the queue writer commits them
    /// together.
    async fn store(&self, messages: Vec<Message>) -> Stored {
        let now = now_micros();
        let mut submissions = JoinSet::new();
        let mut stored = Stored::default();
        let filter = self.source.spec.filter.as_ref();
        for message in messages {
            let id = message.id.clone();
            if filter.is_some_and(|filter| !filter.matches(&message.body)) {
                stored.filtered.push(id);
                continue;
            }
            let invocation = message::invocation(&self.source, message, now);
            let submitter = self.submitter.clone();
            submissions.spawn(async move { (id, submitter.submit(invocation).await) });
        }
        while let Some(joined) = submissions.join_next().await {
            let Ok((id, outcome)) = joined else {
                // A submission that panicked stored nothing we know of: redelivered later.
                continue;
            };
            match outcome {
                Ok(Enqueued::Accepted) => stored.kept.push(id),
                Ok(Enqueued::Duplicate(_)) => {
                    stored.duplicates += 1;
                    stored.kept.push(id);
                }
                Ok(Enqueued::QueueFull { .. }) => stored.refused.push(id),
                Ok(Enqueued::FunctionNotFound) => {
                    stored.refused.push(id);
                    stored.error = Some(format!(
                        "function {} does not exist; messages stay at the broker",
                        self.source.function
                    ));
                }
                Err(error) => {
                    stored.refused.push(id);
                    stored.error = Some(format!("storing messages in the queue: {error}"));
                }
            }
        }
        stored
    }
}

/// What became of one batch.
#[derive(Default)]
struct Stored {
    /// Held by the queue: to acknowledge.
    kept: Vec<String>,
    /// Not for the function (its body did not match the filter): to acknowledge.
    filtered: Vec<String>,
    duplicates: usize,
    /// Not stored: to release to the broker.
    refused: Vec<String>,
    /// A failure that ends this connection (the store, or the function gone).
    error: Option<String>,
}
