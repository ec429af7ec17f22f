//! Request bodies as Vireo reads them: bounded in size and in pace, and failing only with a
//! `RequestBodyError`, so whoever reads one (a guest, an extractor, the async accept) ends with an
//! error that names the client's fault and its status (400, 408, 413).

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body as AxumBody;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use vireo_core::{BoxError, RequestBodyError, causes};

/// How long a body may keep its reader waiting: `grace` in all, plus one second for every
/// `min_bytes_per_sec` bytes it has delivered (Apache's `RequestReadTimeout body=…,MinRate=…`).
/// Only time spent waiting counts, so a reader that is slow itself (a guest computing between
/// reads) never times its client out.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub grace: Duration,
    pub min_bytes_per_sec: u64,
}

impl Pace {
    /// The waiting a body that has delivered `received` bytes has earned.
    fn allowance(&self, received: u64) -> Duration {
        let earned = Duration::from_secs_f64(received as f64 / self.min_bytes_per_sec as f64);
        self.grace.saturating_add(earned)
    }
}

/// A request body bounded by a [`Pace`] and, optionally, a size limit.
pub struct Guarded<B> {
    inner: B,
    limit: Option<u64>,
    pace: Pace,
    received: u64,
    /// Time spent waiting for bytes, not counting the wait in progress.
    waited: Duration,
    waiting_since: Option<Instant>,
    /// Fires when the wait in progress runs out of allowance; made on the first wait.
    timer: Option<Pin<Box<Sleep>>>,
    /// Once failed, the same error again: a reader never mistakes a cut body for a whole one.
    failed: Option<RequestBodyError>,
}

impl<B> Guarded<B> {
    pub fn new(inner: B, pace: Pace, limit: Option<u64>) -> Self {
        Self {
            inner,
            limit,
            pace,
            received: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            timer: None,
            failed: None,
        }
    }

    fn stop_waiting(&mut self) {
        if let Some(since) = self.waiting_since.take() {
            self.waited += since.elapsed();
        }
    }

    fn fail(
        &mut self,
        error: RequestBodyError,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        self.failed = Some(error.clone());
        Poll::Ready(Some(Err(error)))
    }

    fn too_slow(&self, waited: Duration) -> RequestBodyError {
        RequestBodyError::TooSlow {
            received: self.received,
            waited_ms: u64::try_from(waited.as_millis()).unwrap_or(u64::MAX),
            grace_ms: u64::try_from(self.pace.grace.as_millis()).unwrap_or(u64::MAX),
            min_bytes_per_sec: self.pace.min_bytes_per_sec,
        }
    }

    /// Called while no bytes are ready: arms the timer for the rest of the allowance, or fails
    /// when there is none left.
    fn poll_allowance(&mut self, cx: &mut Context<'_>) -> Poll<RequestBodyError> {
        let now = Instant::now();
        let since = *self.waiting_since.get_or_insert(now);
        let left = self
            .pace
            .allowance(self.received)
            .saturating_sub(self.waited);
        let deadline = since + left;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        ready!(timer.as_mut().poll(cx));
        Poll::Ready(self.too_slow(self.waited + (now - since)))
    }
}

impl<B> Body for Guarded<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let this = self.get_mut();
        if let Some(error) = &this.failed {
            return Poll::Ready(Some(Err(error.clone())));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.stop_waiting();
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    if let Some(limit) = this.limit.filter(|limit| this.received > *limit) {
                        return this.fail(RequestBodyError::TooLarge { limit });
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.stop_waiting();
                let error: BoxError = error.into();
                let fault = RequestBodyError::find(error.as_ref())
                    .cloned()
                    .unwrap_or_else(|| RequestBodyError::Malformed(causes(error.as_ref())));
                this.fail(fault)
            }
            Poll::Ready(None) => {
                this.stop_waiting();
                Poll::Ready(None)
            }
            Poll::Pending => match this.poll_allowance(cx) {
                Poll::Ready(too_slow) => this.fail(too_slow),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Paces the body of every request through the admin API; size limits stay with the extractors
/// (`DefaultBodyLimit`), which know which route takes how much.
pub async fn pace_admin_bodies(State(pace): State<Pace>, request: Request, next: Next) -> Response {
    next.run(request.map(|body| AxumBody::new(Guarded::new(body, pace, None))))
        .await
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt as _, Full, StreamBody};

    use super::*;

    const PACE: Pace = Pace {
        grace: Duration::from_millis(200),
        min_bytes_per_sec: 1000,
    };

    /// A body that yields `chunks` one at a time, each after `every`.
    fn trickle(
        chunks: usize,
        every: Duration,
    ) -> impl Body<Data = Bytes, Error = BoxError> + Unpin {
        let frames = futures::stream::unfold(0, move |sent| async move {
            if sent == chunks {
                return None;
            }
            tokio::time::sleep(every).await;
            Some((
                Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"x"))),
                sent + 1,
            ))
        });
        StreamBody::new(Box::pin(frames))
    }

    #[tokio::test]
    async fn a_trickle_runs_out_of_allowance() {
        let started = Instant::now();
        let error = Guarded::new(trickle(1000, Duration::from_millis(20)), PACE, None)
            .collect()
            .await
            .unwrap_err();
        assert!(
            matches!(error, RequestBodyError::TooSlow { received, .. } if received < 100),
            "{error}"
        );
        // 200 ms of grace plus 1 ms per byte received.
        let took = started.elapsed();
        assert!(took >= PACE.grace, "cut after {took:?}, within the grace");
        assert!(took < Duration::from_secs(5), "cut only after {took:?}");
    }

    #[tokio::test]
    async fn a_body_above_the_minimum_rate_is_read_whole() {
        // 50 bytes a second, five times the minimum, for well past the grace.
        let paced = Pace {
            grace: Duration::from_millis(100),
            min_bytes_per_sec: 10,
        };
        let body = Guarded::new(trickle(30, Duration::from_millis(20)), paced, None);
        assert_eq!(body.collect().await.unwrap().to_bytes().len(), 30);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_fails_and_stays_failed() {
        let mut body = Guarded::new(Full::new(Bytes::from_static(b"12345")), PACE, Some(4));
        let error = body.frame().await.unwrap().unwrap_err();
        assert_eq!(error, RequestBodyError::TooLarge { limit: 4 });
        assert_eq!(body.frame().await.unwrap().unwrap_err(), error);
        let fits = Guarded::new(Full::new(Bytes::from_static(b"1234")), PACE, Some(4));
        assert_eq!(fits.collect().await.unwrap().to_bytes().as_ref(), b"1234");
    }

    #[tokio::test]
    async fn other_read_errors_are_malformed_bodies() {
        let broken = StreamBody::new(futures::stream::iter([Err::<Frame<Bytes>, BoxError>(
            "invalid chunk size line".into(),
        )]));
        let error = Guarded::new(broken, PACE, None)
            .collect()
            .await
            .unwrap_err();
        assert!(
            matches!(&error, RequestBodyError::Malformed(m) if m.contains("chunk size")),
            "{error}"
        );
        assert_eq!(error.status(), http::StatusCode::BAD_REQUEST);
    }
}
