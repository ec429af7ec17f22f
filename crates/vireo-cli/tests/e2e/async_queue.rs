//! Async invocations: accepted durably with 202, delivered with CloudEvents headers, retried
//! with backoff, dead-lettered and redriven, deduplicated by key, and never lost to `kill -9`.

use std::cell::RefCell;

use serde_json::{Value, json};

use crate::support::{DEADLINE, Server, eventually, stdout_json, submit_async};

/// Short backoffs so retries happen within a test.
const FAST_RETRIES: &str = "[async]\nmin_backoff_ms = 200\nmax_backoff_ms = 2000\n";

/// Sends an async invocation of `probe` with `query`; returns the answer's status and body.
async fn submit(server: &Server, query: &str, key: Option<&str>) -> (u16, Value, String) {
    let mut request = reqwest::Client::new()
        .post(server.url(&format!("/fn/default/probe/?{query}")))
        .header("prefer", "respond-async")
        .body("payload");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (
        status,
        response.json().await.unwrap_or(Value::Null),
        location,
    )
}

/// Polls the invocation until its status is terminal; returns every status seen on the way.
async fn until_terminal(server: &Server, id: &str) -> (Value, Vec<String>) {
    let seen = &RefCell::new(Vec::<String>::new());
    let body = eventually(DEADLINE, || async move {
        let (status, body) = server.get_json(&format!("/v1/invocations/{id}")).await;
        assert_eq!(status, 200, "{body}");
        let state = body["status"].as_str().unwrap().to_string();
        let mut seen = seen.borrow_mut();
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if ["succeeded", "failed", "dead"].contains(&state.as_str()) {
            Ok(body)
        } else {
            Err(format!("{id} stuck in {seen:?}: {body}"))
        }
    })
    .await;
    (body, seen.take())
}

/// The probe's log lines for one invocation, once `count` of them are committed.
async fn probe_lines(server: &Server, id: &str, count: usize) -> Vec<Value> {
    eventually(DEADLINE, || async move {
        let (_, page) = server
            .get_json(&format!(
                "/v1/namespaces/default/functions/probe/logs?invocation={id}"
            ))
            .await;
        let lines = page["lines"].as_array().cloned().unwrap_or_default();
        if lines.len() >= count {
            Ok(lines)
        } else {
            Err(format!("expected {count} log lines of {id}, got {lines:?}"))
        }
    })
    .await
}

#[tokio::test]
async fn accepted_with_202_then_delivered_with_cloudevents_headers() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("probe", "probe", json!({})).await;

    let (status, accepted, location) = submit(&server, "ms=300", None).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/v1/invocations/{id}"));
    assert_eq!(accepted["status"], "queued");

    let (done, seen) = until_terminal(&server, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(
        seen.contains(&"running".to_string()),
        "a 300 ms attempt is seen running: {seen:?}"
    );
    let order = ["queued", "running", "succeeded"];
    let positions: Vec<usize> = seen
        .iter()
        .map(|s| order.iter().position(|o| o == s).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{seen:?}");
    assert_eq!(done["attempts"], 1);
    assert_eq!(done["trigger"], "async");
    assert_eq!(done["response"]["status"], 200);
    assert_eq!(done["response"]["body"], "attempt 1");

    let lines = probe_lines(&server, &id, 1).await;
    let line = lines[0]["line"].as_str().unwrap();
    assert!(
        line.starts_with(&format!(
            "attempt=1 ce-id={id} ce-type=dev.vireo.invocation.async ce-time=20"
        )),
        "{line}"
    );

    // Unknown functions and aliases are refused, never accepted.
    for path in ["/fn/default/nope/", "/fn/default/probe@missing/"] {
        let response = reqwest::Client::new()
            .post(server.url(path))
            .header("prefer", "respond-async")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path}");
        let id = crate::support::invocation_id(&response);
        let (status, _) = server.get_json(&format!("/v1/invocations/{id}")).await;
        assert_eq!(status, 404, "nothing was stored for {path}");
    }
}

