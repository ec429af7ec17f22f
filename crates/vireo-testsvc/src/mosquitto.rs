//! A throwaway MQTT broker: Debian's `mosquitto` on a free loopback port, anonymous, without
//! persistence and without a bound on a session's queued messages (tests publish backlogs),
//! configured and logging in a temporary directory the watchdog removes. A broker started with
//! a [`TlsIdentity`] also listens for TLS on a second port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::{StartError, TlsIdentity, Watched, free_port, which};

/// A port found free may be taken before the broker binds it; try a few.
const START_ATTEMPTS: u32 = 3;
const LOG: &str = "mosquitto.log";

/// A running broker. Dropping it stops the broker and removes its directory.
#[derive(Debug)]
pub struct Mosquitto {
    port: u16,
    tls_port: Option<u16>,
    broker: Watched,
}

impl Mosquitto {
    /// The broker every test of this process shares, started on first use. A broker that
    /// cannot start fails the calling test with the reason (never a skip).
    pub fn shared() -> &'static Mosquitto {
        static SHARED: OnceLock<Result<Mosquitto, String>> = OnceLock::new();
        match SHARED.get_or_init(|| Mosquitto::start().map_err(|e| e.to_string())) {
            Ok(broker) => broker,
            Err(reason) => panic!("the tests' MQTT broker could not start: {reason}"),
        }
    }

    pub fn start() -> Result<Mosquitto, StartError> {
        Self::start_with(None)
    }

    /// Starts a broker that also takes TLS connections as `identity`, on [`Self::tls_port`].
    pub fn start_with_tls(identity: &TlsIdentity) -> Result<Mosquitto, StartError> {
        Self::start_with(Some(identity))
    }

    fn start_with(tls: Option<&TlsIdentity>) -> Result<Mosquitto, StartError> {
        let program = which("mosquitto").ok_or(StartError::Missing {
            program: "mosquitto",
            package: "mosquitto",
        })?;
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            let tls_port = tls.map(|_| free_port()).transpose()?;
            let mut written = Ok(());
            let broker = Watched::start("mosquitto", |dir| {
                let config = dir.join("mosquitto.conf");
                let mut text = format!(
                    "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nlog_dest file {}\n",
                    dir.join(LOG).display()
                );
                if let (Some(identity), Some(tls_port)) = (tls, tls_port) {
                    // Started as root, mosquitto reads the key as its own user: a throwaway key
                    // others may read.
                    written = identity.write(dir, 0o644).map(|(cert, key)| {
                        text.push_str(&format!(
                            "listener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
                            cert.display(),
                            key.display()
                        ));
                    });
                }
                // A write that fails leaves mosquitto without its config: it then fails to
                // start, and waiting for it reports its log.
                let _ = std::fs::write(&config, text);
                let mut command = Command::new(&program);
                command.arg("-c").arg(config);
                command
            })?;
            written?;
            match broker.wait_ready(|| accepts_a_session(port), LOG) {
                Ok(()) => {
                    return Ok(Mosquitto {
                        port,
                        tls_port,
                        broker,
                    });
                }
                Err(_) if attempt < START_ATTEMPTS => attempt += 1,
                Err(error) => return Err(error),
            }
        }
    }

    /// Stops the broker (forgetting its sessions: it persists nothing); returns once its port
    /// is closed.
    pub fn stop(&mut self) -> Result<(), StartError> {
        self.broker.stop_service(self.port, LOG)
    }

    /// Starts the stopped broker again on the same port.
    pub fn start_again(&mut self) -> Result<(), StartError> {
        self.broker.start_service()?;
        let port = self.port;
        self.broker.wait_ready(|| accepts_a_session(port), LOG)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port taking TLS connections, for a broker started with a [`TlsIdentity`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The broker's URL, `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

/// An MQTT broker answers a `CONNECT` with a `CONNACK` accepting it. Checked in the protocol,
/// not by a mere connect: another test's server may have bound the port first.
fn accepts_a_session(port: u16) -> std::io::Result<()> {
    // MQTT 3.1.1 CONNECT: protocol "MQTT" level 4, clean session, keep-alive 10 s, empty
    // client id (the broker assigns one).
    const CONNECT: [u8; 14] = [0x10, 12, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 10, 0, 0];
    const ACCEPTED: [u8; 4] = [0x20, 2, 0, 0];
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(&CONNECT)?;
    let mut answer = [0u8; 4];
    stream.read_exact(&mut answer)?;
    match answer == ACCEPTED {
        true => Ok(()),
        false => Err(std::io::Error::other(format!(
            "answered CONNECT with {answer:02x?}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_starts_listens_and_is_gone_after_drop() {
        let broker = Mosquitto::start().unwrap();
        let port = broker.port();
        drop(broker);
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the broker still listens after drop"
        );
    }
}
