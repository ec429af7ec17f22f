//! Outgoing HTTP: a function reaches only the origins its `allowed_outbound_hosts` grant, a
//! refused request opens no connection, a host name must not lead to loopback, and outgoing
//! requests carry the caller's trace.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::{Server, guest};

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A loopback HTTP server that counts the connections it accepts and keeps each request head.
/// It answers `upstream saw PATH` and hangs up on anything that is not HTTP (a TLS hello).
struct Upstream {
    port: u16,
    connections: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (counted, kept) = (connections.clone(), heads.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let kept = kept.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&chunk[..n]),
                        }
                        if !head[0].is_ascii_uppercase() {
                            return;
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let body = format!("upstream saw {}", head.split(' ').nth(1).unwrap_or(""));
                    kept.lock().unwrap().push(head);
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        Self {
            port,
            connections,
            heads,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// The value of `name` in the last request head, header names compared case-insensitively.
    fn last_header(&self, name: &str) -> Option<String> {
        let heads = self.heads.lock().unwrap();
        heads.last()?.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

/// Invokes the `fetch` fixture deployed as `function`, asking it to GET `url`.
pub(crate) async fn fetch(
    server: &Server,
    function: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .get(server.url(&format!("/fn/default/{function}/")))
        .header("x-fetch-url", url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test]
async fn a_granted_address_is_reached_with_the_callers_trace() {
    let upstream = Upstream::start().await;
    let port = upstream.port;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let granted = [
        format!("http://127.0.0.1:{port}"),
        format!("https://127.0.0.1:{port}"),
    ];
    server
        .deploy_ok(
            "granted",
            "fetch",
            json!({"allowed_outbound_hosts": granted}),
        )
        .await;

    let url = format!("http://127.0.0.1:{port}/hello?x=1");
    let traced = [("traceparent", CALLER), ("tracestate", "vendor=1")];
    let (status, body) = fetch(&server, "granted", &url, &traced).await;
    assert_eq!((status, body.as_str()), (200, "upstream saw /hello?x=1"));
    assert_eq!(upstream.connections(), 1);

    let sent = upstream.last_header("traceparent").expect("a traceparent");
    let (sent, caller): (Vec<&str>, Vec<&str>) =
        (sent.split('-').collect(), CALLER.split('-').collect());
    assert_eq!(sent.len(), 4, "{sent:?}");
    assert_eq!(sent[1], caller[1], "the caller's trace id");
    assert_ne!(sent[2], caller[2], "a span of its own");
    assert_eq!(
        upstream.last_header("tracestate").as_deref(),
        Some("vendor=1")
    );
    assert_eq!(
        upstream.last_header("host"),
        Some(format!("127.0.0.1:{port}"))
    );

    // https goes through TLS at the same checked address; this upstream speaks no TLS.
    let (status, body) = fetch(
        &server,
        "granted",
        &format!("https://127.0.0.1:{port}/"),
        &[],
    )
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("Tls"), "{body}");
    assert_eq!(upstream.connections(), 2);
}

#[tokio::test]
async fn requests_outside_the_grant_are_denied_without_a_connection() {
    let upstream = Upstream::start().await;
    let port = upstream.port;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("ungranted", "fetch", json!({})).await;
    server
        .deploy_ok(
            "other-origin",
            "fetch",
            json!({"allowed_outbound_hosts": [format!("https://127.0.0.1:{port}"), "http://127.0.0.1:1"]}),
        )
        .await;

    let url = format!("http://127.0.0.1:{port}/");
    for function in ["ungranted", "other-origin"] {
        let (status, body) = fetch(&server, function, &url, &[]).await;
        assert_eq!(status, 502, "{function}: {body}");
        assert!(body.contains("HttpRequestDenied"), "{function}: {body}");
    }
    assert_eq!(upstream.connections(), 0, "no connection was opened");
}

/// `localhost` in a pattern names loopback literally, as Spin users write it: the request goes
/// to 127.0.0.1 without asking a resolver. Names still match only names: the address itself is
/// not granted by it.
#[tokio::test]
async fn localhost_in_a_pattern_names_loopback() {
    let upstream = Upstream::start().await;
    let port = upstream.port;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server
        .deploy_ok(
            "by-name",
            "fetch",
            json!({"allowed_outbound_hosts": [format!("http://localhost:{port}")]}),
        )
        .await;

    let (status, body) = fetch(
        &server,
        "by-name",
        &format!("http://localhost:{port}/hello"),
        &[],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(upstream.connections(), 1);
    let (_, body) = fetch(
        &server,
        "by-name",
        &format!("http://127.0.0.1:{port}/"),
        &[],
    )
    .await;
    assert!(body.contains("HttpRequestDenied"), "{body}");
    assert_eq!(upstream.connections(), 1, "no connection for the address");
}

#[tokio::test]
async fn invalid_patterns_are_refused_at_deploy() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    for (pattern, reason) in [
        ("api.example.com", "scheme is required"),
        ("ftp://example.com", "http, https, postgres"),
        ("tcp://example.com", "must name its port"),
        ("https://a.*.example.com", "leftmost label"),
        ("https://example.com/path", "no path"),
    ] {
        let settings = json!({"allowed_outbound_hosts": ["https://fine.example.com", pattern]});
        let response = server.deploy("fetch", guest("fetch"), settings).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 400, "{pattern}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(&format!("{pattern:?}")) && message.contains(reason),
            "{message:?} should name {pattern:?} and say {reason:?}"
        );
    }
}
