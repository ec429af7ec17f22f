//! Keeps one runner per running source on this node: it rereads the sources every poll
//! interval and starts, stops or restarts runners to match (paused, deleted and changed
//! sources), so every node follows the store without a message between nodes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vireo_core::backoff::Retry;
use vireo_core::{AsyncSubmitter, Name, SecretOpener, Source, SourceStore};

use super::runner::Runner;
use super::{ConnectOptions, Kinds, Statuses};

#[derive(Debug, Clone, Copy)]
pub struct SourceSettings {
    /// How often the sources are reread.
    pub poll: Duration,
    /// A message pending this long at another consumer is taken over (its node died).
    pub claim_idle: Duration,
}

/// What the runners are given.
pub struct Parts {
    pub store: Arc<dyn SourceStore>,
    pub secrets: Arc<dyn SecretOpener>,
    pub submitter: Arc<dyn AsyncSubmitter>,
    pub kinds: Arc<Kinds>,
    pub statuses: Statuses,
    /// This node's consumer name at the brokers.
    pub consumer: String,
}

struct Running {
    source: Source,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Runs until `cancel`, then stops every runner (each finishes the batch it is storing).
pub async fn run(parts: Parts, settings: SourceSettings, cancel: CancellationToken) {
    let mut running: HashMap<(Name, Name), Running> = HashMap::new();
    let mut retry = Retry::new("reading the event sources");
    loop {
        match parts.store.all_sources().await {
            Ok(sources) => {
                retry.succeeded();
                reconcile(&parts, &settings, &mut running, sources).await;
            }
            Err(error) => {
                retry.failed(&error);
            }
        }
        tokio::select! {
            () = cancel.cancelled() => break,
            () = tokio::time::sleep(settings.poll) => {}
        }
    }
    for (_, runner) in running.drain() {
        runner.stop().await;
    }
}

async fn reconcile(
    parts: &Parts,
    settings: &SourceSettings,
    running: &mut HashMap<(Name, Name), Running>,
    sources: Vec<Source>,
) {
    let wanted: HashMap<(Name, Name), Source> = sources
        .into_iter()
        .filter(|source| !source.paused)
        .map(|source| ((source.namespace.clone(), source.name.clone()), source))
        .collect();
    let stale: Vec<_> = running
        .iter()
        .filter(|(key, runner)| wanted.get(*key) != Some(&runner.source))
        .map(|(key, _)| key.clone())
        .collect();
    for key in stale {
        if let Some(runner) = running.remove(&key) {
            tracing::info!(namespace = %key.0, source = %key.1, "source stopped");
            runner.stop().await;
        }
    }
    for (key, source) in wanted {
        if running.contains_key(&key) {
            continue;
        }
        tracing::info!(namespace = %key.0, source = %key.1, kind = %source.spec.kind, "source started");
        let cancel = CancellationToken::new();
        let runner = Runner {
            source: source.clone(),
            connector: parts.kinds.connector(source.spec.kind),
            secrets: parts.secrets.clone(),
            submitter: parts.submitter.clone(),
            options: ConnectOptions {
                consumer: parts.consumer.clone(),
                claim_idle: settings.claim_idle,
                probe: false,
            },
            tracker: parts.statuses.track(&source),
        };
        let task = tokio::spawn(runner.run(cancel.clone()));
        running.insert(
            key,
            Running {
                source,
                cancel,
                task,
            },
        );
    }
}
