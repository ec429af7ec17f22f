//! `/metrics` is valid Prometheus text, and its counters match the invocations made.

use std::collections::HashMap;

use serde_json::json;

use crate::support::{DEADLINE, Server, eventually, invocation_id};

/// The samples of `name` whose labels include every pair of `labels`, summed.
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|sample| sample.metric == name)
        .filter(|sample| {
            labels
                .iter()
                .all(|(key, wanted)| sample.labels.get(key) == Some(*wanted))
        })
        .map(|sample| match &sample.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => *v,
            prometheus_parse::Value::Histogram(buckets) => {
                buckets.last().map_or(0.0, |bucket| bucket.count)
            }
            prometheus_parse::Value::Summary(_) => panic!("{name} is a summary"),
        })
        .sum()
}

async fn scrape(server: &Server) -> prometheus_parse::Scrape {
    let text = server.metrics_text().await;
    let lines = text.lines().map(|line| Ok(line.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text exposition")
}

#[tokio::test]
async fn metrics_parse_and_count_the_invocations_made() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[async]\nlease_ms = 600\n")
        .start();
    server.deploy_ok("hello", "hello", json!({})).await;
    server.deploy_ok("panic", "panic", json!({})).await;

    let mut ids = Vec::new();
    for (function, expected) in [
        ("hello", 200),
        ("hello", 200),
        ("hello", 200),
        ("panic", 500),
        ("panic", 500),
    ] {
        let response = reqwest::get(server.url(&format!("/fn/default/{function}/")))
            .await
            .unwrap();
        assert_eq!(response.status(), expected);
        ids.push(invocation_id(&response));
    }
    let queued = reqwest::Client::new()
        .post(server.url("/fn/default/hello/"))
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 202);
    ids.push(invocation_id(&queued));
    for id in &ids {
        server.invocation(id).await;
    }

    // The counters move when an invocation finishes, just before its record is queued; the
    // async one's status settles after it ran, and the queue gauge follows on the heartbeat
    // (one that read the queue before the settlement still shows it pending).
    let (server_ref, async_id) = (&server, ids[5].as_str());
    let scrape = eventually(DEADLINE, || async move {
        let scrape = scrape(server_ref).await;
        let async_done = value(&scrape, "vireo_invocations_total", &[("trigger", "async")]) == 1.0;
        let gauge_drained = scrape
            .samples
            .iter()
            .any(|s| s.metric == "vireo_async_pending")
            && value(&scrape, "vireo_async_pending", &[("namespace", "default")]) == 0.0;
        let (_, detail) = server_ref
            .get_json(&format!("/v1/invocations/{async_id}"))
            .await;
        if async_done && gauge_drained && detail["status"] == "succeeded" {
            Ok(scrape)
        } else {
            Err(format!(
                "metrics not caught up: async counted {async_done}, queue gauge at 0 {gauge_drained}, {detail}"
            ))
        }
    })
    .await;
    let hello = [("namespace", "default"), ("function", "hello")];
    let expectations: HashMap<&str, f64> = HashMap::from([
        ("hello ok http", 3.0),
        ("hello ok async", 1.0),
        ("panic error http", 2.0),
    ]);
    for (key, expected) in &expectations {
        let parts: Vec<&str> = key.split(' ').collect();
        let labels = [
            ("function", parts[0]),
            ("status", parts[1]),
            ("trigger", parts[2]),
        ];
        assert_eq!(
            value(&scrape, "vireo_invocations_total", &labels),
            *expected,
            "{key}"
        );
    }
    assert_eq!(
        value(&scrape, "vireo_invocation_duration_seconds_count", &hello),
        4.0
    );
    assert_eq!(
        value(&scrape, "vireo_instantiation_seconds_count", &hello),
        4.0
    );
    assert_eq!(value(&scrape, "vireo_cold_starts_total", &hello), 1.0);
    assert_eq!(value(&scrape, "vireo_invocations_in_flight", &[]), 0.0);
    assert_eq!(
        value(&scrape, "vireo_compile_seconds_count", &[]),
        2.0,
        "two components compiled"
    );
    assert!(value(&scrape, "process_resident_memory_bytes", &[]) > 0.0);
    for sample in &scrape.samples {
        assert!(
            !sample.labels.values().any(|v| *v == ids[0]),
            "no invocation ids in labels"
        );
    }
}

