//! A request lent to a reused instance: it can be taken back, whole, as long as the guest has
//! not started reading its body. Some guests (componentize-js) serve only one request per
//! instance and return without answering any later one; such a request goes to a fresh
//! instance instead of failing, which is safe only because the guest never saw its body.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri, Version};
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt as _;
use vireo_core::{Body, BoxError};

/// The body, until the guest polls it for the first time.
type Slot = Arc<Mutex<Option<Body>>>;

/// What is needed to build the request again.
pub(crate) struct Lent {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Slot,
}

/// Hands out a copy of `request` whose body stays reclaimable until it is first read.
pub(crate) fn lend(request: Request<Body>) -> (Request<Body>, Lent) {
    let (parts, body) = request.into_parts();
    let slot: Slot = Arc::new(Mutex::new(Some(body)));
    let lent = Lent {
        method: parts.method.clone(),
        uri: parts.uri.clone(),
        version: parts.version,
        headers: parts.headers.clone(),
        body: slot.clone(),
    };
    let body = LentBody { slot, taken: None }.boxed_unsync();
    (Request::from_parts(parts, body), lent)
}

impl Lent {
    /// The request again, if the guest never read its body.
    pub(crate) fn reclaim(self) -> Option<Request<Body>> {
        let body = lock(&self.body).take()?;
        let mut request = Request::new(body);
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers;
        Some(request)
    }
}

struct LentBody {
    slot: Slot,
    /// The body once read from: it is the guest's from then on.
    taken: Option<Body>,
}

impl http_body::Body for LentBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if this.taken.is_none() {
            this.taken = lock(&this.slot).take();
        }
        match this.taken.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.taken {
            Some(body) => body.is_end_stream(),
            None => lock(&self.slot).as_ref().is_none_or(|b| b.is_end_stream()),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.taken {
            Some(body) => body.size_hint(),
            None => lock(&self.slot)
                .as_ref()
                .map_or_else(|| SizeHint::with_exact(0), |b| b.size_hint()),
        }
    }
}

fn lock(slot: &Slot) -> MutexGuard<'_, Option<Body>> {
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use http_body::Body as _;
    use http_body_util::{BodyExt as _, Full};

    use super::*;

    fn request(body: &'static str) -> Request<Body> {
        Request::post("http://h/p?q=1")
            .header("x-a", "1")
            .body(
                Full::new(Bytes::from(body))
                    .map_err(BoxError::from)
                    .boxed_unsync(),
            )
            .unwrap()
    }

    #[tokio::test]
    async fn an_unread_request_comes_back_whole() {
        let (lent_request, lent) = lend(request("payload"));
        assert_eq!(lent_request.body().size_hint().exact(), Some(7));
        drop(lent_request);
        let back = lent.reclaim().expect("the body was never read");
        assert_eq!(back.method(), Method::POST);
        assert_eq!(back.uri(), "http://h/p?q=1");
        assert_eq!(back.headers()["x-a"], "1");
        let body = back.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "payload");
    }

    #[tokio::test]
    async fn a_read_request_is_the_guests() {
        let (lent_request, lent) = lend(request("payload"));
        let body = lent_request.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, "payload");
        assert!(lent.reclaim().is_none());
    }
}
