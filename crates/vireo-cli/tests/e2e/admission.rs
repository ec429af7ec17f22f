//! Admission control: bounded waiting, 429 after the queue timeout, 503 when the queue is full,
//! and a fair share of the server-wide limit for every function.

use serde_json::{Value, json};

use crate::support::{Server, eventually, start_holding_the_only_slot};

#[tokio::test]
async fn a_request_waits_for_a_slot_then_gets_429() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[limits]\nqueue_timeout_ms = 300\n")
        .start();
    server
        .deploy_ok("slow", "sleep", json!({"max_concurrency": 1}))
        .await;
    let (holder, refused) = start_holding_the_only_slot(
        &server,
        "/fn/default/slow/?ms=2000",
        "/fn/default/slow/?ms=1",
    )
    .await;
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "busy");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("300 ms"),
        "{body}"
    );
    let holder = holder.await.unwrap().unwrap();
    assert_eq!(
        (
            holder.status().as_u16(),
            holder.text().await.unwrap().as_str()
        ),
        (200, "slept")
    );
}

#[tokio::test]
async fn a_queued_request_runs_when_a_slot_frees_and_a_full_queue_answers_503() {
    let data = tempfile::tempdir().unwrap();
    let config = "[limits]\nqueue_timeout_ms = 250\nmax_queued_per_function = 1\n";
    let server = Server::builder(data.path()).config(config).start();
    server
        .deploy_ok("slow", "sleep", json!({"max_concurrency": 1}))
        .await;
    let (holder, _) = start_holding_the_only_slot(
        &server,
        "/fn/default/slow/?ms=3000",
        "/fn/default/slow/?ms=1",
    )
    .await;
    // Two more while the slot is held: one of them waits in the single queue place, the other
    // is refused at once; the waiter then times out (its queue timeout is shorter than the hold).
    let (a, b) = tokio::join!(
        reqwest::get(server.url("/fn/default/slow/?ms=1")),
        reqwest::get(server.url("/fn/default/slow/?ms=1"))
    );
    let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [429, 503]);
    assert_eq!(holder.await.unwrap().unwrap().status(), 200);

    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[limits]\nqueue_timeout_ms = 5000\n")
        .start();
    server
        .deploy_ok("slow", "sleep", json!({"max_concurrency": 1}))
        .await;
    let holder = tokio::spawn(reqwest::get(server.url("/fn/default/slow/?ms=300")));
    let queued = reqwest::get(server.url("/fn/default/slow/?ms=1"))
        .await
        .unwrap();
    assert_eq!(
        queued.status(),
        200,
        "a request that fits in the queue timeout is served, not refused"
    );
    assert_eq!(holder.await.unwrap().unwrap().status(), 200);
}

#[tokio::test]
async fn a_flooded_function_does_not_starve_another() {
    let data = tempfile::tempdir().unwrap();
    let config = "[limits]\nmax_concurrent_invocations = 2\nqueue_timeout_ms = 30000\n";
    let server = Server::builder(data.path()).config(config).start();
    server.deploy_ok("flooded", "sleep", json!({})).await;
    server.deploy_ok("hello", "hello", json!({})).await;
    // 24 invocations of 250 ms through 2 slots take about 3 s in all.
    let flood: Vec<_> = (0..24)
        .map(|_| tokio::spawn(reqwest::get(server.url("/fn/default/flooded/?ms=250"))))
        .collect();
    let hello = reqwest::get(server.url("/fn/default/hello/"))
        .await
        .unwrap();
    assert_eq!(hello.status(), 200);
    let still_running = flood.iter().filter(|f| !f.is_finished()).count();
    assert!(
        still_running > 0,
        "hello was answered only after the whole flood: no fair share"
    );
    for request in flood {
        assert_eq!(
            request.await.unwrap().unwrap().status(),
            200,
            "the flood is queued, not refused"
        );
    }
}

/// A client that hangs up does not end its invocation: the guest runs on, keeps its slot until
/// it ends (so hanging up cannot get past `max_concurrency`), and is recorded and metered.
#[tokio::test]
async fn a_client_that_hangs_up_leaves_its_invocation_holding_the_slot_and_recorded() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[limits]\nqueue_timeout_ms = 300\n")
        .start();
    server
        .deploy_ok("slow", "sleep", json!({"max_concurrency": 1}))
        .await;
    let impatient = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(500))
        .build()
        .unwrap();
    let gave_up = impatient
        .get(server.url("/fn/default/slow/?ms=3000"))
        .send()
        .await;
    assert!(
        gave_up.as_ref().is_err_and(reqwest::Error::is_timeout),
        "the client must give up first: {gave_up:?}"
    );

    let probe = reqwest::get(server.url("/fn/default/slow/?ms=1"))
        .await
        .unwrap();
    assert_eq!(
        probe.status(),
        429,
        "the abandoned invocation still holds the only slot"
    );

    let list = "/v1/namespaces/default/functions/slow/invocations";
    let abandoned = eventually(std::time::Duration::from_secs(10), || async {
        let (_, body) = server.get_json(list).await;
        let invocations = body["invocations"].as_array().cloned().unwrap_or_default();
        invocations
            .into_iter()
            .find(|record| record["status"] == "ok")
            .ok_or(format!("no finished invocation yet: {body}"))
    })
    .await;
    assert_eq!(abandoned["http_status"], 200, "{abandoned}");
    assert!(
        abandoned["duration_us"].as_u64().unwrap() >= 3_000_000,
        "the guest ran to its end: {abandoned}"
    );
    let after = reqwest::get(server.url("/fn/default/slow/?ms=1"))
        .await
        .unwrap();
    assert_eq!(after.status(), 200, "the slot is free once the guest ended");
}
