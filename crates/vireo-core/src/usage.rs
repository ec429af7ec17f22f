//! Metering: what an invocation is billed, usage summed over records, and a Lambda-style price
//! plan to put a cost on it.

use serde::{Deserialize, Serialize};

use crate::names::Name;

/// Billed time of a run: rounded up to the next whole millisecond, at least 1 ms.
pub fn billed_ms(duration_us: u64) -> u64 {
    duration_us.div_ceil(1000).max(1)
}

/// MiB-milliseconds per GB-second (1 GB = 1024 MiB, as AWS Lambda bills).
const MIB_MS_PER_GB_SECOND: f64 = 1024.0 * 1000.0;

#[expect(
    clippy::cast_precision_loss,
    reason = "exact below 2^53 MiB-ms, about 280,000 GB-years"
)]
pub fn gb_seconds(mib_ms: u64) -> f64 {
    mib_ms as f64 / MIB_MS_PER_GB_SECOND
}

/// How usage is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UsageGrouping {
    Function,
    /// `function@version`, to compare the versions of a split alias.
    Version,
    Day,
    Hour,
}

#[derive(Debug, Clone)]
pub struct UsageQuery {
    pub namespace: Name,
    pub function: Option<Name>,
    /// Invocations that started at or after this time.
    pub from_us: i64,
    /// Invocations that started before this time.
    pub to_us: i64,
    pub group_by: UsageGrouping,
}

/// Usage of one group (a function, or a UTC day or hour as `2026-11-23` / `2026-11-23T10`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageRow {
    pub key: String,
    pub requests: u64,
    pub billed_ms: u64,
    /// Configured memory times billed time, summed: the base of GB-seconds.
    pub mib_ms: u64,
    pub cold_starts: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub kv_reads: u64,
    pub kv_writes: u64,
    pub kv_bytes: u64,
    pub object_reads: u64,
    pub object_writes: u64,
    pub object_bytes: u64,
}

/// Prices, like AWS Lambda's: per million requests and per GB-second, after a free tier that
/// applies to the whole of a bill.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PricePlan {
    pub per_million_requests: f64,
    pub per_gb_second: f64,
    pub free_requests: u64,
    pub free_gb_seconds: f64,
}

impl Default for PricePlan {
    /// AWS Lambda's x86 list prices and monthly free tier.
    fn default() -> Self {
        Self {
            per_million_requests: 0.20,
            per_gb_second: 0.000_016_666_7,
            free_requests: 1_000_000,
            free_gb_seconds: 400_000.0,
        }
    }
}

/// A price plan with a price that is not a number of at least 0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidPricePlan(String);

impl PricePlan {
    pub fn validate(&self) -> Result<(), InvalidPricePlan> {
        let prices = [
            ("per_million_requests", self.per_million_requests),
            ("per_gb_second", self.per_gb_second),
            ("free_gb_seconds", self.free_gb_seconds),
        ];
        match prices
            .iter()
            .find(|(_, value)| !value.is_finite() || *value < 0.0)
        {
            Some((name, value)) => Err(InvalidPricePlan(format!(
                "pricing.{name} must be a number of at least 0, got {value}"
            ))),
            None => Ok(()),
        }
    }

    /// Cost before the free tier.
    pub fn gross(&self, requests: u64, gb_seconds: f64) -> f64 {
        self.cost(requests as f64, gb_seconds)
    }

    /// Cost after the free tier.
    pub fn net(&self, requests: u64, gb_seconds: f64) -> f64 {
        let requests = requests.saturating_sub(self.free_requests);
        self.cost(
            requests as f64,
            (gb_seconds - self.free_gb_seconds).max(0.0),
        )
    }

    fn cost(&self, requests: f64, gb_seconds: f64) -> f64 {
        requests / 1e6 * self.per_million_requests + gb_seconds * self.per_gb_second
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billed_time_rounds_up_to_whole_milliseconds_at_least_one() {
        assert_eq!(billed_ms(0), 1);
        assert_eq!(billed_ms(200), 1, "0.2 ms bills 1 ms");
        assert_eq!(billed_ms(1000), 1);
        assert_eq!(billed_ms(1200), 2, "1.2 ms bills 2 ms");
        assert_eq!(billed_ms(2_500_001), 2501);
    }

    #[test]
    fn cost_follows_the_plan_and_its_free_tier() {
        let plan = PricePlan {
            per_million_requests: 0.20,
            per_gb_second: 0.00001,
            free_requests: 1_000,
            free_gb_seconds: 10.0,
        };
        // 128 MiB for 1,000 ms, 3,000 times: 375 GB-s.
        let gbs = gb_seconds(128 * 1000 * 3000);
        assert!((gbs - 375.0).abs() < 1e-9);
        let gross = plan.gross(3_000, gbs);
        assert!((gross - (0.0006 + 0.00375)).abs() < 1e-12, "{gross}");
        let net = plan.net(3_000, gbs);
        assert!((net - (0.0004 + 0.00365)).abs() < 1e-12, "{net}");
        assert_eq!(plan.net(10, 1.0), 0.0, "inside the free tier");
        assert!(
            PricePlan {
                per_gb_second: -1.0,
                ..plan
            }
            .validate()
            .unwrap_err()
            .to_string()
            .contains("per_gb_second")
        );
    }
}
