//! Makes and checks the pooled Redis connections of one destination: a TCP connection to the
//! approved address, over TLS for `rediss://` (verified against the name the guest gave), then
//! the client's handshake (`AUTH`, `SELECT`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use deadpool::managed::{Manager, Metrics, RecycleError, RecycleResult};
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisConnectionInfo};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// TLS to a server, verified against its name.
pub(crate) struct Tls {
    pub name: ServerName<'static>,
    pub config: Arc<ClientConfig>,
}

/// Connections to one approved address, with one set of credentials.
pub(crate) struct Connections {
    info: RedisConnectionInfo,
    address: SocketAddr,
    tls: Option<Tls>,
    /// Numbers each recycle's ping, so a stale reply cannot pass for its answer.
    pings: AtomicU64,
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

impl Connections {
    pub fn new(info: RedisConnectionInfo, address: SocketAddr, tls: Option<Tls>) -> Self {
        Self {
            info,
            address,
            tls,
            pings: AtomicU64::new(0),
        }
    }
}

impl Manager for Connections {
    type Type = MultiplexedConnection;
    type Error = String;

    /// Connecting and the handshake are bounded by the pool's create timeout
    /// (`connect_timeout_ms`).
    async fn create(&self) -> Result<MultiplexedConnection, String> {
        let tcp = TcpStream::connect(self.address)
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        let _ = tcp.set_nodelay(true);
        let stream: Box<dyn Stream> = match &self.tls {
            Some(tls) => Box::new(
                TlsConnector::from(tls.config.clone())
                    .connect(tls.name.clone(), tcp)
                    .await
                    .map_err(|e| format!("TLS: {e}"))?,
            ),
            None => Box::new(tcp),
        };
        // No response timeout of the client's own: the call timeout decides, and closes the
        // connection rather than leave a late reply in its pipeline.
        let config = AsyncConnectionConfig::new().set_response_timeout(None);
        let (connection, driver) =
            MultiplexedConnection::new_with_config(&self.info, stream, config)
                .await
                .map_err(|e| e.to_string())?;
        // Ends when the last handle on the connection is dropped.
        tokio::spawn(driver);
        Ok(connection)
    }

    /// A connection goes back into use only if it answers its own `PING`: one left inside a
    /// `MULTI` (which would queue the ping) or broken is dropped. `UNWATCH` ends any `WATCH`.
    async fn recycle(
        &self,
        connection: &mut MultiplexedConnection,
        _: &Metrics,
    ) -> RecycleResult<String> {
        let ping = self.pings.fetch_add(1, Ordering::Relaxed).to_string();
        let (answer,): (String,) = redis::pipe()
            .cmd("UNWATCH")
            .ignore()
            .cmd("PING")
            .arg(&ping)
            .query_async(connection)
            .await
            .map_err(|e| RecycleError::Message(e.to_string().into()))?;
        match answer == ping {
            true => Ok(()),
            false => Err(RecycleError::message(
                "the connection did not answer its ping",
            )),
        }
    }
}
