//! Hostile guests: each is stopped by its limit and recorded, while other functions keep
//! answering.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::support::{Server, invocation_id, raw_status};

/// Calls hello in a loop until stopped; returns (answered 200, other answers).
fn keep_calling_hello(
    server: &Server,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(usize, usize)> {
    let url = server.url("/fn/default/hello/");
    tokio::spawn(async move {
        let (mut ok, mut bad) = (0, 0);
        let client = reqwest::Client::new();
        // Bounded: the failing invocations below finish well within this many calls.
        for _ in 0..100_000 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let answered = match client.get(&url).send().await {
                Ok(response) if response.status() == 200 => {
                    response.text().await.is_ok_and(|t| t == "Hello, Vireo!\n")
                }
                _ => false,
            };
            if answered { ok += 1 } else { bad += 1 }
        }
        (ok, bad)
    })
}

#[tokio::test]
async fn timeouts_memory_bombs_panics_and_floods_are_contained_and_recorded() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("hello", "hello", json!({})).await;
    server
        .deploy_ok("spin", "spin-loop", json!({"timeout_ms": 1000}))
        .await;
    server
        .deploy_ok("sleepy", "sleep", json!({"timeout_ms": 1000}))
        .await;
    server
        .deploy_ok("bomb", "memory-bomb", json!({"memory_mib": 16}))
        .await;
    server.deploy_ok("panicky", "panic", json!({})).await;
    server.deploy_ok("flood", "stdout-flood", json!({})).await;

    let stop = Arc::new(AtomicBool::new(false));
    let bystander = keep_calling_hello(&server, stop.clone());

    let cases = [
        (
            "/fn/default/spin/",
            504,
            "timeout",
            "timed out after 1000 ms",
        ),
        (
            "/fn/default/sleepy/?ms=5000",
            504,
            "timeout",
            "timed out after 1000 ms",
        ),
        ("/fn/default/bomb/", 500, "error", "memory limit exceeded"),
        (
            "/fn/default/panicky/",
            500,
            "error",
            "fixture panicked on /",
        ),
    ];
    for (path, status, recorded, reason) in cases {
        let response = reqwest::get(server.url(path)).await.unwrap();
        assert_eq!(response.status(), status, "{path}");
        let id = invocation_id(&response);
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains(reason),
            "{path}: {body}"
        );
        let record = server.invocation(&id).await;
        assert_eq!(record["status"], recorded, "{path}: {record}");
        assert_eq!(record["http_status"], status);
        assert!(
            record["error"].as_str().unwrap().contains(reason),
            "{path}: {record}"
        );
    }

    let response = reqwest::get(server.url("/fn/default/flood/?lines=20000"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = invocation_id(&response);
    assert_eq!(response.text().await.unwrap(), "flooded");
    assert_eq!(server.invocation(&id).await["status"], "ok");
    let (_, logs) = server
        .get_json(&format!(
            "/v1/namespaces/default/functions/flood/logs?invocation={id}&limit=10000"
        ))
        .await;
    let lines = logs["lines"].as_array().unwrap();
    let kept: usize = lines
        .iter()
        .map(|l| l["line"].as_str().unwrap().len() + 1)
        .sum();
    assert!(kept < 70 * 1024, "about 64 KiB kept, got {kept} bytes");
    assert!(
        lines.last().unwrap()["line"]
            .as_str()
            .unwrap()
            .contains("output truncated"),
        "truncation marker is the last line"
    );

    stop.store(true, Ordering::Relaxed);
    let (ok, bad) = bystander.await.unwrap();
    assert!(ok > 0, "hello answered while the others failed");
    assert_eq!(bad, 0, "hello never failed while the others did");
}

#[tokio::test]
async fn request_bodies_over_the_limit_get_413() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("echo", "echo", json!({})).await;
    let limit = 6 << 20;

    let declared = format!(
        "POST /fn/default/echo/ HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        limit + 1
    );
    assert_eq!(
        raw_status(&server.address(), &declared, vec![b'a'; 1024]),
        413
    );

    // Chunked: no length up front, so the limit is enforced while the body streams.
    let mut chunked = Vec::new();
    for _ in 0..7 {
        chunked.extend_from_slice(format!("{:x}\r\n", 1 << 20).as_bytes());
        chunked.extend(std::iter::repeat_n(b'a', 1 << 20));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let head = "POST /fn/default/echo/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(raw_status(&server.address(), head, chunked), 413);

    let response = reqwest::Client::new()
        .post(server.url("/fn/default/echo/"))
        .body(vec![b'a'; 1 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "a body under the limit passes");
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_answer_is_not_the_functions_fault() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("probe", "probe", json!({})).await;

    // 32 MiB: far more than the socket and body buffers between guest and client can hold
    // (about 6 MiB here), so the guest is still writing when the client leaves.
    let response = reqwest::Client::new()
        .get(server.url(&format!("/fn/default/probe/?bytes={}", 32 << 20)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = invocation_id(&response);
    drop(response);

    let record = server.invocation(&id).await;
    assert_eq!(record["status"], "client_error", "{record}");
    let error = record["error"].as_str().unwrap();
    assert!(
        error.starts_with("the client went away before the answer was sent"),
        "{record}"
    );
}
