//! Background upkeep: scaling idle versions to zero and applying retention.

use std::sync::Arc;
use std::time::Duration;

use vireo_core::Records;
use vireo_core::backoff::Retry;

use crate::config::RetentionConfig;
use crate::platform::Platform;

/// Evicts idle versions' compiled state, checking often enough that a version goes cold within
/// about a quarter of `idle_ttl` after it expires.
pub async fn scale_to_zero(platform: Arc<Platform>, idle_ttl: Duration) {
    let period = (idle_ttl / 4).clamp(Duration::from_millis(10), Duration::from_secs(10));
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        for (namespace, function, version) in platform.evict_idle() {
            tracing::debug!(%namespace, %function, version, "scaled to zero");
        }
    }
}

/// Deletes old logs, records and finished async invocations, and logs beyond the size limit,
/// every sweep interval; after a failure it tries again sooner, backing off up to that.
pub async fn apply_retention(records: Arc<dyn Records>, config: RetentionConfig) {
    let period = Duration::from_millis(config.sweep_interval_ms);
    let mut retry = Retry::new("applying retention").capped_at(period);
    loop {
        let rules = config.rules(vireo_core::time::now_micros());
        let wait = match records.apply_retention(&rules).await {
            Ok(done) => {
                retry.succeeded();
                if done != vireo_core::Retained::default() {
                    tracing::info!(
                        log_lines = done.log_lines_deleted,
                        records = done.records_deleted,
                        async_invocations = done.async_deleted,
                        "retention deleted old data"
                    );
                }
                period
            }
            Err(error) => retry.failed(&error),
        };
        tokio::time::sleep(wait).await;
    }
}
