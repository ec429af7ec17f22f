//! RabbitMQ (AMQP 0-9-1): the source consumes an existing queue with manual acknowledgements
//! after the commit; what a dead connection left unacknowledged the broker delivers again, and
//! the publisher's `message_id` keeps it stored once.

use std::collections::BTreeMap;
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::json;
use vireo_testsvc::RabbitMq;

use super::{
    BY_ID, FAST_CLAIMS, MESSAGES, QUICK_RETRIES, add_source, create, dead_lettered_and_redriven,
    each_delivered_once, last_delivery_line, listed_all_acknowledged, runs_on, shared_by_both,
    source_becomes, state_changes_logged, two_nodes,
};
use crate::support::{DEADLINE, Server, eventually};

pub(super) const SECRET: &str = "AMQP_PASSWORD";

/// A confirming channel to `broker`, with the connection that holds it open.
pub(super) async fn channel(broker: &RabbitMq) -> (Connection, Channel) {
    let connection =
        Connection::connect(&broker.url_with_password(), ConnectionProperties::default())
            .await
            .unwrap();
    let channel = connection.create_channel().await.unwrap();
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    (connection, channel)
}

/// A durable queue `name`: its messages outlive a broker restart.
pub(super) async fn declare_queue(channel: &Channel, name: &str) {
    channel
        .queue_declare(
            name.into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await
        .unwrap();
}

/// Messages ready in `queue` (neither delivered nor held by a consumer), and its consumers.
async fn depth(channel: &Channel, queue: &str) -> (u32, u32) {
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declared = channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
        .unwrap();
    (declared.message_count(), declared.consumer_count())
}

/// Waits until `queue` holds `ready` messages and has no consumer: a paused or deleted
/// source's connection is closed, so nothing it left unacknowledged can hide as delivered.
async fn idle_with(channel: &Channel, queue: &str, ready: u32) {
    eventually(DEADLINE, || async {
        match depth(channel, queue).await {
            (messages, 0) if messages == ready => Ok(()),
            (messages, consumers) => Err(format!(
                "{messages} ready in {queue} (want {ready}), {consumers} consumers"
            )),
        }
    })
    .await;
}

/// Publishes each payload to `queue` as a persistent message with a `message_id` and the
/// `headers`, waiting for the broker's confirms; returns each message id with its payload.
pub(super) async fn publish_with(
    channel: &Channel,
    queue: &str,
    payloads: impl IntoIterator<Item = String>,
    headers: &FieldTable,
) -> BTreeMap<String, String> {
    let mut confirms = Vec::new();
    for payload in payloads {
        let id = format!("{queue}-{payload}");
        let properties = BasicProperties::default()
            .with_message_id(id.as_str().into())
            .with_delivery_mode(2)
            .with_headers(headers.clone());
        let confirm = channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                payload.as_bytes(),
                properties,
            )
            .await
            .unwrap();
        confirms.push((confirm, id, payload));
    }
    let mut published = BTreeMap::new();
    for (confirm, id, payload) in confirms {
        assert!(confirm.await.unwrap().is_ack(), "the broker took {id}");
        published.insert(id, payload);
    }
    published
}

async fn publish(
    channel: &Channel,
    queue: &str,
    payloads: impl IntoIterator<Item = String>,
) -> BTreeMap<String, String> {
    publish_with(channel, queue, payloads, &FieldTable::default()).await
}

/// A server with the probe deployed and the broker's password as a namespace secret.
async fn server_with_password(server: Server) -> Server {
    server.deploy_ok("probe", "probe", json!({})).await;
    server.cli_with_stdin(&["secrets", "set", SECRET], b"guest");
    server
}

/// `vireo sources add orders --kind amqp --queue QUEUE --password-secret … EXTRA…`.
fn add_queue_source(server: &Server, broker: &RabbitMq, queue: &str, extra: &[&str]) {
    let mut args = vec!["--password-secret", SECRET];
    args.extend_from_slice(extra);
    let created = add_source(server, "orders", "amqp", &broker.url(), queue, &args);
    assert_eq!(created["kind"], "amqp", "{created}");
}

/// Pauses the source and waits until `queue` is empty with no consumer: anything the source
/// left unacknowledged would be back in the queue once its connection closed.
async fn all_acknowledged_at_the_broker(server: &Server, channel: &Channel, queue: &str) {
    super::pause(server).await;
    idle_with(channel, queue, 0).await;
}

