//! Instance reuse with components that serve one request per instance (componentize-js): the
//! instance that returned without answering is dropped, the request goes to a fresh instance,
//! and the version runs on fresh instances from then on, saying so in the log, `describe` and
//! the next deploy. A componentize-js component that exports its wasi:http handler (the
//! JavaScript template's `serve()`) instead of using the `fetch` event is reused.

use serde_json::{Value, json};

use crate::support::{DEADLINE, Server, eventually, guests, js_guest, stdout_json};

/// Sends `n` requests to `path`, each a POST with its own body; returns what each answered.
async fn posts(server: &Server, path: &str, n: usize) -> Vec<(u16, String)> {
    let client = reqwest::Client::new();
    let mut answers = Vec::new();
    for i in 0..n {
        let response = client
            .post(server.url(path))
            .body(format!("body {i}"))
            .send()
            .await
            .unwrap();
        answers.push((response.status().as_u16(), response.text().await.unwrap()));
    }
    answers
}

async fn fallback_versions(server: &Server, function: &str) -> Value {
    let (_, view) = server
        .get_json(&format!("/v1/namespaces/default/functions/{function}"))
        .await;
    view["reuse_fallback_versions"].clone()
}

#[tokio::test]
async fn an_instance_that_cannot_serve_twice_hands_the_request_to_a_fresh_one() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let component = guests().join("serves_once.wasm");
    let component = component.to_str().unwrap();
    let deployed = server.cli_ok(&["deploy", "once", component, "--instance-reuse", "10"]);
    assert!(
        !deployed.contains("warning"),
        "nothing is known yet: {deployed}"
    );

    let answers = posts(&server, "/fn/default/once/", 6).await;
    let expected: Vec<(u16, String)> = (0..6).map(|i| (200, format!("body {i}"))).collect();
    assert_eq!(answers, expected, "each request answered, its body whole");
    server
        .logged("cannot serve more than one request per instance")
        .await;
    assert_eq!(
        server
            .log_lines("cannot serve more than one request per instance")
            .len(),
        1,
        "warned once per version"
    );
    assert_eq!(fallback_versions(&server, "once").await, json!([1]));
    let records = stdout_json(&server.cli(&["invocations", "once", "-o", "json"]));
    let statuses: Vec<&str> = records["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ok"; 6], "every invocation recorded as ok");

    let described = server.cli_ok(&["describe", "once"]);
    assert!(
        described.contains("warning: an instance returned without answering its second request"),
        "{described}"
    );
    let again = server.cli_ok(&["deploy", "once", component, "--instance-reuse", "5"]);
    assert!(
        again.contains("warning: instance_reuse 5 will not take effect"),
        "{again}"
    );

    // A component that serves many requests per instance keeps its reuse.
    server
        .deploy_ok("counted", "counter", json!({"instance_reuse": 3}))
        .await;
    let answers = posts(&server, "/fn/default/counted/", 3).await;
    assert_eq!(
        answers,
        [(200, "1".into()), (200, "2".into()), (200, "3".into())]
    );
    assert_eq!(fallback_versions(&server, "counted").await, json!([]));
}

#[tokio::test]
async fn a_componentize_js_function_with_instance_reuse_answers_every_request() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let deployed = server
        .deploy("hello-js", js_guest("hello"), json!({"instance_reuse": 10}))
        .await;
    assert_eq!(deployed.status(), 201);

    let answers = posts(&server, "/fn/default/hello-js/greet", 20).await;
    let expected: Vec<(u16, String)> = (0..20)
        .map(|i| (200, format!("hello from js /greet body {i}")))
        .collect();
    assert_eq!(answers, expected);
    assert_eq!(fallback_versions(&server, "hello-js").await, json!([1]));
}

#[tokio::test]
async fn a_componentize_js_function_exporting_its_handler_is_reused() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let deployed = server
        .deploy(
            "served",
            js_guest("hello-served"),
            json!({"instance_reuse": 10}),
        )
        .await;
    assert_eq!(deployed.status(), 201);

    let client = reqwest::Client::new();
    let mut counts = Vec::new();
    for i in 0..20 {
        let response = client
            .post(server.url("/fn/default/served/greet"))
            .body(format!("body {i}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let count = response.headers()["x-instance-requests"].to_str().unwrap();
        counts.push(count.parse::<u32>().unwrap());
        let text = response.text().await.unwrap();
        assert_eq!(text, format!("hello from js /greet body {i}"));
    }
    // Sequential requests on one version: each instance serves its 10, then a fresh one.
    assert_eq!(
        counts,
        [(1..=10).collect::<Vec<u32>>(), (1..=10).collect()].concat()
    );
    assert_eq!(fallback_versions(&server, "served").await, json!([]));

    // The handler's status and headers go back, but for the one wasi:http refuses a guest.
    let teapot = client
        .get(server.url("/fn/default/served/teapot"))
        .send()
        .await
        .unwrap();
    assert_eq!(teapot.status(), 418);
    assert_eq!(teapot.headers()["x-kept"], "yes");
    assert_ne!(
        teapot.headers().get("connection").map(|v| v.as_bytes()),
        Some(&b"close"[..])
    );
    assert_eq!(teapot.text().await.unwrap(), "short and stout");

    // A handler that throws answers 500 through serve(), and says why in the function's log.
    let thrown = client
        .get(server.url("/fn/default/served/throw"))
        .send()
        .await
        .unwrap();
    assert_eq!(thrown.status(), 500);
    assert_eq!(thrown.text().await.unwrap(), "internal error\n");
    eventually(DEADLINE, || async {
        let logs = server.cli(&["logs", "served", "-o", "json"]);
        let logs = String::from_utf8_lossy(&logs.stdout).to_string();
        match logs.contains("the handler failed: Error: asked to throw") {
            true => Ok(()),
            false => Err(format!("not in the function's log: {logs}")),
        }
    })
    .await;
}
