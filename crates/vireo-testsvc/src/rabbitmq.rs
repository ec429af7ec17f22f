//! A throwaway RabbitMQ broker: Debian's `rabbitmq-server` as a node of its own (its name,
//! AMQP port, distribution port and Erlang port mapper all private and on loopback), keeping
//! its queues in a temporary directory the watchdog removes. It can be stopped and started
//! again on the same port with the same durable queues, for outage tests. A broker started with
//! a [`TlsIdentity`] also takes TLS connections (`amqps://`) on a second port.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::{StartError, TlsIdentity, Watched, free_port, io, which};

/// Where Debian keeps the server's own start script (`/usr/sbin/rabbitmq-server` only switches
/// to the `rabbitmq` user and the system's node).
const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
/// An Erlang VM booting RabbitMQ on a busy 2-core machine takes 10 to 20 seconds.
const READY_WITHIN: Duration = Duration::from_secs(90);
/// A port found free may be taken before the server binds it; try a few.
const START_ATTEMPTS: u32 = 3;
/// The protocol header an AMQP 0-9-1 client opens with.
const AMQP_HEADER: &[u8] = b"AMQP\x00\x00\x09\x01";

/// A running broker with the default `guest` user (password `guest`), which RabbitMQ lets in
/// from loopback only. Dropping it stops the broker and removes its directory.
#[derive(Debug)]
pub struct RabbitMq {
    port: u16,
    tls_port: Option<u16>,
    log: String,
    // Dropped in this order: the broker stops before the port mapper it registered with.
    server: Watched,
    _port_mapper: Watched,
}

impl RabbitMq {
    /// The broker every test of this process shares, started on first use. A broker that
    /// cannot start fails the calling test with the reason (never a skip).
    pub fn shared() -> &'static RabbitMq {
        static SHARED: OnceLock<Result<RabbitMq, String>> = OnceLock::new();
        match SHARED.get_or_init(|| RabbitMq::start().map_err(|e| e.to_string())) {
            Ok(broker) => broker,
            Err(reason) => panic!("the tests' RabbitMQ broker could not start: {reason}"),
        }
    }

    /// Starts a fresh broker.
    pub fn start() -> Result<RabbitMq, StartError> {
        Self::start_with(None)
    }

    /// Starts a fresh broker that also takes TLS connections as `identity`, on
    /// [`Self::tls_port`].
    pub fn start_with_tls(identity: &TlsIdentity) -> Result<RabbitMq, StartError> {
        Self::start_with(Some(identity))
    }

    fn start_with(tls: Option<&TlsIdentity>) -> Result<RabbitMq, StartError> {
        let missing = StartError::Missing {
            program: "rabbitmq-server",
            package: "rabbitmq-server",
        };
        if !Path::new(SERVER).is_file() {
            return Err(missing);
        }
        let epmd = which("epmd").ok_or(missing)?;
        let mut attempt = 1;
        loop {
            match Self::start_on_free_ports(&epmd, tls) {
                Ok(broker) => return Ok(broker),
                Err(_) if attempt < START_ATTEMPTS => attempt += 1,
                Err(error) => return Err(error),
            }
        }
    }

    fn start_on_free_ports(epmd: &Path, tls: Option<&TlsIdentity>) -> Result<RabbitMq, StartError> {
        let mapper_port = free_port()?;
        let port_mapper = Watched::start("epmd", |_| {
            let mut command = Command::new(epmd);
            command.args(["-address", "127.0.0.1", "-port", &mapper_port.to_string()]);
            command
        })?;
        port_mapper.wait_ready(
            || TcpStream::connect(("127.0.0.1", mapper_port)).map(drop),
            "epmd",
        )?;
        let port = free_port()?;
        let distribution_port = free_port()?;
        let tls_port = tls.map(|_| free_port()).transpose()?;
        let node = format!("vireo{port}@localhost");
        let mut written = Ok(());
        let server = Watched::start("rabbitmq", |dir| {
            written = std::fs::write(dir.join("enabled_plugins"), "[].\n")
                .map_err(io("writing the broker's plugin list"));
            if let (Some(identity), Some(tls_port), Ok(())) = (tls, tls_port, &written) {
                written = write_tls_config(dir, identity, tls_port);
            }
            let mut command = Command::new("env");
            command.args(node_environment(
                dir,
                &node,
                port,
                distribution_port,
                mapper_port,
            ));
            command.arg(SERVER);
            command
        })?;
        written?;
        let broker = RabbitMq {
            port,
            tls_port,
            log: format!("log/{node}.log"),
            server,
            _port_mapper: port_mapper,
        };
        broker.wait_ready()?;
        Ok(broker)
    }

    fn wait_ready(&self) -> Result<(), StartError> {
        self.server
            .wait_ready_within(|| self.greets(), &self.log, READY_WITHIN)
    }

    /// A RabbitMQ broker answers the AMQP header with a `connection.start` method frame.
    fn greets(&self) -> std::io::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(AMQP_HEADER)?;
        let mut frame_type = [0u8; 1];
        stream.read_exact(&mut frame_type)?;
        match frame_type {
            [1] => Ok(()),
            other => Err(std::io::Error::other(format!(
                "answered with frame type {other:?}"
            ))),
        }
    }

    /// Stops the broker, keeping its queues; returns once its port is closed.
    pub fn stop(&mut self) -> Result<(), StartError> {
        self.server.stop_service(self.port, &self.log.clone())
    }

    /// Starts the stopped broker again, on the same port with the same durable queues.
    pub fn start_again(&mut self) -> Result<(), StartError> {
        self.server.start_service()?;
        self.wait_ready()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port taking TLS connections, for a broker started with a [`TlsIdentity`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls_port
    }

    /// The URL of the default virtual host as user `guest`, without the password (which is
    /// `guest`): `amqp://guest@127.0.0.1:PORT/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The same with the password, for the tests' own publishers.
    pub fn url_with_password(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }
}

