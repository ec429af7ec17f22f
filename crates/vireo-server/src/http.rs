//! The HTTP/1 listener: hyper connections with the limits a public endpoint needs, over plain
//! TCP or TLS, closed gracefully at shutdown. (axum's own `serve` cannot set a header-read
//! timeout.)

use std::io;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;
use vireo_core::invoke::Peer;

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// The whole request head must arrive within this, or the connection is closed.
    pub header_read_timeout: Duration,
    /// The gateway answers a larger request head 431; hyper's buffer has room for twice this.
    pub max_header_bytes: usize,
}

/// Serves `app` until `shutdown`, then stops accepting and waits for open connections to finish
/// their requests (the caller bounds that wait). With `tls`, every connection is HTTPS.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
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
    let mut failures = AcceptFailures::default();
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    failures.recovered();
                    (stream, addr)
                }
                Err(error) => {
                    if let Some(pause) = failures.failed(&error) {
                        tokio::select! {
                            () = tokio::time::sleep(pause) => {}
                            () = shutdown.cancelled() => break,
                        }
                    }
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            http: connections.clone(),
            app: app.clone(),
            watcher: graceful.watcher(),
            peer: Peer {
                addr,
                tls: tls.is_some(),
            },
        };
        match &tls {
            None => {
                tokio::spawn(connection.serve(stream));
            }
            Some(acceptor) => {
                let handshake = Handshake {
                    acceptor: acceptor.clone(),
                    deadline: limits.header_read_timeout,
                    shutdown: shutdown.clone(),
                };
                tokio::spawn(async move {
                    if let Some(stream) = handshake.complete(stream).await {
                        connection.serve(stream).await;
                    }
                });
            }
        }
    }
    drop(listener);
    graceful.shutdown().await;
}

/// One accepted connection, served until it ends or shutdown has let its last request finish.
struct Connection {
    http: http1::Builder,
    app: Router,
    watcher: Watcher,
    peer: Peer,
}

impl Connection {
    async fn serve(self, stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static) {
        // Every request carries the connection it came on (the client's address, for
        // functions that ask for it).
        let peer = self.peer;
        let app = self
            .app
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(peer);
                request
            });
        let service = TowerToHyperService::new(app);
        let connection = self
            .watcher
            .watch(self.http.serve_connection(TokioIo::new(stream), service));
        if let Err(error) = connection.await {
            tracing::debug!(%error, "connection ended with an error");
        }
    }
}

/// A TLS handshake, bounded like a request head: a client that stalls in it (slowloris), fails
/// it or speaks plain HTTP is dropped without an answer, and alone.
struct Handshake {
    acceptor: TlsAcceptor,
    deadline: Duration,
    shutdown: CancellationToken,
}

impl Handshake {
    async fn complete(
        self,
        stream: TcpStream,
    ) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(self.deadline, self.acceptor.accept(stream)) => outcome,
            () = self.shutdown.cancelled() => return None,
        };
        match outcome {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(error)) => {
                tracing::debug!(%error, "TLS handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(deadline = ?self.deadline, "TLS handshake not finished in time");
                None
            }
        }
    }
}

/// The accept loop's failures. One connection's (reset before it was accepted) are passed
/// over; the process's (out of file descriptors or memory) leave the connection waiting in the
/// backlog, so the loop pauses — briefly, doubling while they last, so it neither spins nor
/// leaves freed descriptors unused for long — and warns at most once per interval, with a count.
#[derive(Default)]
struct AcceptFailures {
    pause: Option<Duration>,
    unreported: u64,
    last_report: Option<Instant>,
}

impl AcceptFailures {
    const FIRST_PAUSE: Duration = Duration::from_millis(1);
    const LONGEST_PAUSE: Duration = Duration::from_millis(50);
    const REPORT_INTERVAL: Duration = Duration::from_secs(1);

    /// How long to pause before accepting again, if at all.
    fn failed(&mut self, error: &io::Error) -> Option<Duration> {
        if matches!(
            error.kind(),
            io::ErrorKind::ConnectionAborted
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::Interrupted
        ) {
            tracing::debug!(%error, "a connection ended before it was accepted");
            return None;
        }
        self.unreported += 1;
        if self
            .last_report
            .is_none_or(|at| at.elapsed() >= Self::REPORT_INTERVAL)
        {
            tracing::warn!(%error, failures = self.unreported, "accepting connections failed; retrying");
            self.unreported = 0;
            self.last_report = Some(Instant::now());
        }
        let pause = self.pause.map_or(Self::FIRST_PAUSE, |pause| {
            (pause * 2).min(Self::LONGEST_PAUSE)
        });
        self.pause = Some(pause);
        Some(pause)
    }

    fn recovered(&mut self) {
        if self.pause.take().is_some() && self.unreported > 0 {
            tracing::warn!(failures = self.unreported, "accepting connections again");
            self.unreported = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_costs_no_pause() {
        let mut failures = AcceptFailures::default();
        let reset = io::Error::from(io::ErrorKind::ConnectionAborted);
        assert_eq!(failures.failed(&reset), None);
    }

    #[test]
    fn running_out_of_descriptors_pauses_longer_each_time_until_recovered() {
        let mut failures = AcceptFailures::default();
        let emfile = io::Error::from_raw_os_error(24);
        let pauses: Vec<_> = (0..8).filter_map(|_| failures.failed(&emfile)).collect();
        assert_eq!(pauses[0], AcceptFailures::FIRST_PAUSE);
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*pauses.last().unwrap(), AcceptFailures::LONGEST_PAUSE);
        failures.recovered();
        assert_eq!(failures.failed(&emfile), Some(AcceptFailures::FIRST_PAUSE));
    }
}
