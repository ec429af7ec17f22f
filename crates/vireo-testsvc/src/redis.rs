//! A throwaway Redis server: Debian's `redis-server` on a free loopback port, persisting
//! nothing, in a temporary directory. As with PostgreSQL, a watchdog shell owns the server: it
//! stops it and removes the directory when its standard input ends, which happens when the test
//! process exits however it exits, or at once when the [`Redis`] is dropped. A server started
//! with a [`TlsIdentity`] also listens for TLS on a second port.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::{StartError, TlsIdentity, Watched, free_port, which};

/// A port found free may be taken before the server binds it; try a few.
const START_ATTEMPTS: u32 = 3;

/// A running server. Dropping it stops the server and removes its directory.
#[derive(Debug)]
pub struct Redis {
    port: u16,
    tls_port: Option<u16>,
    server: Watched,
}

impl Redis {
    /// The server every test of this process shares, started on first use. A server that
    /// cannot start fails the calling test with the reason (never a skip).
    pub fn shared() -> &'static Redis {
        static SHARED: OnceLock<Result<Redis, String>> = OnceLock::new();
        match SHARED.get_or_init(|| Redis::start().map_err(|e| e.to_string())) {
            Ok(server) => server,
            Err(reason) => panic!("the tests' Redis server could not start: {reason}"),
        }
    }

    /// Starts a fresh server.
    pub fn start() -> Result<Redis, StartError> {
        Self::start_with(None)
    }

    /// Starts a fresh server that also takes TLS connections as `identity`, on [`Self::tls_port`].
    pub fn start_with_tls(identity: &TlsIdentity) -> Result<Redis, StartError> {
        Self::start_with(Some(identity))
    }

    fn start_with(tls: Option<&TlsIdentity>) -> Result<Redis, StartError> {
        let program = which("redis-server").ok_or(StartError::Missing {
            program: "redis-server",
            package: "redis-server",
        })?;
        let mut attempt = 1;
        loop {
            match Self::start_once(&program, tls) {
                Ok(server) => return Ok(server),
                Err(_) if attempt < START_ATTEMPTS => attempt += 1,
                Err(error) => return Err(error),
            }
        }
    }

    fn start_once(
        program: &std::path::Path,
        tls: Option<&TlsIdentity>,
    ) -> Result<Redis, StartError> {
        let port = free_port()?;
        let tls_port = tls.map(|_| free_port()).transpose()?;
        let mut written = Ok(());
        let server = Watched::start("redis-server", |dir| {
            let mut command = Command::new(program);
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(dir)
                .arg("--logfile")
                .arg(dir.join("redis.log"));
            if let (Some(identity), Some(tls_port)) = (tls, tls_port) {
                written = identity.write(dir, 0o600).map(|(cert, key)| {
                    command
                        .args(["--tls-port", &tls_port.to_string()])
                        .arg("--tls-cert-file")
                        .arg(&cert)
                        .arg("--tls-key-file")
                        .arg(key)
                        .arg("--tls-ca-cert-file")
                        .arg(cert)
                        .args(["--tls-auth-clients", "no"]);
                });
            }
            command
        })?;
        written?;
        let redis = Redis {
            port,
            tls_port,
            server,
        };
        redis.server.wait_ready(|| redis.ping(), "redis.log")?;
        Ok(redis)
    }

    fn ping(&self) -> std::io::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        stream.write_all(b"PING\r\n")?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        if line.trim_end() == "+PONG" {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("answered {line:?}")))
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port taking TLS connections, for a server started with a [`TlsIdentity`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The server's URL, `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_starts_answers_and_is_gone_after_drop() {
        let server = Redis::start().unwrap();
        server.ping().unwrap();
        let port = server.port();
        drop(server);
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the server still listens after drop"
        );
    }
}
