//! One attempt: the stored request becomes a CloudEvents binary-mode HTTP request to the
//! function, and what comes back decides the invocation's next state.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use vireo_core::time::{now_micros, rfc3339};
use vireo_core::{
    AttemptResult, Body, Call, ClaimedInvocation, InvokeError, Invoker, Principal, Settlement,
    StoredResponse, Trigger,
};

use vireo_core::backoff::{equal_jitter, exponential};

/// The attempt number, from 1, on every delivery.
pub const ATTEMPT_HEADER: &str = "x-vireo-attempt";

/// Server-wide settings of delivery.
#[derive(Debug, Clone, Copy)]
pub struct DeliverySettings {
    /// Backoff before the second attempt when the function's policy names none.
    pub min_backoff: Duration,
    /// Longest backoff when the function's policy names none.
    pub max_backoff: Duration,
    /// Longest response body kept with the invocation; the rest is read and dropped.
    pub max_stored_response_bytes: usize,
}

/// Runs one attempt of `job` and decides what happens next; `begins` is called just before the
/// function is invoked, the moment from which the attempt counts.
pub async fn attempt(
    invoker: &dyn Invoker,
    job: ClaimedInvocation,
    settings: &DeliverySettings,
    begins: impl FnOnce(),
) -> AttemptResult {
    let id = job.id.clone();
    let age_limit_us = job.accepted_at_us.saturating_add(
        i64::try_from(job.policy.max_event_age_secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX),
    );
    if now_micros() > age_limit_us {
        return AttemptResult {
            id,
            attempts: job.attempt.saturating_sub(1),
            settlement: Settlement::Dead,
            response: None,
            error: Some(format!(
                "not delivered: older than the function's max event age of {} s",
                job.policy.max_event_age_secs
            )),
            at_us: now_micros(),
        };
    }
    let plan = RetryPlan {
        attempt: job.attempt,
        max_attempts: job.policy.max_attempts,
        retry_on_4xx: job.policy.retry_on_4xx,
        age_limit_us,
        min_backoff: job
            .policy
            .min_backoff_ms
            .map_or(settings.min_backoff, Duration::from_millis),
        max_backoff: job
            .policy
            .max_backoff_ms
            .map_or(settings.max_backoff, Duration::from_millis),
    };
    let call = match call(job) {
        Ok(call) => call,
        Err(error) => {
            // Never invoked, so it does not count.
            let result = plan.decide(id, Outcome::Refused(error), None);
            return AttemptResult {
                attempts: plan.attempt.saturating_sub(1),
                ..result
            };
        }
    };
    begins();
    match invoker
        .invoke(call)
        .await
        .map_err(|unanswered| unanswered.error)
    {
        Ok(response) => {
            let (response, body_error) =
                collect(response, settings.max_stored_response_bytes).await;
            let outcome = match body_error {
                Some(error) => Outcome::Retryable(format!("the response body failed: {error}")),
                None => Outcome::Answered(response.status),
            };
            plan.decide(id, outcome, Some(response))
        }
        Err(
            InvokeError::Busy {
                message,
                retry_after_secs,
            }
            | InvokeError::Overloaded {
                message,
                retry_after_secs,
            },
        ) => plan.decide(
            id,
            Outcome::NoCapacity(message, Duration::from_secs(retry_after_secs.into())),
            None,
        ),
        // The function's rate limit holds back deliveries as it does callers.
        Err(InvokeError::RateLimited {
            message,
            retry_after,
            ..
        }) => plan.decide(id, Outcome::NoCapacity(message, retry_after), None),
        Err(
            error
            @ (InvokeError::Timeout(_) | InvokeError::Failed(_) | InvokeError::Unavailable(_)),
        ) => plan.decide(id, Outcome::Retryable(error.to_string()), None),
        Err(
            error @ (InvokeError::NotFound(_)
            | InvokeError::RequestBody(_)
            | InvokeError::Unauthorized(_)
            | InvokeError::InvalidToken(_)
            | InvokeError::Forbidden(_)),
        ) => plan.decide(id, Outcome::Refused(error.to_string()), None),
    }
}

