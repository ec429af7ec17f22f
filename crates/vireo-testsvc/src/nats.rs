//! A throwaway NATS server with JetStream: Debian's `nats-server` on a free loopback port,
//! storing its streams in a temporary directory the watchdog removes. It can be stopped and
//! started again on the same port with the same streams, for outage tests. A server started
//! with a [`TlsIdentity`] takes TLS connections only (as NATS does once TLS is configured).

use std::io::{BufRead as _, BufReader};
use std::net::TcpStream;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::{StartError, TlsIdentity, Watched, free_port, which};

/// A port found free may be taken before the server binds it; try a few.
const START_ATTEMPTS: u32 = 3;
const LOG: &str = "nats.log";

/// A running server. Dropping it stops the server and removes its directory.
#[derive(Debug)]
pub struct Nats {
    port: u16,
    server: Watched,
}

impl Nats {
    /// The server every test of this process shares, started on first use. A server that
    /// cannot start fails the calling test with the reason (never a skip).
    pub fn shared() -> &'static Nats {
        static SHARED: OnceLock<Result<Nats, String>> = OnceLock::new();
        match SHARED.get_or_init(|| Nats::start().map_err(|e| e.to_string())) {
            Ok(server) => server,
            Err(reason) => panic!("the tests' NATS server could not start: {reason}"),
        }
    }

    /// Starts a fresh server with JetStream enabled.
    pub fn start() -> Result<Nats, StartError> {
        Self::start_with(None)
    }

    /// Starts a fresh server with JetStream that takes only TLS connections, as `identity`.
    pub fn start_with_tls(identity: &TlsIdentity) -> Result<Nats, StartError> {
        Self::start_with(Some(identity))
    }

    fn start_with(tls: Option<&TlsIdentity>) -> Result<Nats, StartError> {
        let program = which("nats-server").ok_or(StartError::Missing {
            program: "nats-server",
            package: "nats-server",
        })?;
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            let mut written = Ok(());
            let server = Watched::start("nats", |dir| {
                let mut command = Command::new(&program);
                command
                    .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string()])
                    .arg("-sd")
                    .arg(dir.join("jetstream"))
                    .arg("-l")
                    .arg(dir.join(LOG));
                if let Some(identity) = tls {
                    written = identity.write(dir, 0o600).map(|(cert, key)| {
                        command
                            .arg("--tls")
                            .arg("--tlscert")
                            .arg(cert)
                            .arg("--tlskey")
                            .arg(key);
                    });
                }
                command
            })?;
            written?;
            let nats = Nats { port, server };
            match nats.wait_ready() {
                Ok(()) => return Ok(nats),
                Err(_) if attempt < START_ATTEMPTS => attempt += 1,
                Err(error) => return Err(error),
            }
        }
    }

    fn wait_ready(&self) -> Result<(), StartError> {
        self.server.wait_ready(|| self.greets(), LOG)
    }

    /// A NATS server greets a client with its `INFO`.
    fn greets(&self) -> std::io::Result<()> {
        let stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(1)))?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line)?;
        if line.starts_with("INFO ") {
            Ok(())
        } else {
            Err(std::io::Error::other(format!("greeted with {line:?}")))
        }
    }

    /// Stops the server, keeping its streams; returns once its port is closed.
    pub fn stop(&mut self) -> Result<(), StartError> {
        self.server.stop_service(self.port, LOG)
    }

    /// Starts the stopped server again, on the same port with the same streams.
    pub fn start_again(&mut self) -> Result<(), StartError> {
        self.server.start_service()?;
        self.wait_ready()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_starts_stops_starts_again_and_is_gone_after_drop() {
        let mut server = Nats::start().unwrap();
        server.greets().unwrap();
        server.stop().unwrap();
        assert!(server.greets().is_err(), "a stopped server still answers");
        server.start_again().unwrap();
        server.greets().unwrap();
        let port = server.port();
        let dir = server.server.dir.clone();
        drop(server);
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the server still listens after drop"
        );
        assert!(!dir.exists(), "the directory is left behind");
    }
}