#[tokio::test]
async fn top_shows_the_activity_of_the_interval() {
    let data = tempfile::tempdir().unwrap();
    let server = std::sync::Arc::new(Server::start(data.path()));
    server.deploy_ok("hello", "hello", json!({})).await;

    // Keep hello busy for as long as `vireo top` watches.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (server, stop) = (server.clone(), stop.clone());
        tokio::spawn(async move {
            let mut calls = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let response = reqwest::get(server.url("/fn/default/hello/"))
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                // Read to the end: a client that hangs up mid-body is a client_error.
                response.text().await.unwrap();
                calls += 1;
            }
            calls
        })
    };
    let watcher = server.clone();
    let output = tokio::task::spawn_blocking(move || {
        watcher.cli(&["top", "--once", "--interval", "1s", "-o", "json"])
    })
    .await
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let calls = load.await.unwrap();
    assert!(calls > 0);

    let refresh = crate::support::stdout_json(&output);
    let hello = refresh["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == "hello")
        .unwrap_or_else(|| panic!("hello is listed: {refresh}"));
    assert!(
        hello["invocations_per_sec"].as_f64().unwrap() > 0.0,
        "{refresh}"
    );
    assert_eq!(hello["errors_per_sec"], 0.0);
    let (p50, p99) = (
        hello["p50_ms"].as_f64().unwrap(),
        hello["p99_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{refresh}");
}

#[tokio::test]
async fn a_deleted_functions_series_leave_metrics_and_top() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("hello", "hello", json!({})).await;
    server.deploy_ok("other", "hello", json!({})).await;
    for function in ["hello", "other"] {
        let response = reqwest::get(server.url(&format!("/fn/default/{function}/")))
            .await
            .unwrap();
        response.text().await.unwrap();
    }
    let of_hello = |text: &str| {
        text.lines()
            .filter(|line| line.contains(r#"function="hello""#))
            .count()
    };
    assert!(
        of_hello(&server.metrics_text().await) > 0,
        "counted while it exists"
    );

    let removed = server.cli(&["rm", "hello"]);
    assert!(removed.status.success());
    let text = server.metrics_text().await;
    assert_eq!(of_hello(&text), 0, "{text}");
    assert!(text.contains(r#"function="other""#), "others stay: {text}");
    let refresh = crate::support::stdout_json(&server.cli(&["top", "--once", "-o", "json"]));
    assert!(
        refresh["functions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["function"] != "hello"),
        "{refresh}"
    );

    // The name in use again: its series are back.
    server.deploy_ok("hello", "hello", json!({})).await;
    let response = reqwest::get(server.url("/fn/default/hello/"))
        .await
        .unwrap();
    response.text().await.unwrap();
    assert!(of_hello(&server.metrics_text().await) > 0);
}

#[tokio::test]
async fn a_developer_key_watches_its_namespace_and_only_it() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key = server.developer_key_for_new_namespace("team");
    let developer = Server::client_with_key(&key);
    let deployed = server
        .deploy_with(
            &developer,
            "team",
            "hello",
            crate::support::guest("hello"),
            json!({}),
        )
        .await;
    assert_eq!(deployed.status(), 201);
    server.deploy_ok("elsewhere", "hello", json!({})).await;
    for path in ["/fn/team/hello/", "/fn/default/elsewhere/"] {
        reqwest::get(server.url(path))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    }

    let view = developer
        .get(server.url("/v1/namespaces/team/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(view.status(), 200);
    let text = view.text().await.unwrap();
    assert!(
        text.contains(r#"namespace="team",function="hello""#),
        "{text}"
    );
    assert!(!text.contains(r#"namespace="default""#), "{text}");
    for (path, status) in [("/metrics", 403), ("/v1/namespaces/default/metrics", 404)] {
        let refused = developer.get(server.url(path)).send().await.unwrap();
        assert_eq!(refused.status(), status, "{path}");
    }

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args([
            "top",
            "--once",
            "--interval",
            "200ms",
            "-n",
            "team",
            "-o",
            "json",
        ])
        .env("VIREO_URL", &server.url)
        .env("VIREO_API_KEY", &key)
        .output()
        .unwrap();
    let refresh = crate::support::stdout_json(&output);
    assert!(refresh["async_pending"].is_number(), "{refresh}");
    assert!(refresh["functions"].is_array(), "{refresh}");
}
