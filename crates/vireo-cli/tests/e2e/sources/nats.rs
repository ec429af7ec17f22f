//! NATS JetStream: a durable pull consumer per source, explicit acks after the commit,
//! redelivery after the ack-wait of what a killed node had pulled.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use serde_json::json;
use vireo_testsvc::Nats;

use super::{
    BY_ID, FAST_CLAIMS, MESSAGES, QUICK_RETRIES, add_source, create, dead_lettered_and_redriven,
    each_delivered_once, last_delivery_line, listed_all_acknowledged, runs_on, shared_by_both,
    source_becomes, state_changes_logged, two_nodes,
};
use crate::support::{DEADLINE, Server, eventually};

const CONSUMER: &str = "vireo_default_orders";

async fn jetstream(nats: &Nats) -> jetstream::Context {
    jetstream::new(async_nats::connect(nats.url()).await.unwrap())
}

/// A stream `name` holding the subjects `<prefix>.orders.>` and `<prefix>.audit.>`.
pub(super) async fn create_stream(js: &jetstream::Context, name: &str, prefix: &str) {
    js.create_stream(stream::Config {
        name: name.to_string(),
        subjects: vec![format!("{prefix}.orders.>"), format!("{prefix}.audit.>")],
        ..Default::default()
    })
    .await
    .unwrap();
}

/// Publishes `payloads` on `subject`; returns each message's stream sequence with its payload.
pub(super) async fn publish(
    js: &jetstream::Context,
    subject: &str,
    payloads: impl IntoIterator<Item = String>,
) -> BTreeMap<String, String> {
    let mut acks = Vec::new();
    for payload in payloads {
        let ack = js
            .publish(subject.to_string(), payload.clone().into())
            .await
            .unwrap();
        acks.push((ack, payload));
    }
    let mut published = BTreeMap::new();
    for (ack, payload) in acks {
        published.insert(ack.await.unwrap().sequence.to_string(), payload);
    }
    published
}

/// Messages the source's consumer delivered and still waits to have acknowledged.
async fn unacknowledged(js: &jetstream::Context, stream: &str) -> usize {
    let stream = js.get_stream(stream).await.unwrap();
    stream
        .consumer_info(CONSUMER)
        .await
        .unwrap()
        .num_ack_pending
}

