//! Logs, records and the CLI verbs against a real server.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use serde_json::Value;

use crate::support::{DEADLINE, Server, guests, stdout_json};

#[tokio::test]
async fn cli_deploys_invokes_lists_and_removes() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let hello = guests().join("hello.wasm");
    let hello = hello.to_str().unwrap();

    let deployed = server.cli(&[
        "deploy",
        "hello",
        hello,
        "--memory",
        "64",
        "--timeout",
        "500ms",
        "--env",
        "A=1",
        "--instance-reuse",
        "3",
    ]);
    assert!(
        deployed.status.success(),
        "{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    assert!(String::from_utf8_lossy(&deployed.stdout).contains("deployed default/hello version 1"));
    let version = stdout_json(&server.cli(&["versions", "hello", "-o", "json"]));
    let settings = &version["versions"][0]["settings"];
    assert_eq!(
        (
            settings["memory_mib"].as_u64(),
            settings["timeout_ms"].as_u64()
        ),
        (Some(64), Some(500))
    );
    assert_eq!(settings["env"]["A"], "1");
    assert_eq!(settings["instance_reuse"], 3);

    let invoked = server.cli(&["invoke", "hello", "--path", "/cli?x=1"]);
    assert!(invoked.status.success());
    assert_eq!(String::from_utf8_lossy(&invoked.stdout), "Hello, Vireo!\n");
    assert!(String::from_utf8_lossy(&invoked.stderr).contains("invocation: "));

    let listed = stdout_json(&server.cli(&["ls", "-o", "json"]));
    assert_eq!(listed["functions"][0]["name"], "hello");
    let table = server.cli(&["ls"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("hello"));

    let aliased = server.cli(&["alias", "hello", "prod", "1"]);
    assert!(
        aliased.status.success(),
        "{}",
        String::from_utf8_lossy(&aliased.stderr)
    );
    let routed = server.cli(&["invoke", "hello@prod"]);
    assert_eq!(String::from_utf8_lossy(&routed.stdout), "Hello, Vireo!\n");

    let logs = server.cli(&["logs", "hello", "-o", "json"]);
    let mut seen = String::from_utf8_lossy(&logs.stdout).into_owned();
    // Records are written in batches: poll until the invocation's line is in.
    let deadline = std::time::Instant::now() + DEADLINE;
    while !seen.contains("hello called: /cli?x=1") && std::time::Instant::now() < deadline {
        seen = String::from_utf8_lossy(&server.cli(&["logs", "hello", "-o", "json"]).stdout)
            .into_owned();
    }
    let line: Value = serde_json::from_str(seen.lines().next().unwrap()).unwrap();
    assert_eq!(line["line"], "hello called: /cli?x=1");
    assert_eq!(line["stream"], "stdout");

    let invocations = stdout_json(&server.cli(&["invocations", "hello", "-o", "json"]));
    let id = invocations["invocations"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let one = stdout_json(&server.cli(&["invocations", "--id", &id, "-o", "json"]));
    assert_eq!(
        (one["trigger"].as_str(), one["status"].as_str()),
        (Some("http"), Some("ok"))
    );

    let missing = server.cli(&["invoke", "nope"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("does not exist"));
    let bad_timeout = server.cli(&["deploy", "hello", hello, "--timeout", "soon"]);
    assert!(!bad_timeout.status.success());

    let removed = server.cli(&["rm", "hello"]);
    assert!(removed.status.success());
    assert_eq!(
        stdout_json(&server.cli(&["ls", "-o", "json"]))["functions"],
        serde_json::json!([])
    );

    let unreachable = Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(["ls", "--server", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!unreachable.status.success());
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("127.0.0.1:9"));
}

#[tokio::test]
async fn logs_follow_receives_lines_written_after_it_started() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server
        .deploy_ok("hello", "hello", serde_json::json!({}))
        .await;
    follow_sees_invocations(&server, &server).await;
}

/// `vireo logs hello -f` against `follower` prints the line of an invocation of `hello` that
/// `invoked` runs after the follower started.
pub(crate) async fn follow_sees_invocations(follower: &Server, invoked: &Server) {
    let mut following = Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(["logs", "hello", "-f", "-o", "json"])
        .env("VIREO_URL", &follower.url)
        .env("VIREO_API_KEY", &follower.admin_key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, received) = mpsc::channel();
    let stdout = following.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // The follower only shows lines from when it started; keep invoking until one arrives, so
    // the test does not depend on when the follower's request reached the server.
    let deadline = std::time::Instant::now() + DEADLINE;
    let line = loop {
        let response = reqwest::get(invoked.url("/fn/default/hello/followed"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        if let Ok(line) = received.recv_timeout(std::time::Duration::from_millis(500)) {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "logs -f printed nothing"
        );
    };
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["line"], "hello called: /followed");
    let _ = following.kill();
    let _ = following.wait();
}

#[tokio::test]
async fn logs_show_the_newest_lines_and_say_when_older_ones_are_left_out() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server
        .deploy_ok("hello", "hello", serde_json::json!({}))
        .await;
    let lines = |output: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| {
                serde_json::from_str::<Value>(line).unwrap()["line"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect()
    };
    // A record is queued after its response is sent, so the next call's record could be stored
    // first: each call waits for its line before the next, which makes the stored order known.
    for n in 1..=5 {
        let response = reqwest::get(server.url(&format!("/fn/default/hello/{n}")))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let deadline = std::time::Instant::now() + DEADLINE;
        while lines(&server.cli(&["logs", "hello", "-o", "json"])).len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "call {n}'s line never arrived"
            );
        }
    }
    let tail = server.cli(&["logs", "hello", "--tail", "2", "-o", "json"]);
    assert_eq!(lines(&tail), ["hello called: /4", "hello called: /5"]);
    assert!(
        String::from_utf8_lossy(&tail.stderr).contains("older lines left out"),
        "{}",
        String::from_utf8_lossy(&tail.stderr)
    );
    let all = server.cli(&["logs", "hello", "--tail", "10", "-o", "json"]);
    assert_eq!(lines(&all).len(), 5);
    assert!(!String::from_utf8_lossy(&all.stderr).contains("left out"));

    // The short id before each line picks that invocation's lines.
    let shown = String::from_utf8(server.cli(&["logs", "hello"]).stdout).unwrap();
    let third = shown
        .lines()
        .find(|line| line.ends_with("hello called: /3"))
        .unwrap_or_else(|| panic!("the third call's line: {shown}"));
    let short = third.split_whitespace().nth(1).unwrap();
    assert_eq!(short.len(), 8, "{third}");
    let only = server.cli(&["logs", "hello", "--invocation", short, "-o", "json"]);
    assert_eq!(lines(&only), ["hello called: /3"]);
    let refused = server.cli(&["logs", "hello", "--invocation", "3f"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("at least its last 8 characters"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}
