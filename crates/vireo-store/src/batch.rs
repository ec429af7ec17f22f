//! Writes invocation records and log lines in the background, many per transaction, so the
//! invocation path never waits on the database.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use vireo_core::{InvocationRecord, LogLine, Store};

/// Records per transaction: large enough to amortise the commit, small enough to keep the
/// single writer connection free for deploys.
const MAX_BATCH: usize = 512;
/// How long the writer lets records gather after the first one arrives. Hello under
/// `wrk -t1 -c32` served about 13 % more requests with it, at about 56 against 65 µs of server CPU
/// each (`BASELINE=281124c CANDIDATE=8114768 bench/compare.sh`); a record becomes readable that
/// much later.
const LINGER: Duration = Duration::from_millis(5);
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

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
}

impl RecordWriter {
    /// Starts the background task on the current tokio runtime.
    pub fn spawn(store: Arc<dyn Store>) -> (RecordWriter, RecordWriterTask) {
        let (queue, inbox) = mpsc::unbounded_channel();
        let (bump, committed) = watch::channel(0);
        let handle = tokio::spawn(run(store, inbox, bump));
        (
            RecordWriter { queue, committed },
            RecordWriterTask { handle },
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
    /// While the store keeps failing this keeps retrying, so bound it with a timeout at shutdown.
    pub async fn finish(self) {
        if let Err(error) = self.handle.await {
            tracing::error!(%error, "record writer task failed");
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    mut inbox: mpsc::UnboundedReceiver<Message>,
    committed: watch::Sender<u64>,
) {
    let mut messages = Vec::with_capacity(MAX_BATCH);
    let (mut records, mut logs, mut flushes) = (Vec::new(), Vec::new(), Vec::new());
    // Returns 0 only once every sender is gone and the queue is empty.
    while inbox.recv_many(&mut messages, MAX_BATCH).await > 0 {
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
            write(store.as_ref(), &records, &logs).await;
            committed.send_modify(|batches| *batches += 1);
            records.clear();
            logs.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Retries until the batch is written: records are only lost if the process dies meanwhile.
async fn write(store: &dyn Store, records: &[InvocationRecord], logs: &[LogLine]) {
    let mut backoff = FIRST_BACKOFF;
    while let Err(error) = store.record_invocations(records, logs).await {
        tracing::error!(
            %error,
            records = records.len(),
            logs = logs.len(),
            retry_in = ?backoff,
            "writing invocation records failed"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
