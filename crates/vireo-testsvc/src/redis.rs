//! A throwaway Redis server: Debian's `redis-server` on a free loopback port, persisting
//! nothing, in a temporary directory. As with PostgreSQL, a watchdog shell owns the server: it
//! stops it and removes the directory when its standard input ends, which happens when the test
//! process exits however it exits, or at once when the [`Redis`] is dropped.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::{StartError, free_port};

/// How long a fresh server may take to answer `PING`.
const READY_WITHIN: Duration = Duration::from_secs(20);
/// A port found free may be taken before the server binds it; try a few.
const START_ATTEMPTS: u32 = 3;

/// A running server. Dropping it stops the server and removes its directory.
#[derive(Debug)]
pub struct Redis {
    port: u16,
    dir: PathBuf,
    watchdog_stdin: Option<ChildStdin>,
    watchdog: Child,
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
        let program = which("redis-server").ok_or(StartError::Missing {
            program: "redis-server",
            package: "redis-server",
        })?;
        let mut attempt = 1;
        loop {
            match Self::start_once(&program) {
                Ok(server) => return Ok(server),
                Err(_) if attempt < START_ATTEMPTS => attempt += 1,
                Err(error) => return Err(error),
            }
        }
    }

    fn start_once(program: &std::path::Path) -> Result<Redis, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("vireo-redis-")
            .tempdir()
            .map_err(crate::io("creating the server's directory"))?
            .keep();
        let port = free_port()?;
        // The shell starts the server, waits for its own input to end, then stops it.
        const SCRIPT: &str = r#""$@" & server=$!; while read -r _; do :; done; kill "$server"; wait "$server"; rm -rf "$VIREO_REDIS_DIR""#;
        let mut watchdog = Command::new("sh");
        watchdog
            .args(["-c", SCRIPT, "watchdog"])
            .arg(program)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .env("VIREO_REDIS_DIR", &dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = watchdog
            .spawn()
            .map_err(crate::io("starting redis-server"))?;
        let stdin = child.stdin.take().expect("piped");
        let server = Redis {
            port,
            dir,
            watchdog_stdin: Some(stdin),
            watchdog: child,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// Polls with `PING` until the server answers `PONG`, or fails with its log.
    fn wait_ready(&self) -> Result<(), StartError> {
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if self.ping().is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StartError::NotReady {
                    what: "redis-server".into(),
                    log: std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

    /// The server's URL, `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        drop(self.watchdog_stdin.take());
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
