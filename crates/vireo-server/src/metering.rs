//! Counts the body bytes an invocation reads and sends, for its usage record.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http_body_util::BodyExt as _;
use tokio::sync::oneshot;
use vireo_core::Body;

#[derive(Default)]
pub struct Meter {
    request: Arc<AtomicU64>,
    response: Arc<AtomicU64>,
}

impl Meter {
    pub fn request(&self, request: http::Request<Body>) -> http::Request<Body> {
        let bytes = self.request.clone();
        request.map(|body| counted(body, bytes, None))
    }

    /// Counts the response body; `sent` is dropped when the body has been sent whole or
    /// dropped, so the record can wait for the final count.
    pub fn response(
        &self,
        response: http::Response<Body>,
        sent: oneshot::Sender<()>,
    ) -> http::Response<Body> {
        let bytes = self.response.clone();
        response.map(|body| counted(body, bytes, Some(sent)))
    }

    pub fn request_bytes(&self) -> u64 {
        self.request.load(Ordering::Relaxed)
    }

    pub fn response_bytes(&self) -> u64 {
        self.response.load(Ordering::Relaxed)
    }
}

fn counted(body: Body, bytes: Arc<AtomicU64>, sent: Option<oneshot::Sender<()>>) -> Body {
    body.map_frame(move |frame| {
        // Owned by the closure, so it is dropped with the body.
        let _sent = &sent;
        if let Some(data) = frame.data_ref() {
            bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        }
        frame
    })
    .boxed_unsync()
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
    }

    fn futures_poll_pending(receiver: &mut std::pin::Pin<Box<oneshot::Receiver<()>>>) -> bool {
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        receiver.as_mut().poll(&mut context).is_pending()
    }
}
