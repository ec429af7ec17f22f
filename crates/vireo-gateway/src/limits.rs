//! Per-key rate limits (each API key, per namespace, under the namespace's `key_rate_limit`) and
//! the `RateLimit-*` headers (IETF draft "RateLimit header fields for HTTP") every limited
//! answer carries.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use vireo_core::buckets::Verdict;
use vireo_core::{Caller, Name, RateLimit};

use crate::error::ApiError;
use crate::state::Access;

/// Where a key stands after a request it was allowed.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    limit: RateLimit,
    remaining: u32,
}

/// Takes a token from the key's bucket in `namespace`; `None` when the namespace sets no limit,
/// a 429 when the bucket is empty.
pub fn key_budget(
    access: &Access,
    caller: &Caller,
    namespace: &Name,
) -> Result<Option<Budget>, ApiError> {
    let Some(limit) = access.directory.quotas(namespace).key_rate_limit else {
        return Ok(None);
    };
    let bucket = (caller.key_id.clone(), namespace.clone());
    match access.key_buckets.check(&bucket, limit) {
        Verdict::Allowed { limit, remaining } => Ok(Some(Budget { limit, remaining })),
        Verdict::Limited { limit, retry_after } => {
            let mut refused = ApiError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "this key's rate limit in namespace {namespace} ({} per second, bursts of {}) is used up; retry after the time in Retry-After",
                    limit.per_second, limit.burst
                ),
            );
            exhausted(&mut refused, limit, retry_after);
            Err(refused)
        }
    }
}

/// Adds the headers of an allowed request; the reset is when the bucket is full again.
pub fn describe(headers: &mut HeaderMap, budget: Budget) {
    let missing = budget.limit.burst.saturating_sub(budget.remaining);
    let refill = Duration::from_secs_f64(f64::from(missing) / f64::from(budget.limit.per_second));
    headers.extend(fields(budget.limit, budget.remaining, refill));
}

/// Makes `answer` a 429's: `Retry-After` and `RateLimit-*` with nothing remaining.
pub fn exhausted(answer: &mut ApiError, limit: RateLimit, retry_after: Duration) {
    answer.retry_after_secs = Some(whole_seconds(retry_after));
    answer.headers.extend(fields(limit, 0, retry_after));
}

fn fields(limit: RateLimit, remaining: u32, reset: Duration) -> [(HeaderName, HeaderValue); 3] {
    [
        (
            HeaderName::from_static("ratelimit-limit"),
            HeaderValue::from(limit.burst),
        ),
        (
            HeaderName::from_static("ratelimit-remaining"),
            HeaderValue::from(remaining),
        ),
        (
            HeaderName::from_static("ratelimit-reset"),
            HeaderValue::from(whole_seconds(reset)),
        ),
    ]
}

/// Seconds rounded up, so a client that waits that long finds a token.
fn whole_seconds(duration: Duration) -> u32 {
    u32::try_from(duration.as_millis().div_ceil(1000)).unwrap_or(u32::MAX)
}
