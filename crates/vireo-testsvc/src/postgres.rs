//! A throwaway PostgreSQL server: `initdb` into a temporary directory, `pg_ctl start` on a free
//! loopback port with its unix socket in that directory, one database per test on request.
//!
//! As root (as on CI machines and containers), every PostgreSQL tool runs as the `postgres`
//! user through `runuser`, since `initdb` refuses root. The server is stopped, and its
//! directory removed, by a watchdog shell that waits for the end of its standard input: the
//! write end is held only by the test process, so the watchdog acts when that process exits,
//! whether it returns, panics or is killed. Dropping a [`Postgres`] stops it at once.

use std::io::Write as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::{TlsIdentity, free_port, io};

/// The superuser `initdb` creates; the tests connect as it, trusted on loopback only.
const SUPERUSER: &str = "postgres";
/// The OS user PostgreSQL runs as when the tests run as root.
const OS_USER: &str = "postgres";
/// A port found free may be taken before the server binds it; try a few.
const START_ATTEMPTS: u32 = 3;
/// Settings for a server whose data is thrown away: no syncing, room for parallel tests.
const SERVER_SETTINGS: &[&str] = &[
    "listen_addresses=127.0.0.1",
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=400",
];

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "`{program}` is not installed (install Debian's `{package}` package; scripts/test.sh does)"
    )]
    Missing {
        program: &'static str,
        package: &'static str,
    },
    #[error("{what} did not become ready; its log:\n{log}")]
    NotReady { what: String, log: String },
    #[error(
        "no PostgreSQL server binaries: neither `pg_config --bindir` nor /usr/lib/postgresql/*/bin \
         has initdb and pg_ctl (install Debian's `postgresql` package; scripts/test.sh does)"
    )]
    NotInstalled,
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what} failed ({status}): {output}")]
    Command {
        what: String,
        status: std::process::ExitStatus,
        output: String,
    },
}

/// A running server. Dropping it stops the server and removes its directory.
#[derive(Debug)]
pub struct Postgres {
    bin: PathBuf,
    /// The server's directory: `data/`, the log and the unix socket.
    root: PathBuf,
    port: u16,
    as_postgres: bool,
    /// Takes TLS connections too, as the identity in `server.crt` and `server.key`.
    tls: bool,
    /// Closing it tells the watchdog to stop the server.
    watchdog_stdin: Option<ChildStdin>,
    watchdog: Child,
}

