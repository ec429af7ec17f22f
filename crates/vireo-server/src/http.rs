//! The HTTP/1 listener: hyper connections with the limits a public endpoint needs, closed
//! gracefully at shutdown. (axum's own `serve` cannot set a header-read timeout.)

use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vireo_gateway::error::ApiError;

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// The whole request head must arrive within this, or the connection is closed.
    pub header_read_timeout: Duration,
    /// A larger request head is answered 431.
    pub max_header_bytes: usize,
}

/// The size of a request's head as it came on the wire: request line, header lines, blank line.
fn head_bytes(request: &Request) -> usize {
    let target = request
        .uri()
        .path_and_query()
        .map_or(1, |t| t.as_str().len());
    let request_line = request.method().as_str().len() + 1 + target + " HTTP/1.1\r\n".len();
    let header_lines: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + ": ".len() + value.len() + "\r\n".len())
        .sum();
    request_line + header_lines + "\r\n".len()
}

/// 431 for a head over the limit. hyper's `max_buf_size` bounds its read buffer, not the head:
/// a head that arrives in one read is parsed whole however large, so the limit is checked here,
/// on what was parsed, wherever the bytes came from.
async fn limit_heads(max_header_bytes: usize, request: Request, next: Next) -> Response {
    let size = head_bytes(&request);
    if size > max_header_bytes {
        return ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "header_too_large",
            format!("the request head is {size} bytes; this server's limit is {max_header_bytes}"),
        )
        .into_response();
    }
    next.run(request).await
}

/// Serves `app` until `shutdown`, then stops accepting and waits for open connections to finish
/// their requests (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let mut connections = http1::Builder::new();
    connections
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // Room for twice the limit, so a head over it is most often answered by `limit_heads`
        // (431 with a JSON body); hyper's own 431 (no body) only stops heads larger still.
        .max_buf_size(limits.max_header_bytes.saturating_mul(2));
    let max_header_bytes = limits.max_header_bytes;
    let app = app.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| limit_heads(max_header_bytes, request, next),
    ));
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection =
            graceful.watch(connections.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_is_measured_as_it_was_sent() {
        let request = Request::builder()
            .method("POST")
            .uri("/fn/default/hello/?x=1")
            .header("host", "localhost")
            .header("x-padding", "a".repeat(100))
            .body(axum::body::Body::empty())
            .unwrap();
        let wire = format!(
            "POST /fn/default/hello/?x=1 HTTP/1.1\r\nhost: localhost\r\nx-padding: {}\r\n\r\n",
            "a".repeat(100)
        );
        assert_eq!(head_bytes(&request), wire.len());
    }
}
