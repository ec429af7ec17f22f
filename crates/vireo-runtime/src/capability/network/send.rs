//! Sends one outgoing request over HTTP/1.1 (with TLS for https) to addresses already checked.
//! Unlike `wasmtime_wasi_http`'s default sender it never resolves the URL's host itself: it
//! connects only to the addresses the policy approved, so DNS cannot be rebound in between.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsConnector;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// What a guest that sets no request options gets. The invocation's own timeout bounds every
/// outgoing request in any case.
const DEFAULT_CONNECT: Duration = Duration::from_secs(10);
const DEFAULT_FIRST_BYTE: Duration = Duration::from_secs(30);
const DEFAULT_BETWEEN_BYTES: Duration = Duration::from_secs(30);

/// Resolves when the connection is done; `wasmtime-wasi-http` drives it after the response.
pub(crate) type ConnectionFuture = Box<dyn Future<Output = Result<(), Error>> + Send>;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    /// Name resolution, TCP connect, TLS and the HTTP handshake together.
    pub connect: Duration,
    first_byte: Duration,
    between_bytes: Duration,
}

impl Timeouts {
    pub fn new(options: Option<RequestOptions>) -> Self {
        let options = options.unwrap_or_default();
        Self {
            connect: options.connect_timeout.unwrap_or(DEFAULT_CONNECT),
            first_byte: options.first_byte_timeout.unwrap_or(DEFAULT_FIRST_BYTE),
            // A zero interval never fires; one nanosecond is as good as zero.
            between_bytes: options
                .between_bytes_timeout
                .unwrap_or(DEFAULT_BETWEEN_BYTES)
                .max(Duration::from_nanos(1)),
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// Connects to the first of `addresses` that answers (over TLS verified against the name,
/// when given) before `deadline`, sends `request` and returns the response head with its body.
pub(crate) async fn send(
    mut request: http::Request<WasiBody>,
    addresses: &[SocketAddr],
    tls: Option<(ServerName<'static>, Arc<ClientConfig>)>,
    deadline: Instant,
    timeouts: Timeouts,
) -> Result<(http::Response<WasiBody>, ConnectionFuture), Error> {
    let connecting = async {
        let tcp = connect(addresses).await?;
        let stream: Box<dyn Stream> = match tls {
            Some((name, config)) => Box::new(
                TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(Error::Tls)?,
            ),
            None => Box::new(tcp),
        };
        hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(Error::from)
    };
    let (mut sender, connection) = tokio::time::timeout_at(deadline, connecting)
        .await
        .map_err(|_| Error::ConnectionTimeout)??;

    // The request line carries only the path: scheme and authority are for proxies (and the
    // host header already names the authority).
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    *request.uri_mut() = path;

    // The connection must be driven while the response is awaited.
    let mut connection = Box::pin(connection);
    let mut closed = false;
    let sent = tokio::time::timeout(timeouts.first_byte, sender.send_request(request));
    tokio::pin!(sent);
    let response = loop {
        tokio::select! {
            response = &mut sent => break response,
            done = &mut connection, if !closed => {
                done.map_err(Error::from)?;
                closed = true;
            }
        }
    };
    let response = response
        .map_err(|_| Error::ConnectionReadTimeout)?
        .map_err(Error::from)?;
    let rest: ConnectionFuture = if closed {
        Box::new(std::future::ready(Ok(())))
    } else {
        Box::new(async move { connection.await.map_err(Error::from) })
    };
    let response = response.map(|body| {
        BetweenBytes {
            body,
            timeout: timeouts.between_bytes,
            idle: Box::pin(tokio::time::sleep(timeouts.between_bytes)),
        }
        .boxed_unsync()
    });
    Ok((response, rest))
}

/// The first address that accepts, in resolver order; the last error if none does.
async fn connect(addresses: &[SocketAddr]) -> Result<TcpStream, Error> {
    let mut last = Error::DestinationNotFound;
    for address in addresses {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                last = Error::ConnectionRefused;
            }
            Err(e) => last = Error::Connect(e),
        }
    }
    Err(last)
}

/// A response body that fails with `connection-read-timeout` when no frame arrives for
/// `timeout`.
struct BetweenBytes {
    body: Incoming,
    timeout: Duration,
    idle: Pin<Box<Sleep>>,
}

impl http_body::Body for BetweenBytes {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.idle.as_mut().reset(Instant::now() + this.timeout);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Error::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(this.idle.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
