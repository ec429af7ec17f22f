//! The real `vireo serve` on a free loopback port: one builder says how to start it (store,
//! config, arguments, admin key, descriptor limit), one spawn path starts it, and `Server`
//! controls the running process and reads its log.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{DEADLINE, eventually};

/// Where a server keeps its state: SQLite in its data directory, or a database of the run's
/// throwaway PostgreSQL that any number of nodes share (`Server::second_node`).
#[derive(Debug, Clone)]
pub enum Store {
    /// `vireo.db` in `data`, beside the components, artifacts and key files.
    Sqlite { data: PathBuf },
    /// A fresh database at `url`; each node gets its own data directory under `dir` (its
    /// artifact cache), and all share `dir/master.key` and the admin key `admin_key`.
    Postgres {
        url: String,
        dir: PathBuf,
        admin_key: String,
    },
}

/// Tells apart the data directories of one cluster's nodes.
static NODES_STARTED: AtomicUsize = AtomicUsize::new(0);

impl Store {
    /// A fresh database on the run's PostgreSQL, the nodes' files under `dir`.
    pub fn postgres(dir: &Path) -> Self {
        Self::postgres_on(vireo_testsvc::Postgres::shared(), dir)
    }

    /// A fresh database on `server`, the nodes' files under `dir`.
    pub fn postgres_on(server: &vireo_testsvc::Postgres, dir: &Path) -> Self {
        let url = server
            .create_database()
            .unwrap_or_else(|e| panic!("creating a database for a cluster: {e}"));
        Store::Postgres {
            url,
            dir: dir.to_path_buf(),
            admin_key: format!("vireo-cluster-admin-{:032x}", rand_u128()),
        }
    }

    /// The data directory of a node about to start (`admin.key`, the config file, artifacts).
    fn node_dir(&self) -> PathBuf {
        match self {
            Store::Sqlite { data } => data.clone(),
            Store::Postgres { dir, .. } => {
                let node = NODES_STARTED.fetch_add(1, Ordering::Relaxed);
                dir.join(format!("node-{node}"))
            }
        }
    }

    /// The `vireo serve` arguments that open this store from the node directory `data`.
    fn args(&self, data: &Path) -> Vec<OsString> {
        let mut args = vec!["--data".into(), data.into()];
        if let Store::Postgres { url, dir, .. } = self {
            args.extend(["--store".into(), url.into()]);
            args.extend(["--master-key-file".into(), dir.join("master.key").into()]);
        }
        args
    }

    /// The admin key every node of a shared store is given.
    fn shared_admin_key(&self) -> Option<&str> {
        match self {
            Store::Sqlite { .. } => None,
            Store::Postgres { admin_key, .. } => Some(admin_key),
        }
    }
}

/// Random enough to keep clusters' admin keys apart.
fn rand_u128() -> u128 {
    use std::hash::{BuildHasher as _, RandomState};
    let high = RandomState::new().hash_one(std::process::id());
    let low = RandomState::new().hash_one(Instant::now());
    (u128::from(high) << 64) | u128::from(low)
}

/// How to start a server; `start` runs it, `start_fails` expects it to refuse.
#[derive(Debug, Clone)]
pub struct ServerBuilder {
    store: Store,
    /// This node's data directory.
    data: PathBuf,
    config: Option<String>,
    args: Vec<String>,
    admin_key: Option<String>,
    descriptor_limit: Option<u32>,
    /// The certificate the server presents, trusted by the test's clients and CLI.
    ca_cert: Option<PathBuf>,
    /// Variables set for `vireo serve` (`VIREO_*` settings).
    envs: Vec<(String, OsString)>,
}

impl ServerBuilder {
    pub fn new(store: Store) -> Self {
        super::install_tls_provider();
        Self {
            data: store.node_dir(),
            admin_key: store.shared_admin_key().map(str::to_string),
            store,
            config: None,
            args: Vec::new(),
            descriptor_limit: None,
            ca_cert: None,
            envs: Vec::new(),
        }
    }

    /// Sets the environment variable `key` for `vireo serve`.
    pub fn env(mut self, key: &str, value: impl Into<OsString>) -> Self {
        self.envs.push((key.to_string(), value.into()));
        self
    }

    /// HTTPS with the PEM files `cert` and `key`; the harness's clients trust `cert`.
    pub fn tls(mut self, cert: &Path, key: &Path) -> Self {
        self.args
            .extend(["--tls-cert".into(), cert.display().to_string()]);
        self.args
            .extend(["--tls-key".into(), key.display().to_string()]);
        self.ca_cert = Some(cert.to_path_buf());
        self
    }

    /// `toml` as the server's config file.
    pub fn config(mut self, toml: &str) -> Self {
        self.config = Some(toml.to_string());
        self
    }

