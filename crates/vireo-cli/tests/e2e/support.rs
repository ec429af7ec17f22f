//! Test harness: guest components built from source, the real `vireo` binary on a free port,
//! and small HTTP helpers. No sleeps as synchronisation: everything polls with a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const DEADLINE: Duration = Duration::from_secs(60);

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Builds the example and fixture components once per test run (cargo's own lock makes
/// concurrent test processes wait for the first build) and returns the directory of `.wasm`s.
pub fn guests() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace_root();
        let target_dir = root.join("target/guests");
        for manifest in ["examples/Cargo.toml", "tests/fixtures/Cargo.toml"] {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
                .arg(root.join(manifest))
                .arg("--target-dir")
                .arg(&target_dir)
                .status()
                .expect("run cargo to build guest components");
            assert!(status.success(), "building {manifest} for wasm32-wasip2 failed (is the target installed? rustup target add wasm32-wasip2)");
        }
        target_dir.join("wasm32-wasip2/release")
    })
}

pub fn guest(name: &str) -> Vec<u8> {
    // Library components are named with underscores, binaries keep their hyphens.
    let file = [name.replace('-', "_"), name.to_string()]
        .map(|stem| guests().join(format!("{stem}.wasm")))
        .into_iter()
        .find(|file| file.exists())
        .unwrap_or_else(|| panic!("no component named {name} in {}", guests().display()));
    std::fs::read(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
}

/// A running `vireo serve`; killed when dropped.
pub struct Server {
    pub url: String,
    pub data: PathBuf,
    /// The admin key the server wrote to `<data>/admin.key` at its first start.
    pub admin_key: String,
    child: Option<Child>,
    /// Every line the server has written to stderr so far.
    stderr: Arc<Mutex<Vec<String>>>,
    /// Reads stderr into `stderr`; it ends when the server has exited.
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(data: &Path) -> Server {
        Self::start_with(data, &[])
    }

    pub fn start_with(data: &Path, extra: &[&str]) -> Server {
        Self::spawn(Command::new(env!("CARGO_BIN_EXE_vireo")), data, extra, None)
    }

    /// Starts with `key` as the admin key from `VIREO_ADMIN_KEY`: it is no stored key, so no API
    /// call (a revoke) can take it away.
    pub fn start_with_admin_key(data: &Path, key: &str) -> Server {
        Self::spawn(
            Command::new(env!("CARGO_BIN_EXE_vireo")),
            data,
            &[],
            Some(key),
        )
    }

    /// Starts `vireo serve` under a shell that first lowers its file descriptor limit (soft and
    /// hard) to `limit`, with `config` as its config file.
    pub fn start_with_descriptor_limit(data: &Path, config: &str, limit: u32) -> Server {
        let file = Self::write_config(data, config);
        let mut shell = Command::new("sh");
        shell
            .args(["-c", "ulimit -n \"$0\" && exec \"$@\""])
            .arg(limit.to_string())
            .arg(env!("CARGO_BIN_EXE_vireo"));
        Self::spawn(
            shell,
            data,
            &["--config", file.to_str().expect("UTF-8 path")],
            None,
        )
    }

    /// Runs `command serve ...` (the binary, or a wrapper that execs it), with `admin_key` as
    /// `VIREO_ADMIN_KEY` if given, and waits for the address it announces.
    fn spawn(mut command: Command, data: &Path, extra: &[&str], admin_key: Option<&str>) -> Server {
        if let Some(key) = admin_key {
            command.env("VIREO_ADMIN_KEY", key);
        }
        let mut child = command
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env("VIREO_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
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
        let admin_key = admin_key.map_or_else(
            || {
                std::fs::read_to_string(data.join("admin.key"))
                    .expect("the server writes its admin key before it listens")
                    .trim()
                    .to_string()
            },
            str::to_string,
        );
        Server {
            url,
            data: data.to_path_buf(),
            admin_key,
            child: Some(child),
            stderr,
            stderr_reader: Some(stderr_reader),
        }
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

    /// Runs `vireo serve` on `data` expecting it to refuse to start; returns its stderr.
    pub fn start_fails(data: &Path) -> String {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vireo"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
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

    /// Starts a server with `config` as its TOML config file.
    pub fn start_with_config(data: &Path, config: &str) -> Server {
        let file = Self::write_config(data, config);
        Self::start_with(data, &["--config", file.to_str().expect("UTF-8 path")])
    }

    fn write_config(data: &Path, config: &str) -> PathBuf {
        std::fs::create_dir_all(data).expect("data dir");
        let file = data.join("vireo.toml");
        std::fs::write(&file, config).expect("write config");
        file
    }

    /// The lines the server has written to stderr so far (all of them after `wait_exit`).
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().expect("stderr log").clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    pub fn address(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    /// SIGTERM, then waits for the process to exit.
    pub fn terminate(&mut self) {
        let pid = self.child.as_ref().expect("server still running").id();
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
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

    /// `GET /metrics`, the Prometheus text.
    pub async fn metrics_text(&self) -> String {
        self.admin()
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// An HTTP client that sends `key` with every request.
    pub fn client_with_key(key: &str) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {key}")
                .parse()
                .expect("a key fits in a header"),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("HTTP client")
    }

    /// An HTTP client with the admin key, for the admin API.
    pub fn admin(&self) -> reqwest::Client {
        Self::client_with_key(&self.admin_key)
    }

    /// The `vireo` CLI pointed at this server; it finds the admin key in the data directory.
    fn cli_command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vireo"));
        command
            .args(args)
            .env("VIREO_URL", &self.url)
            .env("VIREO_DATA", &self.data)
            .env_remove("VIREO_API_KEY");
        command
    }

    /// Runs the `vireo` CLI against this server.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.cli_command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run vireo CLI")
    }

    /// Runs the `vireo` CLI against this server with `input` on its standard input.
    pub fn cli_with_stdin(&self, args: &[&str], input: &[u8]) -> std::process::Output {
        let mut child = self
            .cli_command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run vireo CLI");
        // Dropping stdin after writing closes it, so the CLI sees the end of the input.
        child
            .stdin
            .take()
            .expect("stdin piped")
            .write_all(input)
            .expect("write the CLI's stdin");
        child.wait_with_output().expect("wait for vireo CLI")
    }

    /// A `/v1` call with an optional JSON body; the status and the JSON answer (null if none).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.admin().request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("admin API request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn deploy(
        &self,
        name: &str,
        component: Vec<u8>,
        settings: Value,
    ) -> reqwest::Response {
        self.deploy_with(&self.admin(), "default", name, component, settings)
            .await
    }

    /// Deploys into `namespace` with `client` (and whatever key it sends).
    pub async fn deploy_with(
        &self,
        client: &reqwest::Client,
        namespace: &str,
        name: &str,
        component: Vec<u8>,
        settings: Value,
    ) -> reqwest::Response {
        let form = reqwest::multipart::Form::new()
            .text("settings", settings.to_string())
            .part(
                "component",
                reqwest::multipart::Part::bytes(component).file_name("c.wasm"),
            );
        client
            .post(self.url(&format!(
                "/v1/namespaces/{namespace}/functions/{name}/versions"
            )))
            .multipart(form)
            .send()
            .await
            .expect("deploy request")
    }

    /// Deploys and asserts a new version was created; returns the version view.
    pub async fn deploy_ok(&self, name: &str, fixture: &str, settings: Value) -> Value {
        let response = self.deploy(name, guest(fixture), settings).await;
        let status = response.status();
        let body: Value = response.json().await.expect("deploy answers JSON");
        assert_eq!(status, 201, "deploy {name}: {body}");
        body
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self.admin().get(self.url(path)).send().await.expect("GET");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The invocation record, once the batching writer has committed it.
    pub async fn invocation(&self, id: &str) -> Value {
        eventually(DEADLINE, || async move {
            match self.get_json(&format!("/v1/invocations/{id}")).await {
                (200, body) => Ok(body),
                (status, body) => Err(format!("invocation {id} not recorded: {status} {body}")),
            }
        })
        .await
    }
}

/// Polls `check` until it answers `Ok`, pausing briefly between tries. After `within` it
/// panics with the last `Err`, which says what state things were stuck in.
pub async fn eventually<T, Fut>(within: Duration, mut check: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(seen) => assert!(Instant::now() < deadline, "not within {within:?}: {seen}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
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

/// The invocation id header of a response.
pub fn invocation_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-vireo-invocation-id")
        .expect("every invocation response carries x-vireo-invocation-id")
        .to_str()
        .expect("ASCII id")
        .to_string()
}

/// Sends raw bytes and returns the status code of the answer; used where a well-behaved client
/// would not send what we need to (a huge declared body, a body larger than the limit).
pub fn raw_status(address: &str, head: &str, body: Vec<u8>) -> u16 {
    let (mut stream, sender) = send_raw(address, head, body);
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
}

/// Reads one HTTP/1.1 answer with a `Content-Length` body: its status, its head (lowercased)
/// and its body as JSON (null if it is none).
pub fn read_answer(stream: &mut TcpStream) -> (u16, String, Value) {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let read = stream.read(&mut buf).expect("read the answer");
        assert!(read > 0, "the connection closed without an answer");
        answer.extend_from_slice(&buf[..read]);
    };
    let head = String::from_utf8_lossy(&answer[..head_end]).to_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .map_or(0, |value| {
            value.trim().parse().expect("numeric content-length")
        });
    while answer.len() < head_end + length {
        let read = stream.read(&mut buf).expect("read the answer's body");
        assert!(read > 0, "the connection closed inside the answer");
        answer.extend_from_slice(&buf[..read]);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    let body = serde_json::from_slice(&answer[head_end..head_end + length]).unwrap_or(Value::Null);
    (status, head, body)
}

/// Like `raw_status`, with the answer's head (lowercased) and JSON body too.
pub fn raw_response(address: &str, head: &str, body: Vec<u8>) -> (u16, String, Value) {
    let (mut stream, sender) = send_raw(address, head, body);
    let answer = read_answer(&mut stream);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = sender.join();
    answer
}

/// Sends `head` in one write, then `body` on the side: the server may answer and stop reading
/// before the body is through.
fn send_raw(address: &str, head: &str, body: Vec<u8>) -> (TcpStream, std::thread::JoinHandle<()>) {
    let mut stream = TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    stream.write_all(head.as_bytes()).expect("write head");
    let mut writer = stream.try_clone().expect("clone stream");
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    (stream, sender)
}

pub fn stdout_json(output: &std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "CLI failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "CLI printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Starts a GET of `slow_path` on a function deployed with `max_concurrency: 1` and returns once
/// it is running, proven by a probe (`probe_path`, same function) being refused with 429. A
/// slow request that lost the race to a probe is started again.
pub async fn start_holding_the_only_slot(
    server: &Server,
    slow_path: &str,
    probe_path: &str,
) -> (
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
    reqwest::Response,
) {
    let deadline = Instant::now() + DEADLINE;
    let mut slow = tokio::spawn(reqwest::get(server.url(slow_path)));
    loop {
        assert!(
            Instant::now() < deadline,
            "the slow invocation never held the slot"
        );
        if slow.is_finished() {
            let lost = slow.await.unwrap().unwrap();
            assert_eq!(
                lost.status(),
                429,
                "the slow request finished before being observed"
            );
            slow = tokio::spawn(reqwest::get(server.url(slow_path)));
            continue;
        }
        let probe = reqwest::get(server.url(probe_path)).await.unwrap();
        if probe.status() == 429 {
            return (slow, probe);
        }
    }
}
