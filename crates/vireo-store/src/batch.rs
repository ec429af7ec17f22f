//! Writes invocation records and log lines in the background, many per transaction, so the
//! invocation path never waits on the database.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vireo_core::backoff::Retry;
use vireo_core::{InvocationRecord, LogLine, Records};

/// Records per transaction: large enough to amortise the commit, small enough to keep the
/// single writer connection free for deploys.
const MAX_BATCH: usize = 512;
/// How long the writer lets records gather after the first one arrives. Hello under
/// `wrk -t1 -c32` served about 13 % more requests with it, at about 56 against 65 µs of server CPU
/// each (`BASELINE=281124c CANDIDATE=8114768 bench/compare.sh`); a record becomes readable that
/// much later.
const LINGER: Duration = Duration::from_millis(5);

#[expect(
    clippy::large_enum_variant,
    reason = "nearly every message is a record: boxing it would allocate once more per invocation"
)]
enum Message {
    Record(InvocationRecord, Vec<LogLine>),
    /// Answered once everything queued before it is committed.
    Flush(oneshot::Sender<()>),
}

/// The submitting side; clone it freely. The queue is unbounded because a bounded one would
/// either block invocations or drop records when the database is slow; records are small and
/// the writer drains them in large batches, so the queue only grows while the database is stuck.
#[derive(Debug, Clone)]
pub struct RecordWriter {
    queue: mpsc::UnboundedSender<Message>,
    committed: watch::Receiver<u64>,
}

/// The background task; it ends once every [`RecordWriter`] is dropped and the queue is written.
#[derive(Debug)]
pub struct RecordWriterTask {
    handle: JoinHandle<()>,
    /// Tells the task to stop retrying and drop what it could not write.
    give_up: CancellationToken,
}

impl RecordWriter {
    /// Starts the background task on the current tokio runtime.
    pub fn spawn(store: Arc<dyn Records>) -> (RecordWriter, RecordWriterTask) {
        let (queue, inbox) = mpsc::unbounded_channel();
        let (bump, committed) = watch::channel(0);
        let give_up = CancellationToken::new();
        let handle = tokio::spawn(run(store, inbox, bump, give_up.clone()));
        (
            RecordWriter { queue, committed },
            RecordWriterTask { handle, give_up },
        )
    }

    /// Queues a finished invocation and its log lines; never waits.
    pub fn submit(&self, record: InvocationRecord, logs: Vec<LogLine>) {
        if let Err(mpsc::error::SendError(Message::Record(record, _))) =
            self.queue.send(Message::Record(record, logs))
        {
            // Only possible if the task panicked: say so rather than lose the record silently.
            tracing::error!(invocation = %record.id, "record writer has stopped; invocation record dropped");
        }
    }

    /// Waits until everything submitted before this call is committed (or the task has died).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Message::Flush(done)).is_ok() {
            // An error means the task is gone; there is nothing left to wait for.
            let _ = wait.await;
        }
    }

    /// A counter bumped after each committed batch, so log followers wake on new lines instead
    /// of polling. It starts out seen; it closes when the task ends.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        let mut receiver = self.committed.clone();
        receiver.mark_unchanged();
        receiver
    }
}

impl RecordWriterTask {
    /// Waits for the task to write what is queued and stop; drop every [`RecordWriter`] first.
    /// Whatever the store has not taken by `deadline` is dropped, and the loss logged.
    pub async fn finish(mut self, deadline: Instant) {
        let finished = match tokio::time::timeout_at(deadline, &mut self.handle).await {
            Ok(finished) => finished,
            Err(_) => {
                self.give_up.cancel();
                self.handle.await
            }
        };
        if let Err(error) = finished {
            tracing::error!(%error, "record writer task failed");
        }
    }
}

async fn run(
    store: Arc<dyn Records>,
    mut inbox: mpsc::UnboundedReceiver<Message>,
    committed: watch::Sender<u64>,
    give_up: CancellationToken,
) {
    let mut messages = Vec::with_capacity(MAX_BATCH);
    let (mut records, mut logs, mut flushes) = (Vec::new(), Vec::new(), Vec::new());
    let mut retry = Retry::new("writing invocation records");
    let (mut lost_records, mut lost_logs) = (0, 0);
    let mut closing = false;
    loop {
        let received = tokio::select! {
            // Returns 0 only once every sender is gone (or it is closed) and the queue is empty.
            received = inbox.recv_many(&mut messages, MAX_BATCH) => received,
            // Giving up: take nothing new, and go through what is queued without waiting.
            () = give_up.cancelled(), if !closing => {
                closing = true;
                inbox.close();
                continue;
            }
        };
        if received == 0 {
            break;
        }
        // A moment's wait gathers many more records under load: the commit and the hand-offs
        // to SQLite's thread are paid per batch, and senders don't wake a writer that sleeps.
        if messages.len() < MAX_BATCH {
            tokio::time::sleep(LINGER).await;
            while messages.len() < MAX_BATCH
                && let Ok(message) = inbox.try_recv()
            {
                messages.push(message);
            }
        }
        for message in messages.drain(..) {
            match message {
                Message::Record(record, record_logs) => {
                    records.push(record);
                    logs.extend(record_logs);
                }
                Message::Flush(done) => flushes.push(done),
            }
        }
        if !records.is_empty() {
            if write(store.as_ref(), &records, &logs, &mut retry, &give_up).await {
                committed.send_modify(|batches| *batches += 1);
            } else {
                lost_records += records.len();
                lost_logs += logs.len();
            }
            records.clear();
            logs.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
    if lost_records > 0 {
        tracing::error!(
            "{lost_records} invocation records and {lost_logs} log lines were not stored: the store kept failing until the shutdown deadline"
        );
    }
}

/// Retries with backoff until the batch is written, or until told to give up (at shutdown);
/// true if it was written. Records are only lost that way or if the process dies meanwhile.
async fn write(
    store: &dyn Records,
    records: &[InvocationRecord],
    logs: &[LogLine],
    retry: &mut Retry,
    give_up: &CancellationToken,
) -> bool {
    loop {
        let written = tokio::select! {
            written = store.record_invocations(records, logs) => written,
            () = give_up.cancelled() => return false,
        };
        match written {
            Ok(()) => {
                retry.succeeded();
                return true;
            }
            Err(error) => {
                if !retry.pause_after(&error, give_up.cancelled()).await {
                    return false;
                }
            }
        }
    }
}
