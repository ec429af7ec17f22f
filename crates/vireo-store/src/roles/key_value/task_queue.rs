//! The queue in front of a task that answers requests in batches: the reader's and the writer's.

use std::fmt;
use std::sync::OnceLock;

use tokio::sync::{mpsc, oneshot};
use vireo_core::{KvStoreId, StoreError};

/// Requests waiting for the task; past this, callers wait to hand theirs over.
const QUEUE_LENGTH: usize = 1024;

/// A request for one store, and where its answer goes.
pub(super) struct Asked<Q, A> {
    pub(super) store: KvStoreId,
    pub(super) request: Q,
    pub(super) reply: oneshot::Sender<Result<A, StoreError>>,
}

/// The queue to a store handle's task, which the first request starts.
pub(super) struct TaskQueue<Q, A>(OnceLock<mpsc::Sender<Asked<Q, A>>>);

impl<Q: Send + 'static, A: Send + 'static> TaskQueue<Q, A> {
    /// Hands `request` to the task (`start` runs it on the first call) and waits for its
    /// answer; `doing` names the work in the error when the task has stopped.
    pub(super) async fn ask<F>(
        &self,
        start: impl FnOnce(mpsc::Receiver<Asked<Q, A>>) -> F,
        store: &KvStoreId,
        request: Q,
        doing: &'static str,
    ) -> Result<A, StoreError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let queue = self.0.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE_LENGTH);
            tokio::spawn(start(receiver));
            sender
        });
        let stopped = || StoreError::unavailable(doing, "the store's key-value task has stopped");
        let (reply, answer) = oneshot::channel();
        let asked = Asked {
            store: store.clone(),
            request,
            reply,
        };
        queue.send(asked).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl<Q, A> Default for TaskQueue<Q, A> {
    fn default() -> Self {
        Self(OnceLock::new())
    }
}

impl<Q, A> fmt::Debug for TaskQueue<Q, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let started = self.0.get().is_some();
        f.debug_struct("TaskQueue")
            .field("started", &started)
            .finish()
    }
}
