//! What each source on this node is doing: its state, counters and lag, read by the API
//! through [`SourceMonitor`] and exported as metrics. A state change is logged once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use vireo_core::time::now_micros;
use vireo_core::{Name, SOURCE_RATE_SECONDS, Source, SourceMonitor, SourceState, SourceStatus};

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
    acknowledged: RecentCounts,
}

/// Counts in each of the last [`SOURCE_RATE_SECONDS`] seconds (Unix time), in a ring.
#[derive(Default)]
struct RecentCounts([(u64, u64); SOURCE_RATE_SECONDS as usize]);

impl RecentCounts {
    fn add(&mut self, second: u64, n: u64) {
        let slot = &mut self.0[(second % SOURCE_RATE_SECONDS) as usize];
        if slot.0 != second {
            *slot = (second, 0);
        }
        slot.1 += n;
    }

    /// The counts of the window ending with `second`.
    fn total(&self, second: u64) -> u64 {
        self.0
            .iter()
            .filter(|(at, _)| *at <= second && second - at < SOURCE_RATE_SECONDS)
            .map(|(_, n)| n)
            .sum()
    }
}

fn unix_second() -> u64 {
    u64::try_from(now_micros() / 1_000_000).unwrap_or_default()
}

/// The status of every source running on this node.
#[derive(Default, Clone)]
pub struct Statuses(Arc<Mutex<HashMap<Key, Entry>>>);

impl SourceMonitor for Statuses {
    fn status(&self, namespace: &Name, name: &Name) -> Option<SourceStatus> {
        let key = (namespace.clone(), name.clone());
        let second = unix_second();
        self.lock().get(&key).map(|entry| SourceStatus {
            acknowledged_recently: entry.acknowledged.total(second),
            ..entry.status.clone()
        })
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
            acknowledged_recently: 0,
            lag: None,
            last_error: None,
            last_error_at_us: None,
        };
        let acknowledged = RecentCounts::default();
        let entry = Entry {
            runner,
            status,
            acknowledged,
        };
        self.lock().insert(key.clone(), entry);
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
    fn update(&self, change: impl FnOnce(&mut Entry)) {
        if let Some(entry) = self.statuses.lock().get_mut(&self.key)
            && entry.runner == self.runner
        {
            change(entry);
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
        let second = unix_second();
        self.update(
            |Entry {
                 status,
                 acknowledged,
                 ..
             }| match outcome {
                "received" => status.received += n,
                "acknowledged" => {
                    status.acknowledged += n;
                    acknowledged.add(second, n);
                }
                "refused" => status.refused += n,
                "filtered" => status.filtered += n,
                _ => {}
            },
        );
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
        self.update(|Entry { status, .. }| status.lag = lag);
    }

    /// Running again (after a failure): logged once.
    pub(crate) fn running(&self) {
        let mut was = None;
        self.update(|Entry { status, .. }| {
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
        self.update(|Entry { status, .. }| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recent_count_covers_the_last_ten_seconds_and_reuses_older_slots() {
        let mut recent = RecentCounts::default();
        recent.add(100, 5);
        recent.add(100, 2);
        recent.add(105, 3);
        assert_eq!(recent.total(105), 10);
        assert_eq!(recent.total(109), 10, "100 is the window's first second");
        assert_eq!(recent.total(110), 3, "100 has left the window");
        assert_eq!(recent.total(99), 0, "nothing counts before it happened");
        recent.add(110, 1);
        assert_eq!(recent.total(110), 4, "110 took 100's slot afresh");
        assert_eq!(recent.total(200), 0);
    }
}
