//! Restarts keep everything and compile nothing; shutdown lets in-flight work finish.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::json;

use crate::support::{Server, invocation_id, start_holding_the_only_slot};

fn artifacts(server: &Server) -> BTreeMap<String, SystemTime> {
    std::fs::read_dir(server.data.join("artifacts"))
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                entry.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect()
}

async fn call_hello(server: &Server) -> String {
    let response = reqwest::get(server.url("/fn/default/hello/"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    invocation_id(&response)
}

#[tokio::test]
async fn restart_keeps_functions_and_does_not_recompile() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path());
    server
        .deploy_ok("hello", "hello", json!({"memory_mib": 64}))
        .await;
    let first = call_hello(&server).await;
    assert_eq!(
        server.invocation(&first).await["cold"],
        true,
        "first use in this process is cold"
    );
    let second = call_hello(&server).await;
    assert_eq!(server.invocation(&second).await["cold"], false);
    let compiled = artifacts(&server);
    assert_eq!(
        compiled.len(),
        2,
        "the artifact and its digest: {compiled:?}"
    );
    server.terminate();
    assert!(server.wait_exit().success(), "graceful shutdown exits 0");

    let server = Server::start(data.path());
    let after = call_hello(&server).await;
    let record = server.invocation(&after).await;
    assert_eq!(record["cold"], true);
    assert_eq!(record["version"], 1);
    assert_eq!(
        artifacts(&server),
        compiled,
        "the artifact was reused, not compiled again"
    );
    let (_, versions) = server
        .get_json("/v1/namespaces/default/functions/hello/versions")
        .await;
    assert_eq!(versions["versions"][0]["settings"]["memory_mib"], 64);
    let (status, old) = server.get_json(&format!("/v1/invocations/{first}")).await;
    assert_eq!(
        (status, old["status"].as_str()),
        (200, Some("ok")),
        "records survive the restart"
    );
}

#[tokio::test]
async fn graceful_shutdown_lets_an_in_flight_request_finish() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::builder(data.path())
        .config("[limits]\nqueue_timeout_ms = 100\n")
        .start();
    server
        .deploy_ok("slow", "sleep", json!({"max_concurrency": 1}))
        .await;
    let (in_flight, _) = start_holding_the_only_slot(
        &server,
        "/fn/default/slow/?ms=1500",
        "/fn/default/slow/?ms=1",
    )
    .await;
    server.terminate();
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "slept");
    assert!(server.wait_exit().success(), "exit code 0 after draining");
    let server = Server::start(data.path());
    let (_, list) = server
        .get_json("/v1/namespaces/default/functions/slow/invocations")
        .await;
    assert_eq!(
        list["invocations"][0]["status"], "ok",
        "the drained invocation was recorded before exit"
    );
}

/// A SQLite store holds one server at a time: a second node on it is refused while the first
/// runs, and starts on the same data once the first has stopped.
#[tokio::test]
async fn a_second_server_on_the_same_sqlite_store_waits_for_the_first() {
    let data = tempfile::tempdir().unwrap();
    let mut first = Server::start(data.path());
    first.deploy_ok("hello", "hello", json!({})).await;
    let refused = first.second_node().start_fails();
    assert!(
        refused.contains("another Vireo server is using the data directory"),
        "{refused}"
    );
    first.terminate();
    assert!(first.wait_exit().success());
    let second = first.second_node().start();
    let (status, function) = second
        .get_json("/v1/namespaces/default/functions/hello")
        .await;
    assert_eq!(status, 200, "{function}");
}

#[test]
fn a_server_that_cannot_listen_writes_nothing() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(["serve", "--listen", &address, "--data"])
        .arg(&data)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(
        !data.exists(),
        "the data directory was created: {:?}",
        std::fs::read_dir(&data).map(|dir| dir.count())
    );
}
