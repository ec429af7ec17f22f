//! Wall-clock timestamps as microseconds since the Unix epoch: what the store keeps and the API
//! shows (next to an RFC 3339 rendering).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, now.
pub fn now_micros() -> i64 {
    to_micros(SystemTime::now())
}

pub fn to_micros(time: SystemTime) -> i64 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}

/// RFC 3339 with microseconds, UTC: `2026-11-23T10:00:00.123456Z`.
pub fn rfc3339(micros: i64) -> String {
    let time = UNIX_EPOCH + Duration::from_micros(u64::try_from(micros).unwrap_or(0));
    humantime::format_rfc3339_micros(time).to_string()
}

/// Parses what a user may write for "since": an RFC 3339 time, or a duration ago (`10m`, `2h`).
pub fn parse_since(value: &str, now_micros: i64) -> Result<i64, String> {
    if let Ok(time) = humantime::parse_rfc3339_weak(value) {
        return Ok(to_micros(time));
    }
    match humantime::parse_duration(value) {
        Ok(ago) => {
            Ok(now_micros.saturating_sub(i64::try_from(ago.as_micros()).unwrap_or(i64::MAX)))
        }
        Err(_) => Err(format!(
            "invalid time {value:?}: use an RFC 3339 time (2026-01-02T03:04:05Z) or a duration ago (90s, 10m, 2h)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_accepts_times_and_durations() {
        let now = 1_000_000_000_000;
        assert_eq!(parse_since("10s", now).unwrap(), now - 10_000_000);
        assert_eq!(parse_since("1970-01-01T00:00:01Z", now).unwrap(), 1_000_000);
        assert!(
            parse_since("yesterday", now)
                .unwrap_err()
                .contains("RFC 3339")
        );
        assert_eq!(rfc3339(1_500_000), "1970-01-01T00:00:01.500000Z");
    }
}
