//! One source's runner on this node: connect, then receive, accept into the queue, and
//! acknowledge what the commit stored, until cancelled. Every kind runs through this loop, so
//! every kind has the same guarantee: a message is acknowledged to its broker only after the
//! queue's commit holds it (or held it already: a duplicate by its idempotency key).
//!
//! A batching source (`batch_window_ms`) gathers up to `batch_size` messages for at most the
//! window and delivers them as one invocation; the batch is acknowledged when that invocation
//! is committed, and released whole when the queue refuses it.
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
use super::{
    ConnectOptions, Connector, MAX_MESSAGE_BYTES, Message, Receiver, SourceError, message,
};

/// How often the broker is asked for the lag.
const LAG_INTERVAL: Duration = Duration::from_secs(1);
/// Most payload bytes one batch delivery gathers: as many as one message may have.
const MAX_BATCH_BYTES: usize = MAX_MESSAGE_BYTES;
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
            let messages = match self.source.spec.batch_window_ms {
                Some(window) => {
                    let window = Duration::from_millis(u64::from(window));
                    self.gather(receiver, messages, window, cancel).await?
                }
                None => messages,
            };
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

    /// Batching: adds to the batch begun with `messages` until it is full or `window` has passed
    /// since it began (overshot by at most one receive's wait for messages).
    async fn gather(
        &self,
        receiver: &mut dyn Receiver,
        mut messages: Vec<Message>,
        window: Duration,
        cancel: &CancellationToken,
    ) -> Result<Vec<Message>, SourceError> {
        let began = Instant::now();
        let full = self.source.spec.batch_size as usize;
        while messages.len() < full && began.elapsed() < window && !cancel.is_cancelled() {
            let wanted = u32::try_from(full - messages.len()).unwrap_or(u32::MAX);
            messages.extend(receiver.receive(wanted).await?);
        }
        Ok(messages)
    }

    /// Submits every message the filter lets through at once (alone, or in batches when the
    /// source batches), so the queue writer commits them together. A message over
    /// [`MAX_MESSAGE_BYTES`] is not submitted: it is released, and ends the connection.
    async fn store(&self, messages: Vec<Message>) -> Stored {
        let now = now_micros();
        let mut submissions = JoinSet::new();
        let mut stored = Stored::default();
        let (messages, oversized): (Vec<Message>, Vec<Message>) = messages
            .into_iter()
            .partition(|message| message.body.len() <= MAX_MESSAGE_BYTES);
        if let Some(first) = oversized.first() {
            stored.error = Some(too_large(first));
            stored.refused = oversized.into_iter().map(|message| message.id).collect();
        }
        let filter = self.source.spec.filter.as_ref();
        let (passed, filtered): (Vec<Message>, Vec<Message>) = messages
            .into_iter()
            .partition(|message| filter.is_none_or(|filter| filter.matches(&message.body)));
        stored.filtered = filtered.into_iter().map(|message| message.id).collect();
        let deliveries = match self.source.spec.batch_window_ms {
            Some(_) => batches(passed, self.source.spec.batch_size as usize),
            None => passed.into_iter().map(|message| vec![message]).collect(),
        };
        for delivery in deliveries {
            let ids: Vec<String> = delivery.iter().map(|message| message.id.clone()).collect();
            let invocation = match self.source.spec.batch_window_ms {
                Some(_) => message::batch_invocation(&self.source, delivery, now),
                None => {
                    let single = delivery.into_iter().next().expect("one message each");
                    message::invocation(&self.source, single, now)
                }
            };
            let submitter = self.submitter.clone();
            submissions.spawn(async move { (ids, submitter.submit(invocation).await) });
        }
        while let Some(joined) = submissions.join_next().await {
            let Ok((ids, outcome)) = joined else {
                // A submission that panicked stored nothing we know of: redelivered later.
                continue;
            };
            match outcome {
                Ok(Enqueued::Accepted) => stored.kept.extend(ids),
                Ok(Enqueued::Duplicate(_)) => {
                    stored.duplicates += ids.len();
                    stored.kept.extend(ids);
                }
                Ok(Enqueued::QueueFull { .. }) => stored.refused.extend(ids),
                Ok(Enqueued::FunctionNotFound) => {
                    stored.refused.extend(ids);
                    stored.error = Some(format!(
                        "function {} does not exist; messages stay at the broker",
                        self.source.function
                    ));
                }
                Err(error) => {
                    stored.refused.extend(ids);
                    stored.error = Some(format!("storing messages in the queue: {error}"));
                }
            }
        }
        stored
    }
}

/// Why the source stops at a message over [`MAX_MESSAGE_BYTES`]: it is released, never
/// acknowledged, so the broker keeps it and offers it again after the reconnect.
fn too_large(message: &Message) -> String {
    format!(
        "message {} of {} is {} bytes, over the {MAX_MESSAGE_BYTES} bytes of payload a source \
         delivers; it stays at the broker unacknowledged and is received again at each \
         reconnect: remove it there",
        message.id,
        message.subject,
        message.body.len()
    )
}

/// `messages` in order, in batches of at most `size` messages and about [`MAX_BATCH_BYTES`] of
/// payload (a larger message goes alone).
fn batches(messages: Vec<Message>, size: usize) -> Vec<Vec<Message>> {
    let mut batches: Vec<Vec<Message>> = Vec::new();
    let mut bytes = 0;
    for message in messages {
        let full = batches.last().is_none_or(|batch| {
            batch.len() >= size || bytes + message.body.len() > MAX_BATCH_BYTES
        });
        if full {
            batches.push(Vec::new());
            bytes = 0;
        }
        bytes += message.body.len();
        batches.last_mut().expect("one was pushed").push(message);
    }
    batches
}

/// What became of one receive.
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn sized(id: usize, bytes: usize) -> Message {
        Message {
            id: id.to_string(),
            subject: "s".to_string(),
            body: Bytes::from(vec![b'x'; bytes]),
            content_type: "application/octet-stream",
            headers: Vec::new(),
        }
    }

    fn ids(batches: &[Vec<Message>]) -> Vec<Vec<&str>> {
        batches
            .iter()
            .map(|batch| batch.iter().map(|m| m.id.as_str()).collect())
            .collect()
    }

    #[test]
    fn batches_keep_the_order_and_hold_at_most_their_size_and_bytes() {
        let small: Vec<Message> = (0..5).map(|n| sized(n, 10)).collect();
        assert_eq!(
            ids(&batches(small, 2)),
            [vec!["0", "1"], vec!["2", "3"], vec!["4"]]
        );
        let half = MAX_BATCH_BYTES / 2;
        let large = vec![
            sized(0, half),
            sized(1, half),
            sized(2, 1),
            sized(3, MAX_BATCH_BYTES + 1),
            sized(4, 1),
        ];
        assert_eq!(
            ids(&batches(large, 100)),
            [vec!["0", "1"], vec!["2"], vec!["3"], vec!["4"]]
        );
    }
}
