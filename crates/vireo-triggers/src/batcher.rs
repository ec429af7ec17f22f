//! Group commit: concurrent callers hand items to one task that writes whatever has gathered as
//! a single batch, so a burst of N requests costs one transaction (and one fsync), not N.

use std::future::Future;

use tokio::sync::{mpsc, oneshot};

/// Most items written in one batch.
const MAX_BATCH: usize = 1024;

type Request<T, R> = (T, oneshot::Sender<R>);

/// A handle to a batching task; cheap to clone.
pub struct Batcher<T, R> {
    sender: mpsc::UnboundedSender<Request<T, R>>,
}

impl<T, R> Clone for Batcher<T, R> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
        }
    }
}

/// The batch task stopped (the server is shutting down) before answering.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the batch writer has stopped")]
pub struct Stopped;

impl<T: Send + 'static, R: Send + 'static> Batcher<T, R> {
    /// Spawns the task. `write` gets every gathered item and must return one result per item,
    /// in order. The task ends when every handle is dropped and the queue is drained.
    pub fn spawn<F, Fut>(write: F) -> (Self, tokio::task::JoinHandle<()>)
    where
        F: Fn(Vec<T>) -> Fut + Send + 'static,
        Fut: Future<Output = Vec<R>> + Send,
    {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Request<T, R>>();
        let task = tokio::spawn(async move {
            let mut gathered = Vec::new();
            while receiver.recv_many(&mut gathered, MAX_BATCH).await > 0 {
                let (items, replies): (Vec<T>, Vec<oneshot::Sender<R>>) =
                    gathered.drain(..).unzip();
                for (reply, result) in replies.into_iter().zip(write(items).await) {
                    // The caller may have given up waiting; its item was written all the same.
                    let _ = reply.send(result);
                }
            }
        });
        (Self { sender }, task)
    }

    /// Adds `item` to the next batch and waits for its result.
    pub async fn call(&self, item: T) -> Result<R, Stopped> {
        let (reply, result) = oneshot::channel();
        self.sender.send((item, reply)).map_err(|_| Stopped)?;
        result.await.map_err(|_| Stopped)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_calls_share_batches_and_get_their_own_results() {
        let batches = Arc::new(AtomicUsize::new(0));
        let counted = batches.clone();
        let (batcher, task) = Batcher::spawn(move |items: Vec<u32>| {
            counted.fetch_add(1, Ordering::Relaxed);
            async move {
                // Long enough for the other callers to queue behind the first batch.
                tokio::task::yield_now().await;
                items.into_iter().map(|n| n * 10).collect::<Vec<_>>()
            }
        });
        let calls: Vec<_> = (0..100)
            .map(|n| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.call(n).await.unwrap() })
            })
            .collect();
        for (n, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.unwrap(), n as u32 * 10);
        }
        assert!(batches.load(Ordering::Relaxed) < 100);
        drop(batcher);
        task.await.unwrap();
    }
}