#[tokio::test]
async fn each_message_on_the_filtered_subjects_becomes_one_succeeded_invocation() {
    let nats = Nats::shared();
    let js = jetstream(nats).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    create_stream(&js, "E2E_ORDERS", "flow").await;

    let created = add_source(
        &server,
        "orders",
        "nats",
        &nats.url(),
        "E2E_ORDERS",
        &["--subject", "flow.orders.>"],
    );
    assert_eq!(created["kind"], "nats", "{created}");
    assert_eq!(created["subject"], "flow.orders.>", "{created}");
    // Outside the filter: never delivered.
    publish(&js, "flow.audit.x", (0..5).map(|n| format!("audit-{n}"))).await;
    let published = publish(
        &js,
        "flow.orders.eu",
        (0..MESSAGES).map(|n| format!("{{\"order\":{n}}}")),
    )
    .await;
    each_delivered_once(&server, &published, BY_ID).await;
    listed_all_acknowledged(&server, MESSAGES, json!(0)).await;
    assert_eq!(unacknowledged(&js, "E2E_ORDERS").await, 0);
    let line = last_delivery_line(&server).await;
    assert!(line.contains("ce-type=dev.vireo.nats.message"), "{line}");

    // Paused: messages wait at the broker, then arrive after resume.
    super::pause(&server).await;
    let more = publish(&js, "flow.orders.us", ["late".to_string()]).await;
    server.cli_ok(&["sources", "resume", "orders"]);
    let mut all = published.clone();
    all.extend(more);
    each_delivered_once(&server, &all, BY_ID).await;

    // Deleted: its durable consumer goes from the stream too.
    server.cli_ok(&["sources", "rm", "orders"]);
    let stream = js.get_stream("E2E_ORDERS").await.unwrap();
    eventually(DEADLINE, || async {
        match stream.consumer_info(CONSUMER).await {
            Err(_) => Ok(()),
            Ok(info) => Err(format!("consumer {} is still there", info.name)),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_share_a_consumers_messages_and_run_none_twice() {
    let nats = Nats::shared();
    let js = jetstream(nats).await;
    let data = tempfile::tempdir().unwrap();
    let nodes = two_nodes(data.path()).await;
    create_stream(&js, "E2E_SHARED", "shared").await;
    // Small pulls, so that neither node can take every message in a few.
    add_source(
        &nodes[0],
        "orders",
        "nats",
        &nats.url(),
        "E2E_SHARED",
        &["--batch-size", "10"],
    );
    for node in &nodes {
        runs_on(node).await;
    }
    let published = publish(
        &js,
        "shared.orders.eu",
        (0..MESSAGES).map(|n| format!("{{\"order\":{n}}}")),
    )
    .await;
    each_delivered_once(&nodes[0], &published, BY_ID).await;
    shared_by_both(&nodes, MESSAGES).await;
    assert_eq!(unacknowledged(&js, "E2E_SHARED").await, 0);
}

#[tokio::test]
async fn a_jetstream_source_that_cannot_work_is_refused_at_create_with_the_reason() {
    let nats = Nats::shared();
    let js = jetstream(nats).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("probe", "probe", json!({})).await;
    create_stream(&js, "E2E_GUARDED", "guarded").await;
    let source = |url: &str, stream: &str, subject: &str| {
        json!({"name": "orders", "function": "probe", "kind": "nats", "url": url,
               "stream": stream, "subject": subject})
    };

    let (status, code, body) = create(
        &server,
        &source("redis://127.0.0.1:6379", "E2E_GUARDED", "guarded.orders.>"),
    )
    .await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (400, "invalid_source"),
        "{body}"
    );
    let (status, code, body) =
        create(&server, &source(&nats.url(), "E2E_GUARDED", "guarded..x")).await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (400, "invalid_source"),
        "{body}"
    );
    assert!(body.to_string().contains("subject"), "{body}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let (status, code, body) = create(
        &server,
        &source(
            &format!("nats://127.0.0.1:{closed_port}"),
            "E2E_GUARDED",
            "guarded.orders.>",
        ),
    )
    .await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (422, "source_unreachable"),
        "{body}"
    );

    let (status, code, body) = create(
        &server,
        &source(&nats.url(), "E2E_NO_SUCH", "guarded.orders.>"),
    )
    .await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (422, "source_stream_missing"),
        "{body}"
    );
    assert!(body.to_string().contains("E2E_NO_SUCH"), "{body}");

    let (status, _, body) = create(
        &server,
        &source(&nats.url(), "E2E_GUARDED", "guarded.orders.>"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let consumer = js
        .get_stream("E2E_GUARDED")
        .await
        .unwrap()
        .consumer_info(CONSUMER)
        .await
        .unwrap();
    assert_eq!(consumer.config.filter_subject, "guarded.orders.>");
}

#[tokio::test]
async fn a_vireo_killed_while_messages_flow_loses_none_and_stores_each_once() {
    let nats = Nats::shared();
    let js = jetstream(nats).await;
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    create_stream(&js, "E2E_CRASH", "crash").await;
    add_source(&server, "orders", "nats", &nats.url(), "E2E_CRASH", &[]);
    let published = publish(
        &js,
        "crash.orders.eu",
        (0..MESSAGES).map(|n| format!("crash-{n}")),
    )
    .await;
    server
        .midway_through_a_source("probe", 50, published.len() as u64)
        .await;
    server.kill();
    let server = server.restart().config(FAST_CLAIMS).start();
    server.all_succeeded("probe", MESSAGES as u64).await;
    eventually(DEADLINE, || async {
        let left = unacknowledged(&js, "E2E_CRASH").await;
        if left == 0 {
            Ok(())
        } else {
            Err(format!("{left} messages unacknowledged"))
        }
    })
    .await;
    // Acknowledged everywhere, and still exactly one stored invocation per message.
    server.all_succeeded("probe", published.len() as u64).await;
}

#[tokio::test]
async fn a_stopped_nats_server_makes_the_source_fail_then_run_again_by_itself() {
    let mut nats = Nats::start().expect("a NATS server of its own, to stop it");
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    let mut published = {
        let js = jetstream(&nats).await;
        create_stream(&js, "E2E_OUTAGE", "outage").await;
        add_source(&server, "orders", "nats", &nats.url(), "E2E_OUTAGE", &[]);
        publish(&js, "outage.orders.eu", ["before".to_string()]).await
    };
    server.all_succeeded("probe", 1).await;

    nats.stop().unwrap();
    let url = nats.url();
    let failing = source_becomes(&server, "failing", DEADLINE, |error| {
        error.is_some_and(|error| error.contains("NATS server") || error.contains(&url))
    })
    .await;
    assert!(failing["last_error_at"].is_string(), "{failing}");

    // Started again with its streams: the source reconnects by itself, where it left off.
    nats.start_again().unwrap();
    source_becomes(&server, "running", Duration::from_secs(30), |_| true).await;
    let js = jetstream(&nats).await;
    published.extend(
        publish(
            &js,
            "outage.orders.eu",
            (0..100).map(|n| format!("after-{n}")),
        )
        .await,
    );
    each_delivered_once(&server, &published, BY_ID).await;
    state_changes_logged(&server).await;
}

#[tokio::test]
async fn messages_a_function_fails_are_retried_dead_lettered_and_redriven() {
    let nats = Nats::shared();
    let js = jetstream(nats).await;
    let data = tempfile::tempdir().unwrap();
    let config = format!("{FAST_CLAIMS}{QUICK_RETRIES}");
    let server = Server::builder(data.path()).config(&config).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    server.cli_ok(&["retry-policy", "probe", "--max-attempts", "2"]);
    create_stream(&js, "E2E_FAILING", "failing").await;
    add_source(&server, "orders", "nats", &nats.url(), "E2E_FAILING", &[]);
    // The broker header `status` reaches the probe as x-vireo-msg-status: it answers 500.
    let mut failing = BTreeMap::new();
    for n in 0..5 {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("status", "500");
        let ack = js
            .publish_with_headers("failing.orders.eu", headers, format!("bad-{n}").into())
            .await
            .unwrap();
        failing.insert(ack.await.unwrap().sequence.to_string(), format!("bad-{n}"));
    }
    let good = publish(
        &js,
        "failing.orders.eu",
        (0..5).map(|n| format!("good-{n}")),
    )
    .await;

    dead_lettered_and_redriven(&server, &failing, &good).await;
    // Acknowledged to the broker once stored: the failures were the queue's to retry.
    assert_eq!(unacknowledged(&js, "E2E_FAILING").await, 0);
}