/// The stored request, with CloudEvents binary-mode attributes and the attempt number.
fn call(job: ClaimedInvocation) -> Result<Call, String> {
    let mut builder = http::Request::builder()
        .method(job.request.method.as_str())
        .uri(job.request.uri.as_str());
    let headers = builder
        .headers_mut()
        .ok_or("the stored request has an invalid method or path")?;
    *headers = job.request.headers;
    let attributes = [
        ("ce-specversion", "1.0".to_string()),
        ("ce-source", job.source.clone()),
        ("ce-time", rfc3339(job.event_time_us)),
        (ATTEMPT_HEADER, job.attempt.to_string()),
    ];
    // A broker message keeps its own identity as `ce-id`, stored with it.
    let id = (job.trigger != Trigger::Source).then(|| ("ce-id", job.id.to_string()));
    let event_type = event_type(job.trigger).map(|event_type| ("ce-type", event_type.to_string()));
    for (name, value) in attributes.into_iter().chain(id).chain(event_type) {
        let value = HeaderValue::from_str(&value)
            .map_err(|e| format!("cannot send {name} {value:?}: {e}"))?;
        headers.insert(HeaderName::from_static(name), value);
    }
    let body: Body = Full::new(job.request.body)
        .map_err(|never| match never {})
        .boxed_unsync();
    let request = builder
        .body(body)
        .map_err(|e| format!("the stored request is invalid: {e}"))?;
    Ok(Call {
        id: job.id,
        namespace: job.namespace,
        function: job.function,
        selector: job.selector,
        trigger: job.trigger,
        // The key, if the function needs one, was checked when the invocation was accepted.
        principal: Principal::System,
        route_auth: None,
        request,
        // Run later, away from the connection it came on.
        arrival: None,
    })
}

/// The CloudEvents `type` of a delivery; a bucket's event stored its own (the change it was),
/// and so did a source's message (its broker's kind).
fn event_type(trigger: Trigger) -> Option<&'static str> {
    match trigger {
        Trigger::Cron => Some("dev.vireo.schedule.fired"),
        Trigger::Async | Trigger::Http => Some("dev.vireo.invocation.async"),
        Trigger::Bucket | Trigger::Source => None,
    }
}

/// Reads the whole body, keeping at most `limit` bytes of it.
async fn collect(
    response: http::Response<Body>,
    limit: usize,
) -> (StoredResponse, Option<vireo_core::BoxError>) {
    let (parts, mut body) = response.into_parts();
    let mut kept = BytesMut::new();
    let mut truncated = false;
    let mut failure = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Ok(data) = frame.into_data() {
                    let room = limit.saturating_sub(kept.len());
                    truncated |= data.len() > room;
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    let stored = StoredResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: Bytes::from(kept),
        body_truncated: truncated,
    };
    (stored, failure)
}

enum Outcome {
    /// The function answered with this status.
    Answered(u16),
    /// A trap, a timeout, a broken body, or Vireo could not run it: worth another attempt.
    Retryable(String),
    /// The server had no free slot: try again later without counting the attempt.
    NoCapacity(String, Duration),
    /// Another attempt cannot succeed (the function is gone, the request is invalid).
    Refused(String),
}

struct RetryPlan {
    attempt: u32,
    max_attempts: u32,
    retry_on_4xx: bool,
    age_limit_us: i64,
    min_backoff: Duration,
    max_backoff: Duration,
}

