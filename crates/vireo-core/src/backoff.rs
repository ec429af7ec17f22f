//! Backing off after failures, and saying so without flooding the log.
//!
//! Every background loop (the async worker's claims and heartbeat, the queue writer, the cron
//! scheduler, the record writer, retention) retries through a [`Retry`]: the wait before the
//! next try doubles with each consecutive failure, the first failure is logged at once, further
//! ones at most once per interval with their count, and the recovery once.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// First wait after a failure.
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// Longest wait between tries: a store that comes back is used again within this.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// At most one log line per failing condition per this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// `first · 2^(step-1)` for step 1, 2, ..., capped at `max`.
pub fn exponential(step: u32, first: Duration, max: Duration) -> Duration {
    first
        .saturating_mul(2u32.saturating_pow(step.saturating_sub(1)))
        .min(max)
}

/// A delay drawn uniformly from the upper half of `nominal` ("equal jitter"): retries of a
/// burst spread out while each still waits at least half the nominal time.
pub fn equal_jitter(nominal: Duration) -> Duration {
    let half = nominal / 2;
    let spread = u64::try_from((nominal - half).as_micros()).unwrap_or(u64::MAX);
    half + Duration::from_micros(fastrand::u64(0..=spread))
}

/// Consecutive failures and the wait each one earns.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max: max.max(first),
            failures: 0,
        }
    }

    /// Counts a failure and returns how long to wait before trying again.
    pub fn next_delay(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        exponential(self.failures, self.first, self.max)
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// What a failure should put in the log, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Report {
    /// The first failure after things worked.
    First,
    /// `count` failures since the last line, which was `over` ago.
    Repeated { count: u64, over: Duration },
}

/// Counts the failures of one condition and decides when they are worth a log line.
#[derive(Debug, Clone)]
struct FailureLog {
    interval: Duration,
    outage: Option<Outage>,
}

#[derive(Debug, Clone, Copy)]
struct Outage {
    last_line: Instant,
    unlogged: u64,
    total: u64,
}

impl FailureLog {
    fn failed(&mut self, now: Instant) -> Option<Report> {
        let Some(outage) = &mut self.outage else {
            self.outage = Some(Outage {
                last_line: now,
                unlogged: 0,
                total: 1,
            });
            return Some(Report::First);
        };
        outage.total += 1;
        outage.unlogged += 1;
        let over = now.saturating_duration_since(outage.last_line);
        if over < self.interval {
            return None;
        }
        let count = std::mem::take(&mut outage.unlogged);
        outage.last_line = now;
        Some(Report::Repeated { count, over })
    }

    /// How many failures the outage that just ended had, if one did.
    fn succeeded(&mut self) -> Option<u64> {
        self.outage.take().map(|outage| outage.total)
    }
}

/// Backoff and throttled logging for one loop's failing operation, named by `what` in the log
/// ("claiming async invocations").
#[derive(Debug, Clone)]
pub struct Retry {
    what: &'static str,
    backoff: Backoff,
    log: FailureLog,
}

impl Retry {
    /// Waits from [`FIRST_DELAY`] doubling to [`MAX_DELAY`]; logs every [`LOG_INTERVAL`] at most.
    pub fn new(what: &'static str) -> Self {
        Self {
            what,
            backoff: Backoff::new(FIRST_DELAY, MAX_DELAY),
            log: FailureLog {
                interval: LOG_INTERVAL,
                outage: None,
            },
        }
    }

    /// Never waits longer than `max`: a periodic loop caps its backoff at its own period.
    pub fn capped_at(mut self, max: Duration) -> Self {
        self.backoff = Backoff::new(FIRST_DELAY.min(max), max);
        self
    }

    /// Counts a failure, logs it if it is time to, and returns how long to wait.
    pub fn failed(&mut self, error: &dyn Display) -> Duration {
        let delay = self.backoff.next_delay();
        let what = self.what;
        match self.log.failed(Instant::now()) {
            Some(Report::First) => {
                tracing::warn!("{what} failed: {error}; retrying with backoff");
            }
            Some(Report::Repeated { count, over }) => {
                let secs = over.as_secs_f64().round();
                tracing::warn!("{what} failed {count} times in the last {secs} s: {error}");
            }
            None => {}
        }
        delay
    }

    /// Resets the backoff; logs once that a failing operation works again.
    pub fn succeeded(&mut self) {
        self.backoff.reset();
        if let Some(failures) = self.log.succeeded() {
            let what = self.what;
            tracing::info!("{what} works again after {failures} failures");
        }
    }

    /// Counts a failure and waits its backoff, unless `stop` resolves first; false if it did.
    pub async fn pause_after(
        &mut self,
        error: &(dyn Display + Sync),
        stop: impl Future<Output = ()>,
    ) -> bool {
        let delay = self.failed(error);
        tokio::select! {
            () = stop => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn delays_double_from_the_first_and_stop_at_the_cap() {
        let mut backoff = Backoff::new(100 * MS, 1000 * MS);
        let delays: Vec<u128> = (0..6).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), 100 * MS, "a success starts over");
        // Thousands of failures neither overflow nor pass the cap.
        for _ in 0..10_000 {
            assert!(backoff.next_delay() <= 1000 * MS);
        }
    }

    #[test]
    fn a_cap_below_the_first_delay_wins() {
        let mut retry = Retry::new("testing").capped_at(20 * MS);
        assert_eq!(retry.failed(&"x"), 20 * MS);
        assert_eq!(retry.failed(&"x"), 20 * MS);
    }

    #[test]
    fn equal_jitter_stays_in_the_upper_half() {
        for _ in 0..1000 {
            let delay = equal_jitter(400 * MS);
            assert!(delay >= 200 * MS && delay <= 400 * MS, "{delay:?}");
        }
        assert_eq!(equal_jitter(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn failures_are_logged_first_then_once_per_interval_with_their_count() {
        let start = Instant::now();
        let mut log = FailureLog {
            interval: Duration::from_secs(10),
            outage: None,
        };
        assert_eq!(log.failed(start), Some(Report::First));
        // 311 more failures within the interval: silence.
        for n in 1..312u64 {
            let at = start + Duration::from_millis(n * 30);
            assert_eq!(log.failed(at), None, "failure {n}");
        }
        let at = start + Duration::from_secs(10);
        assert_eq!(
            log.failed(at),
            Some(Report::Repeated {
                count: 312,
                over: Duration::from_secs(10)
            })
        );
        // The next window counts from that line.
        assert_eq!(log.failed(at + Duration::from_secs(9)), None);
        assert_eq!(
            log.failed(at + Duration::from_secs(25)),
            Some(Report::Repeated {
                count: 2,
                over: Duration::from_secs(25)
            })
        );
        assert_eq!(log.succeeded(), Some(315), "every failure of the outage");
        assert_eq!(log.succeeded(), None, "recovery is reported once");
        assert_eq!(
            log.failed(at + Duration::from_secs(26)),
            Some(Report::First),
            "a new outage is reported at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pausing_ends_early_when_told_to_stop() {
        let mut retry = Retry::new("testing");
        let begun = tokio::time::Instant::now();
        assert!(retry.pause_after(&"x", std::future::pending()).await);
        assert_eq!(begun.elapsed(), FIRST_DELAY);
        assert!(!retry.pause_after(&"x", std::future::ready(())).await);
        assert_eq!(begun.elapsed(), FIRST_DELAY, "no wait once stopped");
    }
}
