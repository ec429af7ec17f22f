//! W3C trace context: the caller's trace continues into the function, with the invocation as
//! the function's parent span; without a valid one, the function gets a new trace.

use serde_json::{Value, json};

use crate::support::{DEADLINE, Server, eventually};

const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The `traceparent` (and `tracestate`) the echo function saw.
async fn seen(server: &Server, headers: &[(&str, &str)]) -> (String, Option<String>) {
    let mut request = reqwest::Client::new().get(server.url("/fn/default/echo/"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let echoed: Value = request.send().await.unwrap().json().await.unwrap();
    let header = |name: &str| echoed["headers"][name].as_str().map(str::to_string);
    (
        header("traceparent").expect("the function always gets a traceparent"),
        header("tracestate"),
    )
}

fn parts(traceparent: &str) -> Vec<String> {
    let parts: Vec<String> = traceparent.split('-').map(str::to_string).collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(
        (parts[0].len(), parts[1].len(), parts[2].len()),
        (2, 32, 16)
    );
    parts
}

#[tokio::test]
async fn the_callers_trace_continues_into_the_function() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("echo", "echo", json!({})).await;

    let (continued, state) = seen(
        &server,
        &[("traceparent", CALLER), ("tracestate", "vendor=1")],
    )
    .await;
    let (caller, function) = (parts(CALLER), parts(&continued));
    assert_eq!(function[1], caller[1], "same trace id");
    assert_ne!(
        function[2], caller[2],
        "the invocation is the function's parent"
    );
    assert_eq!(function[3], "01", "sampled stays sampled");
    assert_eq!(state.as_deref(), Some("vendor=1"));

    let (fresh, _) = seen(&server, &[]).await;
    assert_ne!(
        parts(&fresh)[1],
        caller[1],
        "a new trace without a traceparent"
    );
    let (replaced, dropped) = seen(
        &server,
        &[("traceparent", "00-zz-bad-01"), ("tracestate", "vendor=1")],
    )
    .await;
    assert_ne!(parts(&replaced)[1], "zz");
    assert_eq!(dropped, None, "tracestate goes with an invalid traceparent");

    // An async invocation carries the caller's trace into each attempt.
    let accepted: Value = reqwest::Client::new()
        .post(server.url("/fn/default/echo/"))
        .header("prefer", "respond-async")
        .header("traceparent", CALLER)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (server_ref, id) = (&server, accepted["id"].as_str().unwrap());
    let body = eventually(DEADLINE, || async move {
        let (_, detail) = server_ref.get_json(&format!("/v1/invocations/{id}")).await;
        match detail["status"].as_str() {
            Some("succeeded") => Ok(detail["response"]["body"].as_str().unwrap().to_string()),
            _ => Err(detail.to_string()),
        }
    })
    .await;
    let echoed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        parts(echoed["headers"]["traceparent"].as_str().unwrap())[1],
        caller[1]
    );
}

/// A minimal OTLP/HTTP collector: answers 200 to every request and keeps `(path, headers, body)`.
async fn collector() -> (
    String,
    std::sync::Arc<std::sync::Mutex<Vec<(String, String, Vec<u8>)>>>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = received.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    // One request at a time on a kept-alive connection.
                    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buffer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    while buffer.len() < end + length {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let path = head.split(' ').nth(1).unwrap_or_default().to_string();
                    let body = buffer[end..end + length].to_vec();
                    kept.lock().unwrap().push((path, head.clone(), body));
                    buffer.drain(..end + length);
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if stream.write_all(answer).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{address}/v1/traces"), received)
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

// Multi-threaded: the collector must keep answering while this thread waits for the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocation_spans_are_exported_over_otlp_in_the_callers_trace() {
    let (endpoint, received) = collector().await;
    let data = tempfile::tempdir().unwrap();
    let config =
        format!("[tracing]\notlp_endpoint = \"{endpoint}\"\nservice_name = \"vireo-test\"\n");
    let mut server = Server::builder(data.path()).config(&config).start();
    server.deploy_ok("echo", "echo", json!({})).await;
    let (continued, _) = seen(&server, &[("traceparent", CALLER)]).await;
    let function = parts(&continued);
    server.terminate();
    assert!(server.wait_exit().success());

    let requests = received.lock().unwrap().clone();
    assert!(!requests.is_empty(), "the collector received spans");
    let (trace_id, span_id) = (hex_bytes(&parts(CALLER)[1]), hex_bytes(&function[2]));
    let exported = requests.iter().any(|(path, head, body)| {
        path == "/v1/traces"
            && head.contains("content-type: application/x-protobuf")
            && body.windows(16).any(|w| w == trace_id.as_slice())
            && body.windows(8).any(|w| w == span_id.as_slice())
            && body.windows(10).any(|w| w == b"vireo-test")
    });
    assert!(
        exported,
        "a span of the caller's trace, with the id the function saw as its parent"
    );
}