impl RetryPlan {
    fn decide(
        &self,
        id: vireo_core::InvocationId,
        outcome: Outcome,
        response: Option<StoredResponse>,
    ) -> AttemptResult {
        let now = now_micros();
        let (settlement, error) = match outcome {
            Outcome::Answered(status) if status < 400 => (Settlement::Succeeded, None),
            Outcome::Answered(status) if status < 500 && !self.retry_on_4xx => (
                Settlement::Failed,
                Some(format!(
                    "the function answered {status}; 4xx answers are not retried"
                )),
            ),
            Outcome::Answered(status) => self.retry(now, format!("the function answered {status}")),
            Outcome::Retryable(error) => self.retry(now, error),
            Outcome::NoCapacity(error, wait) => {
                let at_us = now.saturating_add(micros(wait));
                if at_us > self.age_limit_us {
                    (
                        Settlement::Dead,
                        Some(format!("max event age reached while waiting: {error}")),
                    )
                } else {
                    (Settlement::Postpone { at_us }, Some(error))
                }
            }
            Outcome::Refused(error) => (Settlement::Failed, Some(error)),
        };
        // Refused for want of capacity, the attempt does not use one up.
        let attempts = match settlement {
            Settlement::Postpone { .. } => self.attempt.saturating_sub(1),
            _ => self.attempt,
        };
        AttemptResult {
            id,
            attempts,
            settlement,
            response,
            error,
            at_us: now,
        }
    }

    fn retry(&self, now: i64, error: String) -> (Settlement, Option<String>) {
        if self.attempt >= self.max_attempts {
            return (
                Settlement::Dead,
                Some(format!("gave up after {} attempts: {error}", self.attempt)),
            );
        }
        let wait = equal_jitter(exponential(
            self.attempt,
            self.min_backoff,
            self.max_backoff,
        ));
        let at_us = now.saturating_add(micros(wait));
        if at_us > self.age_limit_us {
            return (
                Settlement::Dead,
                Some(format!(
                    "max event age reached after {} attempts: {error}",
                    self.attempt
                )),
            );
        }
        (Settlement::Retry { at_us }, Some(error))
    }
}

fn micros(duration: Duration) -> i64 {
    i64::try_from(duration.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(attempt: u32) -> RetryPlan {
        RetryPlan {
            attempt,
            max_attempts: 3,
            retry_on_4xx: false,
            age_limit_us: i64::MAX,
            min_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
        }
    }

    fn settle(plan: &RetryPlan, outcome: Outcome) -> Settlement {
        let id = vireo_core::InvocationId::generate();
        plan.decide(id, outcome, None).settlement
    }

    #[test]
    fn statuses_map_to_the_policy() {
        assert_eq!(
            settle(&plan(1), Outcome::Answered(204)),
            Settlement::Succeeded
        );
        assert_eq!(settle(&plan(1), Outcome::Answered(404)), Settlement::Failed);
        assert!(matches!(
            settle(&plan(1), Outcome::Answered(503)),
            Settlement::Retry { .. }
        ));
        assert_eq!(settle(&plan(3), Outcome::Answered(503)), Settlement::Dead);
        let lenient = RetryPlan {
            retry_on_4xx: true,
            ..plan(1)
        };
        assert!(matches!(
            settle(&lenient, Outcome::Answered(429)),
            Settlement::Retry { .. }
        ));
        assert_eq!(
            settle(&plan(1), Outcome::Refused("gone".into())),
            Settlement::Failed
        );
    }

    #[test]
    fn an_attempt_refused_for_capacity_does_not_count() {
        let id = vireo_core::InvocationId::generate;
        let busy = Outcome::NoCapacity("busy".into(), Duration::from_secs(1));
        assert_eq!(plan(2).decide(id(), busy, None).attempts, 1);
        let answered = plan(2).decide(id(), Outcome::Answered(503), None);
        assert_eq!(answered.attempts, 2);
    }

    #[test]
    fn age_and_capacity_rules() {
        let old = RetryPlan {
            age_limit_us: now_micros(),
            ..plan(1)
        };
        assert_eq!(
            settle(&old, Outcome::Retryable("trap".into())),
            Settlement::Dead
        );
        assert!(matches!(
            settle(
                &plan(3),
                Outcome::NoCapacity("busy".into(), Duration::from_secs(1))
            ),
            Settlement::Postpone { .. }
        ));
    }
}
