//! Retention deletes log lines by age and beyond the size limit, in the background.

use serde_json::{Value, json};

use crate::support::{DEADLINE, Server, eventually, invocation_id};

async fn call_probe(server: &Server) -> String {
    let response = reqwest::get(server.url("/fn/default/probe/"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    invocation_id(&response)
}

async fn lines(server: &Server) -> Vec<Value> {
    let (_, page) = server
        .get_json("/v1/namespaces/default/functions/probe/logs?limit=10000")
        .await;
    page["lines"].as_array().cloned().unwrap_or_default()
}

/// Polls until `done` holds for the probe's log lines.
async fn until_lines(server: &Server, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let done = &done;
    eventually(DEADLINE, || async move {
        let current = lines(server).await;
        if done(&current) {
            Ok(current)
        } else {
            Err(format!("{what}: {} lines left", current.len()))
        }
    })
    .await
}

#[tokio::test]
async fn old_log_lines_are_deleted_and_records_kept() {
    let data = tempfile::tempdir().unwrap();
    let config = "[retention]\nlogs_max_age_secs = 1\nsweep_interval_ms = 100\n";
    let server = Server::builder(data.path()).config(config).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    let id = call_probe(&server).await;
    until_lines(&server, "the line was written", |lines| lines.len() == 1).await;
    until_lines(&server, "the old line was deleted", <[Value]>::is_empty).await;
    let record = server.invocation(&id).await;
    assert_eq!(
        record["status"], "ok",
        "the record is kept longer than logs"
    );
}

#[tokio::test]
async fn logs_beyond_the_size_limit_go_oldest_first() {
    let data = tempfile::tempdir().unwrap();
    let config = "[retention]\nmax_log_kib = 1\nsweep_interval_ms = 100\n";
    let server = Server::builder(data.path()).config(config).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    let mut last = String::new();
    for _ in 0..60 {
        last = call_probe(&server).await;
        // The guest may still be ending when its answer arrives: waiting for each record keeps
        // the lines stored in the order the calls were made, so the last call's line is newest.
        server.invocation(&last).await;
    }
    let kept = until_lines(&server, "the log is within 1 KiB", |lines| {
        let bytes: usize = lines
            .iter()
            .map(|l| l["line"].as_str().unwrap().len())
            .sum();
        !lines.is_empty() && bytes <= 1024
    })
    .await;
    assert!(kept.len() < 60, "lines were deleted");
    assert_eq!(
        kept.last().unwrap()["invocation_id"],
        last.as_str(),
        "the newest line stays"
    );
}
