//! Scale to zero, pre-warmed versions, and opt-in instance reuse.

use std::time::Instant;

use serde_json::{Value, json};

use crate::support::{DEADLINE, Server, invocation_id};

async fn text(server: &Server, path: &str) -> (u16, String) {
    let response = reqwest::get(server.url(path)).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn counts(server: &Server, path: &str, n: usize) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..n {
        let (status, body) = text(server, path).await;
        assert_eq!(status, 200, "{path}: {body}");
        seen.push(body);
    }
    seen
}

#[tokio::test]
async fn reuse_keeps_globals_fresh_mode_does_not_and_versions_never_share() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("fresh", "counter", json!({})).await;
    assert_eq!(
        counts(&server, "/fn/default/fresh/", 3).await,
        ["1", "1", "1"]
    );

    server
        .deploy_ok("reused", "counter", json!({"instance_reuse": 3}))
        .await;
    assert_eq!(
        counts(&server, "/fn/default/reused/", 7).await,
        ["1", "2", "3", "1", "2", "3", "1"],
        "recycled after 3 requests"
    );

    // A trap recycles the instance: the next request starts from a fresh one.
    server
        .deploy_ok("trapping", "counter", json!({"instance_reuse": 100}))
        .await;
    assert_eq!(
        counts(&server, "/fn/default/trapping/", 2).await,
        ["1", "2"]
    );
    assert_eq!(text(&server, "/fn/default/trapping/?panic=1").await.0, 500);
    assert_eq!(counts(&server, "/fn/default/trapping/", 1).await, ["1"]);

    // Two versions of one function, and another function, with the same component: each keeps
    // its own instances.
    server
        .deploy_ok("multi", "counter", json!({"instance_reuse": 100}))
        .await;
    server
        .deploy_ok(
            "multi",
            "counter",
            json!({"instance_reuse": 100, "env": {"V": "2"}}),
        )
        .await;
    let mut sequence = Vec::new();
    for path in [
        "/fn/default/multi@1/",
        "/fn/default/multi@1/",
        "/fn/default/multi@2/",
        "/fn/default/multi@1/",
        "/fn/default/multi@2/",
    ] {
        sequence.push(text(&server, path).await.1);
    }
    assert_eq!(sequence, ["1", "2", "1", "3", "2"]);
    assert_eq!(
        counts(&server, "/fn/default/trapping/", 1).await,
        ["2"],
        "other functions are untouched"
    );
}

async fn function(server: &Server, name: &str) -> Value {
    server
        .get_json(&format!("/v1/namespaces/default/functions/{name}"))
        .await
        .1
}

#[tokio::test]
async fn idle_versions_scale_to_zero_and_come_back_cold() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[scaling]\nidle_ttl_ms = 300\n")
        .start();
    server.deploy_ok("hello", "hello", json!({})).await;
    server
        .deploy_ok("kept", "hello", json!({"min_instances": 1}))
        .await;
    assert_eq!(
        function(&server, "kept").await["warm_versions"],
        json!([1]),
        "min_instances loads at deploy"
    );

    let cold = |path: &'static str| {
        let url = server.url(path);
        let server = &server;
        async move {
            let response = reqwest::get(url).await.unwrap();
            assert_eq!(response.status(), 200);
            let record = server.invocation(&invocation_id(&response)).await;
            (
                record["cold"].as_bool().unwrap(),
                record["init_us"].as_u64().unwrap(),
            )
        }
    };
    assert!(
        cold("/fn/default/hello/").await.0,
        "first use loads the version"
    );
    assert!(!cold("/fn/default/hello/").await.0);
    assert_eq!(
        function(&server, "hello").await["warm_versions"],
        json!([1])
    );

    // Unused past idle_ttl, the version is evicted; min_instances keeps the other one loaded.
    let deadline = Instant::now() + DEADLINE;
    while function(&server, "hello").await["warm_versions"] != json!([]) {
        assert!(Instant::now() < deadline, "hello never scaled to zero");
    }
    assert_eq!(function(&server, "kept").await["warm_versions"], json!([1]));
    let (was_cold, init_us) = cold("/fn/default/hello/").await;
    assert!(
        was_cold,
        "the first request after scale-to-zero is a cold start"
    );
    assert!(init_us > 0, "a cold start records its init time");
    assert!(
        !cold("/fn/default/kept/").await.0,
        "a pre-warmed version is never cold"
    );

    let metrics = server.metrics_text().await;
    let cold_starts = metrics
        .lines()
        .find(|line| {
            line.starts_with("vireo_cold_starts_total") && line.contains("function=\"hello\"")
        })
        .unwrap_or_else(|| panic!("no cold start counter for hello in:\n{metrics}"));
    assert!(cold_starts.ends_with(" 2"), "{cold_starts}");
}