impl Postgres {
    /// The server every test of this process shares, started on first use. A server that
    /// cannot start fails the calling test with the reason (never a skip).
    pub fn shared() -> &'static Postgres {
        static SHARED: OnceLock<Result<Postgres, String>> = OnceLock::new();
        match SHARED.get_or_init(|| Postgres::start().map_err(|e| e.to_string())) {
            Ok(server) => server,
            Err(reason) => panic!("the tests' PostgreSQL server could not start: {reason}"),
        }
    }

    /// Starts a fresh server.
    pub fn start() -> Result<Postgres, StartError> {
        Self::start_with(None)
    }

    /// Starts a fresh server that also takes TLS connections (`sslmode=require`) as `identity`.
    pub fn start_with_tls(identity: &TlsIdentity) -> Result<Postgres, StartError> {
        Self::start_with(Some(identity))
    }

    fn start_with(tls: Option<&TlsIdentity>) -> Result<Postgres, StartError> {
        let bin = find_bindir().ok_or(StartError::NotInstalled)?;
        let as_postgres = running_as_root();
        let root = tempfile::Builder::new()
            .prefix("vireo-pg-")
            .tempdir()
            .map_err(io("creating the server's directory"))?
            .keep();
        // From here on the watchdog owns the directory: it removes it when this process ends.
        let (watchdog, watchdog_stdin) = spawn_watchdog(&bin, &root, as_postgres)?;
        let mut server = Postgres {
            bin,
            root: root.clone(),
            port: 0,
            as_postgres,
            tls: tls.is_some(),
            watchdog_stdin: Some(watchdog_stdin),
            watchdog,
        };
        if let Some(identity) = tls {
            // PostgreSQL refuses a key others may read.
            identity.write(&root, 0o600)?;
        }
        if as_postgres {
            let mut chown = Command::new("chown");
            chown.arg("-R").arg(format!("{OS_USER}:")).arg(&root);
            run("handing the directory to the postgres user", chown)?;
        }
        let data = root.join("data");
        let mut initdb = server.tool("initdb");
        initdb
            .arg("--pgdata")
            .arg(&data)
            .args(["--username", SUPERUSER, "--auth", "trust"])
            .args(["--encoding", "UTF8", "--locale", "C", "--no-sync"]);
        run("initdb", initdb)?;
        let mut attempt = 1;
        loop {
            server.port = free_port()?;
            match server.pg_ctl_start() {
                Ok(()) => return Ok(server),
                Err(_) if attempt < START_ATTEMPTS => attempt += 1,
                Err(error) => return Err(error),
            }
        }
    }

    /// Starts the server on its port; a failure carries the server's log.
    fn pg_ctl_start(&self) -> Result<(), StartError> {
        let mut options = format!("-p {} -k {}", self.port, self.root.display());
        for setting in SERVER_SETTINGS {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        if self.tls {
            let root = self.root.display();
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={root}/server.crt -c ssl_key_file={root}/server.key"
            ));
        }
        let log = self.root.join("postgres.log");
        let mut pg_ctl = self.tool("pg_ctl");
        pg_ctl
            .arg("--pgdata")
            .arg(self.root.join("data"))
            .arg("--log")
            .arg(&log)
            .args(["--wait", "--timeout", "60", "--options", &options, "start"]);
        run("pg_ctl start", pg_ctl).map_err(|error| match error {
            StartError::Command {
                what,
                status,
                output,
            } => StartError::Command {
                what,
                status,
                output: format!(
                    "{output}\nserver log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                ),
            },
            other => other,
        })
    }

    /// Stops the server (its clients' connections break) until [`Postgres::resume`]; for
    /// tests of a database outage, on a server of their own.
    pub fn pause(&self) -> Result<(), StartError> {
        let mut pg_ctl = self.tool("pg_ctl");
        pg_ctl
            .arg("--pgdata")
            .arg(self.root.join("data"))
            .args(["--mode", "fast", "--wait", "stop"]);
        run("pg_ctl stop", pg_ctl)
    }

    /// Starts a paused server again, on the same port.
    pub fn resume(&self) -> Result<(), StartError> {
        self.pg_ctl_start()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// Creates an empty database with a name unique in this process, and returns its URL.
    pub fn create_database(&self) -> Result<String, StartError> {
        static CREATED: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "test_{}_{}",
            std::process::id(),
            CREATED.fetch_add(1, Ordering::Relaxed)
        );
        // A client over TCP as the trusted superuser: no need to switch OS users.
        let mut createdb = Command::new(self.bin.join("createdb"));
        createdb
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--username", SUPERUSER, &name]);
        run("createdb", createdb)?;
        Ok(self.url(&name))
    }

    /// A PostgreSQL tool, run as the postgres user when this process is root.
    fn tool(&self, name: &str) -> Command {
        tool_command(&self.bin, name, self.as_postgres)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        drop(self.watchdog_stdin.take());
        let _ = self.watchdog.wait();
    }
}

/// The shell that stops the server and removes `root` once its standard input ends.
fn spawn_watchdog(
    bin: &Path,
    root: &Path,
    as_postgres: bool,
) -> Result<(Child, ChildStdin), StartError> {
    const SCRIPT: &str =
        r#"while read -r _; do :; done; "$@" >/dev/null 2>&1; rm -rf "$VIREO_PG_ROOT""#;
    let stop = tool_command(bin, "pg_ctl", as_postgres);
    let mut watchdog = Command::new("sh");
    watchdog
        .args(["-c", SCRIPT, "watchdog"])
        .arg(stop.get_program())
        .args(stop.get_args())
        .arg("--pgdata")
        .arg(root.join("data"))
        .args(["--mode", "immediate", "--wait", "stop"])
        .env("VIREO_PG_ROOT", root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = watchdog.spawn().map_err(io("starting the watchdog"))?;
    let mut stdin = child.stdin.take().expect("piped");
    // Proves the pipe works before anything depends on it.
    stdin
        .write_all(b"watching\n")
        .map_err(io("writing to the watchdog"))?;
    Ok((child, stdin))
}

fn tool_command(bin: &Path, name: &str, as_postgres: bool) -> Command {
    let program = bin.join(name);
    if as_postgres {
        let mut command = Command::new("runuser");
        command.args(["-u", OS_USER, "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// Runs `command` to completion; its output becomes the error when it fails.
fn run(what: &str, mut command: Command) -> Result<(), StartError> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(io(format!("running {what}")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(StartError::Command {
        what: what.to_string(),
        status: output.status,
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

/// The directory holding `initdb` and `pg_ctl`: `pg_config --bindir`, else the newest
/// /usr/lib/postgresql/<version>/bin (Debian's server package does not put them on PATH).
fn find_bindir() -> Option<PathBuf> {
    let has_tools = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|dir| has_tools(dir)) {
        return Some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| has_tools(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

/// `/proc/self` belongs to the process's effective user.
fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_starts_takes_databases_and_is_gone_after_drop() {
        let server = Postgres::start().unwrap();
        let url = server.create_database().unwrap();
        assert!(url.starts_with(&format!(
            "postgres://postgres@127.0.0.1:{}/test_",
            server.port()
        )));
        let port = server.port();
        drop(server);
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "the server still listens after drop"
        );
    }
}