/// `rabbitmq.conf` (the file `RABBITMQ_CONFIG_FILE` names, with its extension): a TLS listener
/// on `tls_port` as `identity`, asking clients for no certificate.
fn write_tls_config(dir: &Path, identity: &TlsIdentity, tls_port: u16) -> Result<(), StartError> {
    let (cert, key) = identity.write(dir, 0o600)?;
    let config = format!(
        "listeners.ssl.default = 127.0.0.1:{tls_port}\nssl_options.certfile = {}\nssl_options.keyfile = {}\nssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n",
        cert.display(),
        key.display()
    );
    std::fs::write(dir.join("rabbitmq.conf"), config).map_err(io("writing rabbitmq.conf"))
}

/// `NAME=VALUE` settings that make `rabbitmq-server` a private node in `dir`: everything it
/// writes stays there, and everything it listens on is on loopback at the given ports.
fn node_environment(
    dir: &Path,
    node: &str,
    port: u16,
    distribution_port: u16,
    mapper_port: u16,
) -> Vec<String> {
    let path = |name: &str| -> PathBuf { dir.join(name) };
    [
        // The Erlang cookie is written under HOME.
        ("HOME", path("").display().to_string()),
        ("RABBITMQ_NODENAME", node.to_string()),
        ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".to_string()),
        ("RABBITMQ_NODE_PORT", port.to_string()),
        ("RABBITMQ_DIST_PORT", distribution_port.to_string()),
        ("ERL_EPMD_ADDRESS", "127.0.0.1".to_string()),
        ("ERL_EPMD_PORT", mapper_port.to_string()),
        ("RABBITMQ_MNESIA_BASE", path("mnesia").display().to_string()),
        ("RABBITMQ_LOG_BASE", path("log").display().to_string()),
        (
            "RABBITMQ_ENABLED_PLUGINS_FILE",
            path("enabled_plugins").display().to_string(),
        ),
        (
            "RABBITMQ_PLUGINS_EXPAND_DIR",
            path("plugins").display().to_string(),
        ),
        // Files that do not exist: no system configuration applies.
        (
            "RABBITMQ_CONFIG_FILE",
            path("rabbitmq").display().to_string(),
        ),
        (
            "RABBITMQ_ADVANCED_CONFIG_FILE",
            path("advanced.config").display().to_string(),
        ),
        (
            "RABBITMQ_CONF_ENV_FILE",
            path("rabbitmq-env.conf").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(name, value)| format!("{name}={value}"))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_starts_stops_starts_again_and_is_gone_after_drop() {
        let mut broker = RabbitMq::start().unwrap();
        broker.greets().unwrap();
        broker.stop().unwrap();
        assert!(broker.greets().is_err(), "a stopped broker still answers");
        broker.start_again().unwrap();
        broker.greets().unwrap();
        let port = broker.port();
        let dir = broker.server.dir.clone();
        drop(broker);
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the broker still listens after drop"
        );
        assert!(!dir.exists(), "the directory is left behind");
    }
}