#[tokio::test]
async fn each_message_of_a_queue_becomes_one_succeeded_invocation() {
    let broker = RabbitMq::shared();
    let (_connection, channel) = channel(broker).await;
    let data = tempfile::tempdir().unwrap();
    let server = server_with_password(Server::start(data.path())).await;
    declare_queue(&channel, "e2e-orders").await;

    add_queue_source(&server, broker, "e2e-orders", &[]);
    let published = publish(
        &channel,
        "e2e-orders",
        (0..MESSAGES).map(|n| format!("{{\"order\":{n}}}")),
    )
    .await;
    each_delivered_once(&server, &published, BY_ID).await;
    listed_all_acknowledged(&server, MESSAGES, json!(0)).await;
    let line = last_delivery_line(&server).await;
    assert!(line.contains("ce-type=dev.vireo.amqp.message"), "{line}");
    assert!(line.contains("ce-subject=e2e-orders"), "{line}");

    // Paused: once its consumer is gone, messages wait in the queue, then arrive after resume.
    super::pause(&server).await;
    idle_with(&channel, "e2e-orders", 0).await;
    let more = publish(&channel, "e2e-orders", ["late".to_string()]).await;
    idle_with(&channel, "e2e-orders", 1).await;
    server.cli_ok(&["sources", "resume", "orders"]);
    let mut all = published.clone();
    all.extend(more);
    each_delivered_once(&server, &all, BY_ID).await;
    all_acknowledged_at_the_broker(&server, &channel, "e2e-orders").await;

    // Deleted: the queue is the user's and stays.
    server.cli_ok(&["sources", "rm", "orders"]);
    idle_with(&channel, "e2e-orders", 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_share_a_queues_messages_and_run_none_twice() {
    let broker = RabbitMq::shared();
    let (_connection, channel) = channel(broker).await;
    let data = tempfile::tempdir().unwrap();
    let nodes = two_nodes(data.path()).await;
    nodes[0].cli_with_stdin(&["secrets", "set", SECRET], b"guest");
    declare_queue(&channel, "e2e-shared").await;
    // A small prefetch, so that neither node can hold every message at once.
    add_queue_source(&nodes[0], broker, "e2e-shared", &["--batch-size", "10"]);
    for node in &nodes {
        runs_on(node).await;
    }
    let published = publish(
        &channel,
        "e2e-shared",
        (0..MESSAGES).map(|n| format!("{{\"order\":{n}}}")),
    )
    .await;
    each_delivered_once(&nodes[0], &published, BY_ID).await;
    shared_by_both(&nodes, MESSAGES).await;
}

#[tokio::test]
async fn a_queue_source_that_cannot_work_is_refused_at_create_with_the_reason() {
    let broker = RabbitMq::shared();
    let (_connection, channel) = channel(broker).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("probe", "probe", json!({})).await;
    declare_queue(&channel, "e2e-guarded").await;
    let source = |url: &str, queue: &str, secret: Option<&str>| {
        json!({"name": "orders", "function": "probe", "kind": "amqp", "url": url,
               "stream": queue, "password_secret": secret})
    };
    let refused = |expected: (u16, &'static str)| {
        move |(status, code, body): (u16, serde_json::Value, serde_json::Value)| {
            assert_eq!((status, code.as_str().unwrap()), expected, "{body}");
            body
        }
    };
    let invalid = refused((400, "invalid_source"));

    invalid(create(&server, &source("redis://127.0.0.1:6379", "q", None)).await);
    let body = invalid(
        create(
            &server,
            &source("amqp://guest:guest@127.0.0.1:5672/%2f", "q", None),
        )
        .await,
    );
    assert!(body.to_string().contains("password_secret"), "{body}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let closed_url = format!("amqp://127.0.0.1:{closed_port}/%2f");
    refused((422, "source_unreachable"))(
        create(&server, &source(&closed_url, "e2e-guarded", None)).await,
    );

    server.cli_with_stdin(&["secrets", "set", SECRET], b"wrong-password");
    let body = refused((422, "source_auth_refused"))(
        create(&server, &source(&broker.url(), "e2e-guarded", Some(SECRET))).await,
    );
    assert!(!body.to_string().contains("wrong-password"), "{body}");

    server.cli_with_stdin(&["secrets", "set", SECRET], b"guest");
    let body = refused((422, "source_stream_missing"))(
        create(
            &server,
            &source(&broker.url(), "e2e-no-such-queue", Some(SECRET)),
        )
        .await,
    );
    assert!(body.to_string().contains("e2e-no-such-queue"), "{body}");

    let (status, _, body) =
        create(&server, &source(&broker.url(), "e2e-guarded", Some(SECRET))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["password_secret"], SECRET);
}

#[tokio::test]
async fn a_vireo_killed_while_messages_flow_loses_none_and_stores_each_once() {
    let broker = RabbitMq::shared();
    let (_connection, channel) = channel(broker).await;
    let data = tempfile::tempdir().unwrap();
    let mut server =
        server_with_password(Server::builder(data.path()).config(FAST_CLAIMS).start()).await;
    declare_queue(&channel, "e2e-crash").await;
    add_queue_source(&server, broker, "e2e-crash", &[]);
    let published = publish(
        &channel,
        "e2e-crash",
        (0..MESSAGES).map(|n| format!("crash-{n}")),
    )
    .await;
    server
        .midway_through_a_source("probe", 50, published.len() as u64)
        .await;
    server.kill();
    let server = server.restart().config(FAST_CLAIMS).start();
    // Redelivered messages carry their message_id: still exactly one invocation each.
    server.all_succeeded("probe", published.len() as u64).await;
    all_acknowledged_at_the_broker(&server, &channel, "e2e-crash").await;
    server.all_succeeded("probe", published.len() as u64).await;
}

#[tokio::test]
async fn a_stopped_broker_makes_the_source_fail_then_run_again_by_itself() {
    let mut broker = RabbitMq::start().expect("a RabbitMQ broker of its own, to stop it");
    let data = tempfile::tempdir().unwrap();
    let server =
        server_with_password(Server::builder(data.path()).config(FAST_CLAIMS).start()).await;
    let mut published = {
        let (_connection, channel) = channel(&broker).await;
        declare_queue(&channel, "e2e-outage").await;
        add_queue_source(&server, &broker, "e2e-outage", &[]);
        publish(&channel, "e2e-outage", ["before".to_string()]).await
    };
    server.all_succeeded("probe", 1).await;

    broker.stop().unwrap();
    let failing = source_becomes(&server, "failing", DEADLINE, |error| error.is_some()).await;
    assert!(failing["last_error_at"].is_string(), "{failing}");

    // Started again with its durable queue: the source reconnects by itself.
    broker.start_again().unwrap();
    source_becomes(&server, "running", Duration::from_secs(30), |_| true).await;
    let (_connection, channel) = channel(&broker).await;
    published.extend(
        publish(
            &channel,
            "e2e-outage",
            (0..100).map(|n| format!("after-{n}")),
        )
        .await,
    );
    each_delivered_once(&server, &published, BY_ID).await;
    state_changes_logged(&server).await;
}

#[tokio::test]
async fn messages_a_function_fails_are_retried_dead_lettered_and_redriven() {
    let broker = RabbitMq::shared();
    let (_connection, channel) = channel(broker).await;
    let data = tempfile::tempdir().unwrap();
    let config = format!("{FAST_CLAIMS}{QUICK_RETRIES}");
    let server = server_with_password(Server::builder(data.path()).config(&config).start()).await;
    server.cli_ok(&["retry-policy", "probe", "--max-attempts", "2"]);
    declare_queue(&channel, "e2e-failing").await;
    add_queue_source(&server, broker, "e2e-failing", &[]);
    // The message header `status` reaches the probe as x-vireo-msg-status: it answers 500.
    let mut status = FieldTable::default();
    status.insert("status".into(), AMQPValue::LongString("500".into()));
    let failing = publish_with(
        &channel,
        "e2e-failing",
        (0..3).map(|n| format!("bad-{n}")),
        &status,
    )
    .await;
    let good = publish(&channel, "e2e-failing", (0..3).map(|n| format!("good-{n}"))).await;

    dead_lettered_and_redriven(&server, &failing, &good).await;
    // Acknowledged to the broker once stored: the failures were the queue's to retry.
    all_acknowledged_at_the_broker(&server, &channel, "e2e-failing").await;
}
