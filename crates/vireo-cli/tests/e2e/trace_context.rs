//! W3C trace context: the caller's trace continues into the function, with the invocation as
//! the function's parent span; without a valid one, the function gets a new trace.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{DEADLINE, Server};

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
    let deadline = Instant::now() + DEADLINE;
    let body = loop {
        let (_, detail) = server
            .get_json(&format!(
                "/v1/invocations/{}",
                accepted["id"].as_str().unwrap()
            ))
            .await;
        if detail["status"] == "succeeded" {
            break detail["response"]["body"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "{detail}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let echoed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        parts(echoed["headers"]["traceparent"].as_str().unwrap())[1],
        caller[1]
    );
}
