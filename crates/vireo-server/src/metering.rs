//! Counts the body bytes an invocation reads and sends, for its usage record, and notes when
//! the client broke the request body or went away before the response body was sent (so the
//! record and the answer blame the client).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::Body as _;
use http_body_util::BodyExt as _;
use tokio::sync::oneshot;
use vireo_core::{Body, BoxError, RequestBodyError};

#[derive(Default)]
pub struct Meter {
    request: Arc<AtomicU64>,
    response: Arc<AtomicU64>,
    request_fault: Arc<OnceLock<RequestBodyError>>,
    response_abandoned: Arc<AtomicBool>,
}

impl Meter {
    pub fn request(&self, request: http::Request<Body>) -> http::Request<Body> {
        let bytes = self.request.clone();
        let fault = self.request_fault.clone();
        request.map(|body| {
            counting(body, bytes, None)
                .map_err(move |error| {
                    if let Some(found) = RequestBodyError::find(error.as_ref()) {
                        let _ = fault.set(found.clone());
                    }
                    error
                })
                .boxed_unsync()
        })
    }

    /// Counts the response body; `sent` is dropped when the body has been sent whole or
    /// dropped, so the record can wait for the final count.
    pub fn response(
        &self,
        response: http::Response<Body>,
        sent: oneshot::Sender<()>,
    ) -> http::Response<Body> {
        let bytes = self.response.clone();
        let abandoned = self.response_abandoned.clone();
        response.map(|body| {
            Watched {
                body: counting(body, bytes, Some(sent)).boxed_unsync(),
                ended: false,
                abandoned,
            }
            .boxed_unsync()
        })
    }

    /// Notes that the response was dropped unsent because its client went away.
    pub fn abandon_response(&self) {
        self.response_abandoned.store(true, Ordering::Relaxed);
    }

    /// The client went away before the response body was sent whole: a guest still writing it
    /// then fails through no fault of its own.
    pub fn response_abandoned(&self) -> bool {
        self.response_abandoned.load(Ordering::Relaxed)
    }

    pub fn request_bytes(&self) -> u64 {
        self.request.load(Ordering::Relaxed)
    }

    pub fn response_bytes(&self) -> u64 {
        self.response.load(Ordering::Relaxed)
    }

    /// Why the request body failed, if its client was to blame.
    pub fn request_fault(&self) -> Option<&RequestBodyError> {
        self.request_fault.get()
    }
}

fn counting(
    body: Body,
    bytes: Arc<AtomicU64>,
    sent: Option<oneshot::Sender<()>>,
) -> impl http_body::Body<Data = Bytes, Error = BoxError> {
    body.map_frame(move |frame| {
        // Owned by the closure, so it is dropped with the body.
        let _sent = &sent;
        if let Some(data) = frame.data_ref() {
            bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        frame
    })
}

/// A response body that tells, when dropped, whether it reached its end (or the guest's own
/// error): one dropped before that was abandoned by its client.
struct Watched {
    body: Body,
    ended: bool,
    abandoned: Arc<AtomicBool>,
}

impl http_body::Body for Watched {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if !self.ended && !self.body.is_end_stream() {
            self.abandoned.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::Full;

    use super::*;

    fn body(text: &'static str) -> Body {
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync()
    }

    #[tokio::test]
    async fn bodies_are_counted_and_the_response_signals_when_done() {
        let meter = Meter::default();
        let request = meter.request(http::Request::new(body("hello")));
        request.into_body().collect().await.unwrap();
        let (sent, done) = oneshot::channel();
        let response = meter.response(http::Response::new(body("hi there")), sent);
        let mut done = Box::pin(done);
        assert!(
            futures_poll_pending(&mut done),
            "not done while the body is alive"
        );
        response.into_body().collect().await.unwrap();
        assert!(done.await.is_err(), "the sender went with the body");
        assert_eq!((meter.request_bytes(), meter.response_bytes()), (5, 8));
        assert!(!meter.response_abandoned(), "sent whole");
    }

    #[tokio::test]
    async fn a_response_dropped_before_its_end_was_abandoned() {
        let (mut writer, frames) =
            futures::channel::mpsc::channel::<Result<http_body::Frame<Bytes>, BoxError>>(1);
        let streaming: Body = http_body_util::StreamBody::new(frames).boxed_unsync();
        let meter = Meter::default();
        let (sent, _done) = oneshot::channel();
        let mut body = meter
            .response(http::Response::new(streaming), sent)
            .into_body();
        writer
            .try_send(Ok(http_body::Frame::data(Bytes::from_static(b"part"))))
            .unwrap();
        body.frame().await.unwrap().unwrap();
        drop(body);
        assert!(meter.response_abandoned(), "the client left mid-body");

        let failing: Body = http_body_util::StreamBody::new(futures::stream::iter([Err::<
            http_body::Frame<Bytes>,
            BoxError,
        >(
            "the guest trapped".into(),
        )]))
        .boxed_unsync();
        let other = Meter::default();
        let (sent, _done) = oneshot::channel();
        let mut body = other
            .response(http::Response::new(failing), sent)
            .into_body();
        assert!(body.frame().await.unwrap().is_err());
        drop(body);
        assert!(
            !other.response_abandoned(),
            "the guest's failure is not the client's"
        );
    }

    #[tokio::test]
    async fn a_request_body_the_client_broke_is_noted() {
        let meter = Meter::default();
        let broken: Body = http_body_util::StreamBody::new(futures::stream::iter([
            Ok(http_body::Frame::data(Bytes::from_static(b"ab"))),
            Err(Box::new(RequestBodyError::Malformed("bad chunk".into())) as BoxError),
        ]))
        .boxed_unsync();
        let request = meter.request(http::Request::new(broken));
        assert!(request.into_body().collect().await.is_err());
        assert_eq!(
            meter.request_fault(),
            Some(&RequestBodyError::Malformed("bad chunk".into()))
        );
        assert_eq!(meter.request_bytes(), 2);

        let other = Meter::default();
        let failed: Body = http_body_util::StreamBody::new(futures::stream::iter([Err::<
            http_body::Frame<Bytes>,
            BoxError,
        >(
            "the guest's own trouble".into(),
        )]))
        .boxed_unsync();
        let request = other.request(http::Request::new(failed));
        assert!(request.into_body().collect().await.is_err());
        assert_eq!(other.request_fault(), None);
    }

    fn futures_poll_pending(receiver: &mut std::pin::Pin<Box<oneshot::Receiver<()>>>) -> bool {
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        receiver.as_mut().poll(&mut context).is_pending()
    }
}
