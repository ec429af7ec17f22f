//! A throwaway MariaDB server: Debian's `mariadb-install-db` and `mariadbd` in a temporary
//! directory, on a free loopback port, root without a password (trusted on loopback only),
//! without binary logs. The watchdog stops it and removes the directory.

use std::io::Read;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{StartError, Watched, free_port, io, which};

/// A port found free may be taken before the server binds it; try a few.
const START_ATTEMPTS: u32 = 3;

/// A running server. Dropping it stops the server and removes its directory.
#[derive(Debug)]
pub struct MariaDb {
    port: u16,
    _server: Watched,
}

impl MariaDb {
    /// The server every test of this process shares, started on first use. A server that
    /// cannot start fails the calling test with the reason (never a skip).
    pub fn shared() -> &'static MariaDb {
        static SHARED: OnceLock<Result<MariaDb, String>> = OnceLock::new();
        match SHARED.get_or_init(|| MariaDb::start().map_err(|e| e.to_string())) {
            Ok(server) => server,
            Err(reason) => panic!("the tests' MariaDB server could not start: {reason}"),
        }
    }

    pub fn start() -> Result<MariaDb, StartError> {
        let missing = |program| StartError::Missing {
            program,
            package: "mariadb-server",
        };
        let install = which("mariadb-install-db").ok_or(missing("mariadb-install-db"))?;
        let server = which("mariadbd").ok_or(missing("mariadbd"))?;
        let mut attempt = 1;
        loop {
            let port = free_port()?;
            let mut installed = Ok(());
            let watched = Watched::start("mariadb", |dir| {
                installed = run_install(&install, dir);
                let mut command = Command::new(&server);
                command
                    .arg("--no-defaults")
                    .arg(format!("--datadir={}", dir.join("data").display()))
                    .arg(format!("--socket={}", dir.join("mariadb.sock").display()))
                    .arg(format!("--log-error={}", dir.join("mariadb.log").display()))
                    .arg(format!("--pid-file={}", dir.join("mariadb.pid").display()))
                    .args(["--user=root", "--bind-address=127.0.0.1", "--skip-log-bin"])
                    .arg(format!("--port={port}"));
                command
            })?;
            installed?;
            match watched.wait_ready(|| greets(port), "mariadb.log") {
                Ok(()) => {
                    return Ok(MariaDb {
                        port,
                        _server: watched,
                    });
                }
                Err(_) if attempt < START_ATTEMPTS => attempt += 1,
                Err(error) => return Err(error),
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates an empty database with a name unique in this process, and returns its URL.
    pub fn create_database(&self) -> Result<String, StartError> {
        static CREATED: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            CREATED.fetch_add(1, Ordering::Relaxed)
        );
        let client = which("mariadb").ok_or(StartError::Missing {
            program: "mariadb",
            package: "mariadb-client",
        })?;
        let output = Command::new(client)
            .args(["--no-defaults", "-h", "127.0.0.1", "-u", "root"])
            .arg(format!("--port={}", self.port))
            .args(["-e", &format!("CREATE DATABASE {name}")])
            .stdin(Stdio::null())
            .output()
            .map_err(io("running mariadb"))?;
        if !output.status.success() {
            return Err(StartError::Command {
                what: "CREATE DATABASE".into(),
                status: output.status,
                output: String::from_utf8_lossy(&output.stderr).to_string(),
            });
        }
        Ok(format!("mysql://root@127.0.0.1:{}/{name}", self.port))
    }
}

/// Initialises the data directory under `dir`.
fn run_install(program: &std::path::Path, dir: &std::path::Path) -> Result<(), StartError> {
    let output = Command::new(program)
        .arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .args([
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(io("running mariadb-install-db"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(StartError::Command {
        what: "mariadb-install-db".into(),
        status: output.status,
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

/// A MariaDB server greets a client with its handshake packet, protocol version 10. Checked in
/// the protocol, not by a mere connect: another test's server may have bound the port first.
fn greets(port: u16) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(1)))?;
    // A packet starts with its 3-byte length and sequence number.
    let mut start = [0u8; 5];
    stream.read_exact(&mut start)?;
    match start[4] {
        10 => Ok(()),
        other => Err(std::io::Error::other(format!(
            "greeted with protocol version {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_starts_takes_databases_and_is_gone_after_drop() {
        let server = MariaDb::start().unwrap();
        let url = server.create_database().unwrap();
        assert!(url.starts_with(&format!("mysql://root@127.0.0.1:{}/test_", server.port())));
        let port = server.port();
        drop(server);
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the server still listens after drop"
        );
    }
}
