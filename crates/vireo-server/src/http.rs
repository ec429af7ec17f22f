//! The HTTP/1 listener: hyper connections with the limits a public endpoint needs, closed
//! gracefully at shutdown. (axum's own `serve` cannot set a header-read timeout.)

use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// The whole request head must arrive within this, or the connection is closed.
    pub header_read_timeout: Duration,
    /// The gateway answers a larger request head 431; hyper's buffer has room for twice this.
    pub max_header_bytes: usize,
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
        // hyper bounds its read buffer, not the head (the gateway measures that): with room for
        // twice the limit, a head over it is most often answered 431 with a JSON body by the
        // gateway; hyper's own bodiless 431 only stops heads larger still.
        .max_buf_size(limits.max_header_bytes.saturating_mul(2));
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
