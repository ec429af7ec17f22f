//! Storage faults: a full disk fails writes cleanly and heals without a restart, a failing
//! store does not keep shutdown from finishing or flood the log, a lost master key or database
//! is refused rather than silently replaced, and an async attempt counts only once it begins.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{DEADLINE, Server, eventually, guest};

/// A small tmpfs mounted as a test's data directory, so the test can fill it; unmounted when
/// dropped (declare it before the server, so the server is gone first).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one of `size_mib`, or says loudly on stderr why it cannot (not root, no
    /// permission to mount) and gives none: the caller skips, never passes silently.
    fn mount(test: &str, size_mib: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().expect("a directory to mount on");
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size_mib}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match mounted {
            Ok(output) if output.status.success() => Some(Tmpfs { dir }),
            Ok(output) => {
                skip(test, &String::from_utf8_lossy(&output.stderr));
                None
            }
            Err(error) => {
                skip(test, &error.to_string());
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the filesystem has no room left; returns its path.
    fn fill(&self) -> PathBuf {
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        for chunk in [1 << 20, 4096, 1] {
            let bytes = vec![0u8; chunk];
            while file.write_all(&bytes).is_ok() {}
        }
        let free = free_bytes(self.path());
        assert_eq!(free, 0, "the filler left {free} bytes free");
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily, so a file some process still holds open cannot keep it mounted.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn skip(test: &str, reason: &str) {
    eprintln!(
        "\n*** SKIPPED {test}: cannot mount a tmpfs to fill ({}). This test needs root and \
         permission to mount; it did NOT run. ***\n",
        reason.trim()
    );
}

/// Free bytes on the filesystem holding `path`, as `df` reports them.
fn free_bytes(path: &Path) -> u64 {
    let output = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(path)
        .output()
        .expect("run df");
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .nth(1)
        .and_then(|line| line.trim().parse().ok())
        .unwrap_or_else(|| panic!("unexpected df output {text:?}"))
}

/// Sends an async invocation of `probe`; the status and the invocation id (if one was given).
async fn submit(server: &Server, query: &str, body: Vec<u8>) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(server.url(&format!("/fn/default/probe/?{query}")))
        .header("prefer", "respond-async")
        .body(body)
        .send()
        .await
        .expect("async request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Accepts large invocations until the store refuses one (the disk is full); returns the ids
/// it accepted on the way and the refusal.
async fn submit_until_refused(server: &Server) -> (Vec<String>, Value) {
    let mut accepted = Vec::new();
    for _ in 0..400 {
        let (status, body) = submit(server, "", vec![b'x'; 256 * 1024]).await;
        match status {
            202 => accepted.push(body["id"].as_str().unwrap().to_string()),
            503 => return (accepted, body),
            other => panic!("unexpected answer {other}: {body}"),
        }
    }
    panic!("the store still accepted after 100 MiB on a full disk");
}

async fn until_status(server: &Server, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let done = &done;
    eventually(DEADLINE, || async move {
        let (_, body) = server.get_json(&format!("/v1/invocations/{id}")).await;
        if done(&body) {
            Ok(body)
        } else {
            Err(format!("{id}: {body}"))
        }
    })
    .await
}

/// Async attempts of `probe` that have finished, by the server's metrics (which do not wait
/// for the store).
async fn async_attempts_finished(server: &Server) -> u64 {
    let text = server.metrics_text().await;
    text.lines()
        .filter(|line| line.starts_with("vireo_invocations_total{"))
        .filter(|line| line.contains("function=\"probe\"") && line.contains("trigger=\"async\""))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

async fn put_large_secret(server: &Server) -> (u16, Value) {
    server
        .call(
            Method::PUT,
            "/v1/namespaces/default/secrets/LARGE",
            Some(json!({"value": "v".repeat(60 * 1024)})),
        )
        .await
}

fn log_has(server: &Server, text: &str) -> bool {
    server.stderr_lines().iter().any(|line| line.contains(text))
}

#[tokio::test]
async fn a_full_disk_fails_writes_cleanly_and_heals_without_a_restart() {
    let Some(disk) = Tmpfs::mount(
        "a_full_disk_fails_writes_cleanly_and_heals_without_a_restart",
        64,
    ) else {
        return;
    };
    let data = disk.path().join("data");
    let server = Server::start(&data);
    server.deploy_ok("probe", "probe", json!({})).await;

    // Attempts that are running when the disk fills, so their results must wait for room.
    let mut accepted = Vec::new();
    for _ in 0..3 {
        let (status, body) = submit(&server, "ms=1500", b"early".to_vec()).await;
        assert_eq!(status, 202, "{body}");
        accepted.push(body["id"].as_str().unwrap().to_string());
    }
    for id in &accepted {
        until_status(&server, id, |body| body["attempts"] == 1).await;
    }

    let filler = disk.fill();
    let (accepted_while_filling, refused) = submit_until_refused(&server).await;
    accepted.extend(accepted_while_filling);
    assert_eq!(refused["error"]["code"], "not_stored", "{refused}");

    // While full: more accepts and a deploy fail with JSON errors; reads and sync calls work.
    let (status, body) = submit(&server, "", b"again".to_vec()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("not_stored"))
    );
    let deploy = server.deploy("hello", guest("hello"), json!({})).await;
    let status = deploy.status().as_u16();
    let body: Value = deploy.json().await.expect("a failed deploy answers JSON");
    assert!(status >= 500, "{status} {body}");
    assert!(body["error"]["code"].is_string(), "{body}");
    // One large row: SQLite rolls its whole transaction back by itself, the case that used to
    // leave the writer connection unusable until a restart.
    let (status, body) = put_large_secret(&server).await;
    assert!(status >= 500, "{status} {body}");
    assert!(body["error"]["code"].is_string(), "{body}");
    let sync = reqwest::get(server.url("/fn/default/probe/"))
        .await
        .unwrap();
    assert_eq!(sync.status(), 200);
    let sync_id = crate::support::invocation_id(&sync);
    // Every accepted attempt has run to its end, with nowhere to put its result.
    eventually(DEADLINE, || async {
        let finished = async_attempts_finished(&server).await;
        if finished >= accepted.len() as u64 {
            Ok(())
        } else {
            Err(format!(
                "{finished} of {} attempts finished",
                accepted.len()
            ))
        }
    })
    .await;
    let (_, running) = server
        .get_json(&format!("/v1/invocations/{}", accepted[0]))
        .await;
    assert_eq!(running["status"], "running", "its result is not stored yet");
    // The results stay pending through more than one log interval of failed writes (retried
    // with backoff, not dropped after a few tries).
    eventually(Duration::from_secs(30), || async {
        let repeated = server.stderr_lines().into_iter().find(|line| {
            line.contains("writing the async queue failed") && line.contains("times in the last")
        });
        repeated.ok_or_else(|| "the queue writer has not failed for 10 s yet".to_string())
    })
    .await;
    let (status, _) = server.get_json("/v1/namespaces/default/functions").await;
    assert_eq!(status, 200, "reads work on a full disk");

    // Room again: writes work within seconds, with no restart.
    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let id = eventually(Duration::from_secs(15), || async {
        match submit(&server, "", b"after".to_vec()).await {
            (202, body) => Ok(body["id"].as_str().unwrap().to_string()),
            (status, body) => Err(format!("still refused: {status} {body}")),
        }
    })
    .await;
    let recovered_in = freed.elapsed();
    eprintln!("store_faults: writes accepted again {recovered_in:?} after space was freed");
    accepted.push(id);
    server.deploy_ok("hello", "hello", json!({})).await;
    let (status, body) = put_large_secret(&server).await;
    assert_eq!(status, 201, "{body}");

    // Every invocation accepted with 202 finishes, and the sync call's record was kept.
    for id in &accepted {
        let done = until_status(&server, id, |body| body["status"] == "succeeded").await;
        assert!(done["attempts"].as_u64().unwrap() >= 1, "{done}");
    }
    server.invocation(&sync_id).await;
    let all_done_in = freed.elapsed();
    eprintln!(
        "store_faults: all {} accepted invocations succeeded {all_done_in:?} after space was freed",
        accepted.len()
    );
    assert!(all_done_in < Duration::from_secs(20), "{all_done_in:?}");
    assert!(
        !log_has(&server, "transaction depth"),
        "the writer was wedged:\n{}",
        server.stderr_lines().join("\n")
    );
}

#[tokio::test]
async fn sigterm_with_a_failing_store_stops_within_the_grace_period() {
    const GRACE: Duration = Duration::from_secs(4);
    let Some(disk) = Tmpfs::mount(
        "sigterm_with_a_failing_store_stops_within_the_grace_period",
        64,
    ) else {
        return;
    };
    let data = disk.path().join("data");
    let config = format!(
        "[limits]\nshutdown_grace_secs = {}\n[async]\nmin_backoff_ms = 300\nmax_backoff_ms = 300\n",
        GRACE.as_secs()
    );
    let mut server = Server::builder(&data).config(&config).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    let policy = server.cli(&["retry-policy", "probe", "--max-attempts", "100"]);
    assert!(policy.status.success(), "{policy:?}");
    // Invocations that keep failing, so claims of their retries keep writing to the store.
    for _ in 0..2 {
        let (status, body) = submit(&server, "status=503", Vec::new()).await;
        assert_eq!(status, 202, "{body}");
        let id = body["id"].as_str().unwrap().to_string();
        until_status(&server, &id, |body| body["attempts"].as_u64() >= Some(1)).await;
    }

    disk.fill();
    submit_until_refused(&server).await;
    // Records that cannot be written either.
    for _ in 0..3 {
        let sync = reqwest::get(server.url("/fn/default/probe/"))
            .await
            .unwrap();
        assert_eq!(sync.status(), 200);
    }
    // Failing for more than one log interval, so repeats are counted rather than printed.
    eventually(Duration::from_secs(40), || async {
        let failing = [
            "claiming async invocations failed",
            "writing invocation records failed",
            "times in the last",
        ];
        match failing.iter().find(|text| !log_has(&server, text)) {
            None => Ok(()),
            Some(missing) => Err(format!("no log line with {missing:?} yet")),
        }
    })
    .await;

    let asked = Instant::now();
    server.terminate();
    let exited = server.wait_exit();
    let took = asked.elapsed();
    let lines = server.stderr_lines();
    let warnings = lines
        .iter()
        .filter(|line| line.contains(" WARN ") || line.contains(" ERROR "))
        .count();
    eprintln!(
        "store_faults: stopped {took:?} after SIGTERM ({exited}); {warnings} warnings in {} stderr lines:\n{}",
        lines.len(),
        lines.join("\n")
    );
    assert!(
        took < GRACE + Duration::from_secs(1),
        "shutdown took {took:?} with a grace period of {GRACE:?}:\n{}",
        lines.join("\n")
    );
    assert!(
        warnings < 60,
        "{warnings} warnings: the failing loops were not throttled:\n{}",
        lines.join("\n")
    );
    let repeated = lines
        .iter()
        .find(|line| line.contains("times in the last"))
        .expect("checked above");
    assert!(repeated.contains("failed "), "{repeated}");
}

/// Claimed ahead but never started: a crash must not use up their attempts.
#[tokio::test]
async fn attempts_claimed_but_never_started_do_not_count_after_a_crash() {
    let data = tempfile::tempdir().unwrap();
    let config = "[async]\nconcurrency = 1\n";
    let mut server = Server::builder(data.path()).config(config).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    let mut ids = Vec::new();
    for n in 0..4 {
        let (status, body) = submit(&server, "ms=4000", format!("job {n}").into_bytes()).await;
        assert_eq!(status, 202, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    // One runs in the only slot (for seconds more); the worker holds others claimed ahead
    // ("running" with no attempt yet), waiting for it.
    let seen = eventually(DEADLINE, || async {
        let mut seen = Vec::new();
        for id in &ids {
            let (_, body) = server.get_json(&format!("/v1/invocations/{id}")).await;
            seen.push((body["status"].clone(), body["attempts"].clone()));
        }
        let started = seen.iter().filter(|(_, attempts)| *attempts == 1).count();
        let buffered = seen
            .iter()
            .filter(|(status, attempts)| *status == "running" && *attempts == 0)
            .count();
        if started == 1 && buffered >= 1 {
            Ok(seen)
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await;
    let started = seen
        .iter()
        .position(|(_, attempts)| *attempts == 1)
        .unwrap();
    assert_eq!(seen[started].0, "running", "{seen:?}");
    server.kill();

    let server = Server::builder(data.path()).config(config).start();
    for (n, id) in ids.iter().enumerate() {
        let done = until_status(&server, id, |body| body["status"] == "succeeded").await;
        let expected = if n == started { 2 } else { 1 };
        assert_eq!(
            (done["attempts"].as_u64(), done["response"]["body"].as_str()),
            (Some(expected), Some(format!("attempt {expected}").as_str())),
            "invocation {n}: {done}"
        );
    }
}

#[tokio::test]
async fn a_lost_or_wrong_master_key_is_refused_not_replaced() {
    let data = tempfile::tempdir().unwrap();
    let key_file = data.path().join("master.key");
    let mut server = Server::start(data.path());
    assert!(
        key_file.exists(),
        "a fresh data directory gets a master key"
    );
    let (status, body) = server
        .call(
            Method::PUT,
            "/v1/namespaces/default/secrets/DB_PASSWORD",
            Some(json!({"value": "s3cret"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    server.terminate();
    let exited = server.wait_exit();
    assert!(
        exited.success(),
        "{exited}:\n{}",
        server.stderr_lines().join("\n")
    );
    let original = std::fs::read(&key_file).unwrap();

    std::fs::remove_file(&key_file).unwrap();
    let refused = Server::builder(data.path()).start_fails();
    assert!(refused.contains("is missing"), "{refused}");
    assert!(
        refused.contains(&key_file.display().to_string()),
        "{refused}"
    );
    assert!(refused.contains("Restore"), "{refused}");
    assert!(!key_file.exists(), "no new key replaced the lost one");

    write_key(&key_file, format!("{}\n", "5a".repeat(32)).as_bytes());
    let refused = Server::builder(data.path()).start_fails();
    assert!(
        refused.contains("is not the key they were sealed with"),
        "{refused}"
    );

    write_key(&key_file, &original);
    let server = Server::start(data.path());
    let (_, listed) = server.get_json("/v1/namespaces/default/secrets").await;
    assert_eq!(listed["secrets"][0]["name"], "DB_PASSWORD", "{listed}");
}

fn write_key(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[tokio::test]
async fn a_lost_database_beside_its_components_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path());
    server.deploy_ok("probe", "probe", json!({})).await;
    server.terminate();
    assert!(server.wait_exit().success());

    let database = data.path().join("vireo.db");
    std::fs::write(&database, b"").unwrap();
    let refused = Server::builder(data.path()).start_fails();
    assert!(refused.contains("missing or empty"), "{refused}");
    assert!(refused.contains("components"), "{refused}");
    for file in ["vireo.db", "vireo.db-wal", "vireo.db-shm"] {
        let _ = std::fs::remove_file(data.path().join(file));
    }
    let refused = Server::builder(data.path()).start_fails();
    assert!(
        refused.contains("mv "),
        "the way to start afresh: {refused}"
    );

    // Moving the old files aside, as the message says, starts an empty store.
    for dir in ["components", "artifacts"] {
        let from = data.path().join(dir);
        std::fs::rename(&from, data.path().join(format!("{dir}.orphaned"))).unwrap();
    }
    let server = Server::start(data.path());
    let (status, _) = server
        .get_json("/v1/namespaces/default/functions/probe")
        .await;
    assert_eq!(status, 404);
}