    /// More arguments for `vireo serve`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(ToString::to_string));
        self
    }

    /// `key` as the admin key from `VIREO_ADMIN_KEY`: it is no stored key, so no API call (a
    /// revoke) can take it away.
    pub fn admin_key(mut self, key: &str) -> Self {
        self.admin_key = Some(key.to_string());
        self
    }

    /// Runs the server under a shell that first lowers its file descriptor limit (soft and
    /// hard) to `limit`.
    pub fn descriptor_limit(mut self, limit: u32) -> Self {
        self.descriptor_limit = Some(limit);
        self
    }

    /// Starts the server and waits for the address it announces.
    pub fn start(self) -> Server {
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .spawn()
            .expect("start vireo serve");
        let (lines, received) = mpsc::channel();
        let stdout = child.stdout.take().expect("stdout piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let pipe = child.stderr.take().expect("stderr piped");
        let log = stderr.clone();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                log.lock().expect("stderr log").push(line);
            }
        });
        let line = received.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            panic!(
                "vireo did not announce its address within {DEADLINE:?}; stderr:\n{}",
                stderr.lock().expect("stderr log").join("\n")
            )
        });
        let url = line
            .strip_prefix("vireo listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let data = self.data.clone();
        let admin_key = self.admin_key.clone().unwrap_or_else(|| {
            std::fs::read_to_string(data.join("admin.key"))
                .expect("the server writes its admin key before it listens")
                .trim()
                .to_string()
        });
        Server {
            url,
            data,
            admin_key,
            ca_cert: self.ca_cert,
            store: self.store,
            child: Some(child),
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// Starts the server expecting it to refuse to start; returns its stderr.
    pub fn start_fails(self) -> String {
        let mut child = self
            .command()
            .stdout(Stdio::null())
            .spawn()
            .expect("start vireo serve");
        let deadline = Instant::now() + DEADLINE;
        while child.try_wait().expect("poll vireo serve").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("vireo serve did not refuse to start within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().expect("read vireo serve's stderr");
        assert!(!output.status.success(), "vireo serve exited successfully");
        String::from_utf8_lossy(&output.stderr).into_owned()
    }

    /// `vireo serve` on a free loopback port as this builder says, its stderr piped.
    fn command(&self) -> Command {
        let binary = env!("CARGO_BIN_EXE_vireo");
        let mut command = match self.descriptor_limit {
            Some(limit) => {
                let mut shell = Command::new("sh");
                shell
                    .args(["-c", "ulimit -n \"$0\" && exec \"$@\""])
                    .arg(limit.to_string())
                    .arg(binary);
                shell
            }
            None => Command::new(binary),
        };
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(self.store.args(&self.data))
            .args(&self.args);
        if let Some(config) = &self.config {
            command.arg("--config").arg(self.write_config(config));
        }
        if let Some(key) = &self.admin_key {
            command.env("VIREO_ADMIN_KEY", key);
        }
        command.envs(self.envs.iter().map(|(key, value)| (key, value)));
        command
            .env("VIREO_LOG", "info")
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    fn write_config(&self, config: &str) -> PathBuf {
        let data = &self.data;
        std::fs::create_dir_all(data).expect("data dir");
        let file = data.join("vireo-server.toml");
        std::fs::write(&file, config).expect("write config");
        file
    }
}

/// A running `vireo serve`; killed when dropped.
pub struct Server {
    pub url: String,
    pub data: PathBuf,
    /// The admin key the server wrote to `<data>/admin.key` at its first start, or the one it
    /// was given.
    pub admin_key: String,
    /// The certificate an HTTPS server was started with, which its clients trust.
    pub ca_cert: Option<PathBuf>,
    store: Store,
    child: Option<Child>,
    /// Every line the server has written to stderr so far.
    stderr: Arc<Mutex<Vec<String>>>,
    /// Reads stderr into `stderr`; it ends when the server has exited.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// How to start a server on the SQLite store in `data`.
    pub fn builder(data: &Path) -> ServerBuilder {
        ServerBuilder::new(Store::Sqlite {
            data: data.to_path_buf(),
        })
    }

    /// A server with the defaults on the SQLite store in `data`.
    pub fn start(data: &Path) -> Server {
        Self::builder(data).start()
    }

    /// The admin key the nodes of a shared store are given (no node writes it to a file).
    pub(super) fn shared_admin_key(&self) -> Option<&str> {
        self.store.shared_admin_key()
    }

    /// How to start this server again: the same store and data directory.
    pub fn restart(&self) -> ServerBuilder {
        ServerBuilder {
            data: self.data.clone(),
            ..ServerBuilder::new(self.store.clone())
        }
    }

    /// How to start another server on this server's store.
    pub fn second_node(&self) -> ServerBuilder {
        ServerBuilder::new(self.store.clone())
    }

    /// The lines of the server's log so far that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        let log = self.stderr.lock().expect("stderr log");
        log.iter().filter(|l| l.contains(needle)).cloned().collect()
    }

    /// The first log line containing `needle`, once the server has written it.
    pub async fn logged(&self, needle: &str) -> String {
        eventually(DEADLINE, || async move {
            self.log_lines(needle)
                .into_iter()
                .next()
                .ok_or_else(|| format!("the server never logged {needle:?}"))
        })
        .await
    }

    /// The lines the server has written to stderr so far (all of them after `wait_exit`).
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().expect("stderr log").clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn address(&self) -> String {
        let address = self
            .url
            .split_once("://")
            .map_or(&*self.url, |(_, rest)| rest);
        address.to_string()
    }

    /// SIGTERM; `wait_exit` waits for the process to exit.
    pub fn terminate(&mut self) {
        self.signal("TERM");
    }

    /// Sends the running server the signal `name` (`TERM`, `HUP`, ...).
    pub fn signal(&self, name: &str) {
        let pid = self.child.as_ref().expect("server still running").id();
        let status = Command::new("kill")
            .args([&format!("-{name}"), &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// SIGKILL: the server gets no chance to finish or clean up anything.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("server still running");
        child.kill().expect("kill -9 vireo");
        child.wait().expect("reap vireo");
    }

    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server still running");
        let (done, exited) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(child.wait().expect("wait for vireo"));
        });
        let status = exited
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("vireo did not exit within {DEADLINE:?}"));
        // Its stderr is closed now: what it wrote last is in the log once the reader is done.
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().expect("stderr reader");
        }
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
