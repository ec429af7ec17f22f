//! Exponential backoff with jitter between attempts of an async invocation.

use std::time::Duration;

/// Delay before the attempt after `attempt` (1-based): `min · 2^(attempt-1)`, capped at `max`,
/// then drawn uniformly from its upper half ("equal jitter") so retries of a burst spread out
/// while every delay stays at least half the nominal one.
pub fn delay(attempt: u32, min: Duration, max: Duration) -> Duration {
    let nominal = min
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(max);
    let half = nominal / 2;
    let spread = u64::try_from((nominal - half).as_micros()).unwrap_or(u64::MAX);
    half + Duration::from_micros(fastrand::u64(0..=spread))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_within_jitter_and_caps() {
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        for _ in 0..1000 {
            let first = delay(1, min, max);
            assert!(first >= Duration::from_millis(50) && first <= min);
            let third = delay(3, min, max);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let capped = delay(30, min, max);
            assert!(capped >= Duration::from_millis(500) && capped <= max);
        }
    }
}
