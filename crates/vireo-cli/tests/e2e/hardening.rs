//! HTTP limits in front of everything: a slow client is cut off after the header timeout while
//! others are served, and oversized request targets and heads are refused with 414 and 431.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{DEADLINE, Server};

const CONFIG: &str =
    "[limits]\nheader_read_timeout_ms = 500\nmax_header_kib = 16\nmax_url_bytes = 2048\n";

/// Sends `head` (ignoring a server that stops reading) and returns the status line's code.
fn status_of(address: &str, head: String) -> u16 {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
    });
    let mut answer = [0u8; 64];
    let read = stream.read(&mut answer).unwrap();
    let _ = sender.join();
    let text = String::from_utf8_lossy(&answer[..read]).into_owned();
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[tokio::test]
async fn a_slowloris_client_is_disconnected_while_others_are_served() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(CONFIG).start();
    server
        .deploy_ok("hello", "hello", serde_json::json!({}))
        .await;

    let address = server.address();
    let slow = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        stream
            .write_all(b"GET /fn/default/hello/ HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let started = Instant::now();
        // One header byte every 100 ms, never finishing the head; bounded by the deadline.
        while started.elapsed() < DEADLINE {
            if stream.write_all(b"X").is_err() {
                return started.elapsed();
            }
            let mut buf = [0u8; 256];
            match stream.read(&mut buf) {
                Ok(0) => return started.elapsed(),
                Ok(_) => return started.elapsed(),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(_) => return started.elapsed(),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the slow client was never disconnected");
    });
    // Meanwhile normal requests are answered.
    for _ in 0..5 {
        let response = reqwest::get(server.url("/fn/default/hello/"))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let cut_after = tokio::task::spawn_blocking(move || slow.join().unwrap())
        .await
        .unwrap();
    assert!(
        cut_after >= Duration::from_millis(400),
        "cut after {cut_after:?}, before the timeout"
    );
    assert!(
        cut_after < Duration::from_secs(10),
        "cut after {cut_after:?}"
    );
    assert_eq!(
        reqwest::get(server.url("/fn/default/hello/"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn long_targets_get_414_and_large_heads_431() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(CONFIG).start();
    server
        .deploy_ok("hello", "hello", serde_json::json!({}))
        .await;
    let address = server.address();

    let long = format!("/fn/default/hello/{}", "a".repeat(3000));
    assert_eq!(reqwest::get(server.url(&long)).await.unwrap().status(), 414);
    let admin_long = format!("/v1/namespaces/{}", "a".repeat(3000));
    assert_eq!(
        reqwest::get(server.url(&admin_long))
            .await
            .unwrap()
            .status(),
        414
    );
    let fitting = format!("/fn/default/hello/{}", "a".repeat(1000));
    assert_eq!(
        reqwest::get(server.url(&fitting)).await.unwrap().status(),
        200
    );

    let big_header = format!(
        "GET /fn/default/hello/ HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20 * 1024)
    );
    assert_eq!(status_of(&address, big_header), 431);
    let many_headers: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /fn/default/hello/ HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n");
    assert_eq!(status_of(&address, many), 431);
    assert_eq!(
        reqwest::get(server.url("/fn/default/hello/"))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn cors_is_configured_per_function() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let cors = serde_json::json!({"cors": {
        "allow_origins": ["https://app.example.com"],
        "allow_headers": ["x-token"],
        "expose_headers": ["x-vireo-invocation-id"],
        "max_age_secs": 600,
    }});
    server.deploy_ok("web", "echo", cors).await;
    server
        .deploy_ok("plain", "echo", serde_json::json!({}))
        .await;
    let client = reqwest::Client::new();
    let preflight = |function: &str, origin: &'static str| {
        client
            .request(
                reqwest::Method::OPTIONS,
                server.url(&format!("/fn/default/{function}/")),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "x-token")
            .send()
    };

    let answered = preflight("web", "https://app.example.com").await.unwrap();
    assert_eq!(answered.status(), 204);
    let headers = answered.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(headers["access-control-allow-headers"], "x-token");
    assert_eq!(headers["access-control-max-age"], "600");
    assert!(
        headers["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("POST")
    );
    let refused = preflight("web", "https://evil.example").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let call = client
        .post(server.url("/fn/default/web/"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(call.status(), 200);
    assert_eq!(
        call.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert_eq!(
        call.headers()["access-control-expose-headers"],
        "x-vireo-invocation-id"
    );
    // Preflights never ran the function: only the POST is recorded.
    let id = crate::support::invocation_id(&call);
    server.invocation(&id).await;
    let (_, listed) = server
        .get_json("/v1/namespaces/default/functions/web/invocations")
        .await;
    assert_eq!(listed["invocations"].as_array().unwrap().len(), 1);

    // Without a configuration the function answers the OPTIONS itself, without CORS headers.
    let passed = preflight("plain", "https://app.example.com").await.unwrap();
    assert_eq!(passed.status(), 200);
    assert!(!passed.headers().contains_key("access-control-allow-origin"));
    let echoed: serde_json::Value = passed.json().await.unwrap();
    assert_eq!(echoed["method"], "OPTIONS");

    let bad = server
        .deploy(
            "web",
            crate::support::guest("echo"),
            serde_json::json!({"cors": {"allow_origins": ["*"], "allow_credentials": true}}),
        )
        .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_large_head_gets_431_in_one_write_too() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    // 100 KiB of header against the default 64 KiB limit, written at once.
    let head = format!(
        "GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(100 * 1024)
    );
    let (status, _, body) = crate::support::raw_response(&server.address(), &head, Vec::new());
    assert_eq!(status, 431, "{body}");
    assert_eq!(body["error"]["code"], "header_too_large", "{body}");
    let fitting = format!(
        "GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(60 * 1024)
    );
    let (status, _, _) = crate::support::raw_response(&server.address(), &fitting, Vec::new());
    assert_eq!(status, 200);
}
