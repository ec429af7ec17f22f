//! Keeps one runner per running source on this node: it rereads the sources every poll
//! interval and starts, stops or restarts runners to match (paused, deleted and changed
//! sources), so every node follows the store without a message between nodes. A source that
//! disappears was deleted: once its runner here has stopped, this node removes it at its broker
//! (idempotently, as every node does).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
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
    /// This node's slot, once its heartbeat has given it one.
    pub slot: watch::Receiver<Option<u32>>,
}

impl Parts {
    fn connect_options(&self, settings: &SourceSettings) -> ConnectOptions {
        ConnectOptions {
            consumer: self.consumer.clone(),
            claim_idle: settings.claim_idle,
            probe: false,
            slot: self.slot.clone(),
            tls: self.kinds.tls(),
        }
    }
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
    // Every source of the last reading, paused ones too: one that disappears was deleted.
    let mut known: HashMap<(Name, Name), Source> = HashMap::new();
    let mut retry = Retry::new("reading the event sources");
    loop {
        match parts.store.all_sources().await {
            Ok(sources) => {
                retry.succeeded();
                let now: HashMap<_, _> = sources
                    .iter()
                    .map(|source| {
                        (
                            (source.namespace.clone(), source.name.clone()),
                            source.clone(),
                        )
                    })
                    .collect();
                reconcile(&parts, &settings, &mut running, sources).await;
                for (key, deleted) in known.drain().filter(|(key, _)| !now.contains_key(key)) {
                    // Its runner here has stopped (reconcile waited for it).
                    let (secrets, kinds) = (parts.secrets.clone(), parts.kinds.clone());
                    let options = parts.connect_options(&settings);
                    tokio::spawn(remove_at_broker(secrets, kinds, options, key, deleted));
                }
                known = now;
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

/// Removes a deleted source's consumer group, durable consumer, session or trigger at its
/// broker; a failure is logged (what is left behind is named there).
async fn remove_at_broker(
    secrets: Arc<dyn SecretOpener>,
    kinds: Arc<Kinds>,
    options: ConnectOptions,
    key: (Name, Name),
    source: Source,
) {
    let password = match &source.spec.password_secret {
        Some(secret) => match secrets.open_secret(&source.namespace, secret).await {
            Ok(password) => Some(password),
            Err(error) => {
                tracing::warn!(namespace = %key.0, source = %key.1, %error, "cannot open the password to remove the deleted source at its broker");
                return;
            }
        },
        None => None,
    };
    match kinds
        .connector(source.spec.kind)
        .remove(&source, password.as_ref(), &options)
        .await
    {
        Ok(()) => {
            tracing::info!(namespace = %key.0, source = %key.1, "source removed at its broker")
        }
        Err(error) => {
            tracing::warn!(namespace = %key.0, source = %key.1, %error, "source left at its broker")
        }
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
            options: parts.connect_options(settings),
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
