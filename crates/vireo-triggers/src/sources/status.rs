//! What each source on this node is doing: its state, counters and lag, read by the API
//! through [`SourceMonitor`] and exported as metrics. A state change is logged once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use vireo_core::time::now_micros;
use vireo_core::{Name, Source, SourceMonitor, SourceState, SourceStatus};

/// Messages by outcome: `received`, `acknowledged`, `refused` (the queue was full; the broker
/// keeps them), `duplicate` (stored before, by the idempotency key) or `filtered` (acknowledged
/// without an invocation: the body did not match the source's filter).
pub const SOURCE_MESSAGES_METRIC: &str = "vireo_source_messages_total";
/// Messages the broker holds that the source has not received yet, where the broker says.
pub const SOURCE_LAG_METRIC: &str = "vireo_source_lag";

type Key = (Name, Name);

/// A status and the runner it belongs to, so a runner that ends late cannot remove its
/// successor's.
struct Entry {
    runner: u64,
    status: SourceStatus,
}

/// The status of every source running on this node.
#[derive(Default, Clone)]
pub struct Statuses(Arc<Mutex<HashMap<Key, Entry>>>);

impl SourceMonitor for Statuses {
    fn status(&self, namespace: &Name, name: &Name) -> Option<SourceStatus> {
        let key = (namespace.clone(), name.clone());
        self.lock().get(&key).map(|entry| entry.status.clone())
    }
}

static RUNNERS: AtomicU64 = AtomicU64::new(0);

impl Statuses {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A runner's handle on its source's status, `starting` until it has connected (for MQTT:
    /// subscribed), so `running` means messages published now reach it.
    pub(crate) fn track(&self, source: &Source) -> Tracker {
        let key = (source.namespace.clone(), source.name.clone());
        let runner = RUNNERS.fetch_add(1, Ordering::Relaxed);
        let status = SourceStatus {
            state: SourceState::Starting,
            received: 0,
            acknowledged: 0,
            refused: 0,
            filtered: 0,
            lag: None,
            last_error: None,
            last_error_at_us: None,
        };
        self.lock().insert(key.clone(), Entry { runner, status });
        Tracker {
            statuses: self.clone(),
            runner,
            key,
            kind: source.spec.kind.as_str(),
        }
    }
}

/// One source's status, updated by its runner; forgotten when the runner ends.
pub(crate) struct Tracker {
    statuses: Statuses,
    runner: u64,
    key: Key,
    kind: &'static str,
}

impl Tracker {
    fn update(&self, change: impl FnOnce(&mut SourceStatus)) {
        if let Some(entry) = self.statuses.lock().get_mut(&self.key)
            && entry.runner == self.runner
        {
            change(&mut entry.status);
        }
    }

    fn labels(&self, outcome: &'static str) -> [(&'static str, String); 4] {
        [
            ("namespace", self.key.0.to_string()),
            ("source", self.key.1.to_string()),
            ("kind", self.kind.to_string()),
            ("outcome", outcome.to_string()),
        ]
    }

    pub(crate) fn count(&self, outcome: &'static str, messages: usize) {
        if messages == 0 {
            return;
        }
        let n = messages as u64;
        metrics::counter!(SOURCE_MESSAGES_METRIC, &self.labels(outcome)).increment(n);
        self.update(|status| match outcome {
            "received" => status.received += n,
            "acknowledged" => status.acknowledged += n,
            "refused" => status.refused += n,
            "filtered" => status.filtered += n,
            _ => {}
        });
    }

    pub(crate) fn lag(&self, lag: Option<u64>) {
        if let Some(lag) = lag {
            let labels = [
                ("namespace", self.key.0.to_string()),
                ("source", self.key.1.to_string()),
                ("kind", self.kind.to_string()),
            ];
            metrics::gauge!(SOURCE_LAG_METRIC, &labels).set(lag as f64);
        }
        self.update(|status| status.lag = lag);
    }

    /// Running again (after a failure): logged once.
    pub(crate) fn running(&self) {
        let mut was = None;
        self.update(|status| {
            was = Some(status.state);
            status.state = SourceState::Running;
        });
        if was == Some(SourceState::Failing) {
            tracing::info!(namespace = %self.key.0, source = %self.key.1, "source running again");
        }
    }

    /// Failing with `error`: logged at the change, and then only when the error changes.
    pub(crate) fn failing(&self, error: &str) {
        let mut changed = false;
        self.update(|status| {
            changed =
                status.state != SourceState::Failing || status.last_error.as_deref() != Some(error);
            status.state = SourceState::Failing;
            status.last_error = Some(error.to_string());
            status.last_error_at_us = Some(now_micros());
        });
        if changed {
            tracing::warn!(namespace = %self.key.0, source = %self.key.1, %error, "source failing");
        }
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let mut statuses = self.statuses.lock();
        if statuses
            .get(&self.key)
            .is_some_and(|entry| entry.runner == self.runner)
        {
            statuses.remove(&self.key);
        }
    }
}
