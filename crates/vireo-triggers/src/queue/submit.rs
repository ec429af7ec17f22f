//! Accepting async invocations: concurrent submissions are gathered into one durable commit,
//! and the workers are woken for what was accepted.

use std::sync::Arc;

use tokio::sync::Notify;
use vireo_core::{AsyncSubmitter, Enqueued, NewAsyncInvocation, Queue, StoreError};

use crate::batcher::Batcher;

#[derive(Clone)]
pub struct Submitter {
    batcher: Batcher<NewAsyncInvocation, Result<Enqueued, String>>,
    wake: Arc<Notify>,
}

impl Submitter {
    /// `max_pending` bounds the queued and running invocations of each namespace; `wake` is
    /// notified when something was accepted.
    pub fn spawn(
        queue: Arc<dyn Queue>,
        max_pending: u64,
        wake: Arc<Notify>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (batcher, task) = Batcher::spawn(move |batch: Vec<NewAsyncInvocation>| {
            let queue = queue.clone();
            async move {
                match queue.enqueue(&batch, max_pending).await {
                    Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
                    // One transaction: every item of the batch failed the same way.
                    Err(StoreError::Backend(message)) => vec![Err(message); batch.len()],
                    Err(error) => vec![Err(error.to_string()); batch.len()],
                }
            }
        });
        (Self { batcher, wake }, task)
    }
}

#[async_trait::async_trait]
impl AsyncSubmitter for Submitter {
    async fn submit(&self, invocation: NewAsyncInvocation) -> Result<Enqueued, StoreError> {
        let outcome = self
            .batcher
            .call(invocation)
            .await
            .map_err(|stopped| StoreError::Backend(stopped.to_string()))?
            .map_err(StoreError::Backend)?;
        if outcome == Enqueued::Accepted {
            self.wake.notify_one();
        }
        Ok(outcome)
    }
}
