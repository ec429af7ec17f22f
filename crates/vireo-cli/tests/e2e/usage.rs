//! Usage totals are the sums of the invocation records, billed by the 1 ms rule, and priced by
//! the configured plan.

use serde_json::{Value, json};

use crate::support::{Server, invocation_id, stdout_json};

const PLAN: &str = "[pricing]\nper_million_requests = 2.0\nper_gb_second = 0.5\nfree_requests = 0\nfree_gb_seconds = 0.0\n";

async fn call(server: &Server, path: &str, body: &'static str) -> String {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let id = invocation_id(&response);
    let sent = response.bytes().await.unwrap().len() as u64;
    let record = server.invocation(&id).await;
    assert_eq!(
        record["response_bytes"], sent,
        "{path}: bytes sent are metered"
    );
    id
}

#[tokio::test]
async fn usage_totals_equal_the_records_and_cost_follows_the_plan() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(PLAN).start();
    server
        .deploy_ok("echo", "echo", json!({"memory_mib": 64}))
        .await;
    server
        .deploy_ok("sleep", "sleep", json!({"memory_mib": 256}))
        .await;
    let body = "x".repeat(100).leak();
    for _ in 0..4 {
        let id = call(&server, "/fn/default/echo/", body).await;
        assert_eq!(server.invocation(&id).await["request_bytes"], 100);
    }
    for _ in 0..2 {
        call(&server, "/fn/default/sleep/?ms=30", "").await;
    }

    let mut expected: Vec<(String, u64, u64, f64)> = Vec::new();
    for function in ["echo", "sleep"] {
        let (_, list) = server
            .get_json(&format!(
                "/v1/namespaces/default/functions/{function}/invocations"
            ))
            .await;
        let records = list["invocations"].as_array().unwrap();
        let mut billed = 0;
        let mut mib_ms = 0;
        for record in records {
            let duration_us = record["duration_us"].as_u64().unwrap();
            let rule = duration_us.div_ceil(1000).max(1);
            assert_eq!(record["billed_ms"], rule, "{record}");
            billed += rule;
            mib_ms += rule * record["memory_mib"].as_u64().unwrap();
        }
        expected.push((
            function.to_string(),
            records.len() as u64,
            billed,
            mib_ms as f64 / 1_024_000.0,
        ));
    }
    assert!(expected[1].2 >= 60, "two 30 ms sleeps bill at least 60 ms");

    let (status, report) = server.get_json("/v1/usage?group_by=function").await;
    assert_eq!(status, 200, "{report}");
    let rows = report["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    let (mut requests, mut billed, mut gbs) = (0, 0, 0.0);
    for ((function, count, billed_ms, gb_seconds), row) in expected.iter().zip(rows) {
        assert_eq!(row["key"], function.as_str());
        assert_eq!(row["requests"], *count);
        assert_eq!(row["billed_ms"], *billed_ms);
        assert!(
            (row["gb_seconds"].as_f64().unwrap() - gb_seconds).abs() < 1e-12,
            "{row}"
        );
        requests += count;
        billed += billed_ms;
        gbs += gb_seconds;
    }
    let totals = &report["totals"];
    assert_eq!(totals["requests"], requests);
    assert_eq!(totals["billed_ms"], billed);
    assert!((totals["gb_seconds"].as_f64().unwrap() - gbs).abs() < 1e-12);
    let cost = requests as f64 / 1e6 * 2.0 + gbs * 0.5;
    assert!(
        (totals["cost"].as_f64().unwrap() - cost).abs() < 1e-12,
        "{totals}"
    );

    let by_day = stdout_json(&server.cli(&["usage", "--by", "day", "-o", "json"]));
    assert_eq!(by_day["rows"].as_array().unwrap().len(), 1);
    assert_eq!(by_day["totals"]["requests"], requests);
    let csv = server.cli(&["usage", "-o", "csv"]);
    assert!(csv.status.success());
    let text = String::from_utf8(csv.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "function,requests,billed_ms,gb_seconds,cold_starts,kv_reads,kv_writes,cost"
    );
    assert!(
        lines[1].starts_with(&format!("echo,4,{},", expected[0].2)),
        "{text}"
    );
    assert_eq!(lines.len(), 3, "{text}");
    let (status, _): (u16, Value) = server.get_json("/v1/usage?from=tomorrow").await;
    assert_eq!(status, 400);
}