#[tokio::test]
async fn failures_retry_with_backoff_then_dead_letter_and_redrive() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(FAST_RETRIES).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    let policy =
        stdout_json(&server.cli(&["retry-policy", "probe", "--max-attempts", "3", "-o", "json"]));
    assert_eq!(policy["max_attempts"], 3);

    let (_, accepted, _) = submit(&server, "status=503", None).await;
    let id = accepted["id"].as_str().unwrap().to_string();
    let (dead, _) = until_terminal(&server, &id).await;
    assert_eq!(dead["status"], "dead", "{dead}");
    assert_eq!(dead["attempts"], 3);
    assert!(
        dead["error"].as_str().unwrap().contains("gave up after 3"),
        "{dead}"
    );
    assert_eq!(dead["response"]["status"], 503);

    let lines = probe_lines(&server, &id, 3).await;
    let attempts: Vec<&str> = lines
        .iter()
        .map(|l| l["line"].as_str().unwrap().split(' ').next().unwrap())
        .collect();
    assert_eq!(attempts, ["attempt=1", "attempt=2", "attempt=3"]);
    // Backoff 200 ms then 400 ms, each with jitter down to half.
    let at: Vec<i64> = lines.iter().map(|l| l["at_us"].as_i64().unwrap()).collect();
    assert!(
        at[1] - at[0] >= 100_000,
        "first backoff {} µs",
        at[1] - at[0]
    );
    assert!(
        at[2] - at[1] >= 200_000,
        "second backoff {} µs",
        at[2] - at[1]
    );

    let listed = stdout_json(&server.cli(&["dlq", "ls", "probe", "-o", "json"]));
    assert_eq!(listed["invocations"][0]["id"], id.as_str());
    let redriven =
        stdout_json(&server.cli(&["dlq", "redrive", "probe", "--id", &id, "-o", "json"]));
    assert_eq!(redriven["redriven"], 1);
    let (again, _) = until_terminal(&server, &id).await;
    assert_eq!(again["status"], "dead");
    assert_eq!(again["attempts"], 3, "a redrive starts the attempts afresh");
    probe_lines(&server, &id, 6).await;

    // A 4xx is final; a failure that later succeeds stops retrying.
    let (_, not_found, _) = submit(&server, "status=404", None).await;
    let (failed, _) = until_terminal(&server, not_found["id"].as_str().unwrap()).await;
    assert_eq!(
        (failed["status"].as_str(), failed["attempts"].as_u64()),
        (Some("failed"), Some(1))
    );
    let (_, flaky, _) = submit(&server, "succeed_at=2", None).await;
    let (recovered, _) = until_terminal(&server, flaky["id"].as_str().unwrap()).await;
    assert_eq!(
        (recovered["status"].as_str(), recovered["attempts"].as_u64()),
        (Some("succeeded"), Some(2))
    );
    let counts = stdout_json(&server.cli(&["queue", "probe", "-o", "json"]));
    assert_eq!(
        counts,
        json!({"queued": 0, "running": 0, "succeeded": 1, "failed": 1, "dead": 1})
    );
}

#[tokio::test]
async fn an_idempotency_key_returns_the_first_invocation() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("probe", "probe", json!({})).await;

    let (first_status, first, _) = submit(&server, "", Some("order-42")).await;
    let (second_status, second, location) = submit(&server, "", Some("order-42")).await;
    assert_eq!((first_status, second_status), (202, 202));
    let id = first["id"].as_str().unwrap();
    assert_eq!(second["id"], id);
    assert_eq!(second["duplicate"], true);
    assert_eq!(location, format!("/v1/invocations/{id}"));
    let (_, other, _) = submit(&server, "", Some("order-43")).await;
    assert_ne!(other["id"], id);

    until_terminal(&server, id).await;
    until_terminal(&server, other["id"].as_str().unwrap()).await;
    let counts = stdout_json(&server.cli(&["queue", "probe", "-o", "json"]));
    assert_eq!(
        counts["succeeded"], 2,
        "the repeat created nothing: {counts}"
    );
}

#[tokio::test]
async fn kill_9_in_the_middle_of_a_batch_loses_nothing() {
    const TOTAL: usize = 1000;
    let data = tempfile::tempdir().unwrap();
    let config = "[async]\nconcurrency = 8\n";
    let mut server = Server::builder(data.path()).config(config).start();
    server.deploy_ok("probe", "probe", json!({})).await;

    let ids = submit_async(&[server.url("/fn/default/probe/?ms=40")], TOTAL).await;

    // Kill while part of the batch is done and attempts are in flight.
    server.midway_through_the_queue("probe", 100).await;
    server.kill();

    let server = Server::builder(data.path()).config(config).start();
    server.all_succeeded("probe", TOTAL as u64).await;
    for id in &ids {
        let (status, body) = server.get_json(&format!("/v1/invocations/{id}")).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("succeeded")),
            "{id}"
        );
    }
}

#[tokio::test]
async fn a_full_namespace_queue_answers_429_and_stores_nothing() {
    let data = tempfile::tempdir().unwrap();
    let config = "[async]\nconcurrency = 1\nmax_pending_per_namespace = 2\n";
    let server = Server::builder(data.path()).config(config).start();
    server.deploy_ok("probe", "probe", json!({})).await;

    let (first, _, _) = submit(&server, "ms=3000", None).await;
    let (second, _, _) = submit(&server, "ms=3000", None).await;
    assert_eq!((first, second), (202, 202));
    let response = reqwest::Client::new()
        .post(server.url("/fn/default/probe/"))
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let id = crate::support::invocation_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "queue_full", "{body}");
    let (status, _) = server.get_json(&format!("/v1/invocations/{id}")).await;
    assert_eq!(status, 404, "a refused invocation is not stored");
}
