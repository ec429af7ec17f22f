//! Services Vireo's tests start for themselves, never mocked and never shared with anything
//! else on the machine: each runs from the distribution's packages, on a free loopback port,
//! in a temporary directory, and stops when the test process ends, however it ends.
//!
//! Dev-only: the store's backend tests and the end-to-end harness need a real PostgreSQL, and
//! functions' outbound connections and event sources a real Redis, Mosquitto, MariaDB, NATS
//! and RabbitMQ; none of them belong to the store crate or ship in the binary.

pub mod mariadb;
pub mod mosquitto;
pub mod nats;
pub mod postgres;
pub mod rabbitmq;
pub mod redis;
pub mod tls;

pub use mariadb::MariaDb;
pub use mosquitto::Mosquitto;
pub use nats::Nats;
pub use postgres::{Postgres, StartError};
pub use rabbitmq::RabbitMq;
pub use redis::Redis;
pub use tls::TlsIdentity;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh service may take to answer.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// A service run by a watchdog shell in a temporary directory of its own: the shell starts it,
/// waits for its own standard input to end (the test process holds the only write end, so
/// that happens when the process exits, however it exits, or when this is dropped), then
/// stops it and removes the directory. Meanwhile the lines `stop` and `start` on that input
/// stop the service and start it again, keeping the directory (a broker outage).
#[derive(Debug)]
pub(crate) struct Watched {
    pub dir: PathBuf,
    stdin: Option<ChildStdin>,
    watchdog: Child,
}

impl Watched {
    /// Starts what `command` makes, given the service's directory.
    pub fn start(what: &str, command: impl FnOnce(&Path) -> Command) -> Result<Self, StartError> {
        const SCRIPT: &str = r#""$@" & service=$!
while read -r line; do
    case "$line" in
        stop) kill "$service"; wait "$service";;
        start) "$@" & service=$!;;
    esac
done
kill "$service"; wait "$service"; rm -rf "$VIREO_SERVICE_DIR""#;
        let dir = tempfile::Builder::new()
            .prefix(&format!("vireo-{what}-"))
            .tempdir()
            .map_err(io("creating the service's directory"))?
            .keep();
        let service = command(&dir);
        let mut watchdog = Command::new("sh");
        watchdog
            .args(["-c", SCRIPT, "watchdog"])
            .arg(service.get_program())
            .args(service.get_args())
            .env("VIREO_SERVICE_DIR", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = watchdog.spawn().map_err(io(format!("starting {what}")))?;
        let stdin = child.stdin.take().expect("piped");
        Ok(Self {
            dir,
            stdin: Some(stdin),
            watchdog: child,
        })
    }

    /// Polls `answers` until it succeeds, or fails with the service's log file `log`.
    pub fn wait_ready(
        &self,
        answers: impl FnMut() -> std::io::Result<()>,
        log: &str,
    ) -> Result<(), StartError> {
        self.wait_ready_within(answers, log, READY_WITHIN)
    }

    /// The same, for a service that may take longer than most to start.
    pub fn wait_ready_within(
        &self,
        mut answers: impl FnMut() -> std::io::Result<()>,
        log: &str,
        within: Duration,
    ) -> Result<(), StartError> {
        let deadline = Instant::now() + within;
        while answers().is_err() {
            if Instant::now() >= deadline {
                return Err(StartError::NotReady {
                    what: log.to_string(),
                    log: std::fs::read_to_string(self.dir.join(log)).unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Watched {
    /// Tells the watchdog to stop the service (`stop`) or start it again (`start`).
    fn control(&mut self, command: &str) -> Result<(), StartError> {
        use std::io::Write as _;
        let stdin = self.stdin.as_mut().expect("held until drop");
        writeln!(stdin, "{command}")
            .and_then(|()| stdin.flush())
            .map_err(io(format!("telling the watchdog to {command}")))
    }

    /// Stops the service, keeping its directory; returns once nothing listens on `port`.
    pub fn stop_service(&mut self, port: u16, log: &str) -> Result<(), StartError> {
        self.control("stop")?;
        let deadline = Instant::now() + READY_WITHIN;
        while TcpStream::connect(("127.0.0.1", port)).is_ok() {
            if Instant::now() >= deadline {
                return Err(StartError::NotReady {
                    what: format!("{log} (stopping)"),
                    log: std::fs::read_to_string(self.dir.join(log)).unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Starts the stopped service again with the same arguments; the caller waits for it.
    pub fn start_service(&mut self) -> Result<(), StartError> {
        self.control("start")
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.watchdog.wait();
    }
}

/// The full path of `program` on PATH, also searching the sbin directories Debian installs
/// daemons into.
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/usr/bin", "/sbin"])
        .map(|dir| PathBuf::from(dir).join(program))
        .find(|candidate| candidate.is_file())
}

pub(crate) fn free_port() -> Result<u16, StartError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io("finding a free port"))?
        .port();
    Ok(port)
}

pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StartError {
    let what = what.into();
    move |source| StartError::Io { what, source }
}
