//! MQTT: QoS 1 with the source's persistent session and manual acks after the commit. MQTT
//! messages have no identity, so these tests publish each message on a topic of its own and
//! count deliveries by `ce-subject`; delivery is at least once.

use std::collections::BTreeMap;
use std::time::Duration;

use rumqttc::{AsyncClient, MqttOptions, QoS};
use serde_json::{Value, json};
use vireo_testsvc::Mosquitto;

use super::{
    BY_SUBJECT, FAST_CLAIMS, MESSAGES, add_source, create, each_delivered_once, last_delivery_line,
    listed_all_acknowledged, runs_on, shared_by_both, source_becomes, state_changes_logged,
    two_nodes,
};
use crate::support::{DEADLINE, Server, stdout_json};

/// A publisher whose connection runs until the test ends.
pub(super) fn publisher(broker: &Mosquitto, id: &str) -> AsyncClient {
    let mut options = MqttOptions::new(id, "127.0.0.1", broker.port());
    // rumqttc's default of 10 KiB would refuse the large messages.
    options.set_max_packet_size(16 << 20, 16 << 20);
    let (client, mut events) = AsyncClient::new(options, 2 * MESSAGES);
    tokio::spawn(async move { while events.poll().await.is_ok() {} });
    client
}

/// Publishes `payloads` at QoS 1, each on `<prefix><n>`; returns each topic with its payload.
pub(super) async fn publish(
    client: &AsyncClient,
    prefix: &str,
    payloads: impl IntoIterator<Item = String>,
) -> BTreeMap<String, String> {
    let mut published = BTreeMap::new();
    for (n, payload) in payloads.into_iter().enumerate() {
        let topic = format!("{prefix}{n}");
        client
            .publish(&topic, QoS::AtLeastOnce, false, payload.clone())
            .await
            .unwrap();
        published.insert(topic, payload);
    }
    published
}

/// Adds the source `orders` on `e2e/orders/+` and waits until it has subscribed.
async fn subscribed_source(server: &Server, broker: &Mosquitto) -> Value {
    let created = add_source(server, "orders", "mqtt", &broker.url(), "e2e/orders/+", &[]);
    source_becomes(server, "running", DEADLINE, |_| true).await;
    created
}

#[tokio::test]
async fn each_message_on_the_topic_filter_becomes_one_succeeded_invocation() {
    let broker = Mosquitto::start().expect("an MQTT broker of its own");
    let client = publisher(&broker, "e2e-flow");
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    let created = subscribed_source(&server, &broker).await;
    assert_eq!(created["qos"], 1, "QoS 1 unless asked: {created}");
    assert_eq!(created["kind"], "mqtt", "{created}");
    assert_eq!(created["stream"], "e2e/orders/+", "{created}");

    // Outside the filter: never delivered.
    publish(&client, "e2e/audit/", (0..5).map(|n| format!("audit-{n}"))).await;
    let published = publish(
        &client,
        "e2e/orders/",
        (0..MESSAGES).map(|n| format!("{{\"order\":{n}}}")),
    )
    .await;
    each_delivered_once(&server, &published, BY_SUBJECT).await;
    listed_all_acknowledged(&server, MESSAGES, Value::Null).await;
    let line = last_delivery_line(&server).await;
    assert!(line.contains("ce-type=dev.vireo.mqtt.message"), "{line}");

    // Paused: the persistent session keeps what arrives, delivered after resume.
    super::pause(&server).await;
    let more = publish(&client, "e2e/orders/late-", ["late".to_string()]).await;
    server.cli_ok(&["sources", "resume", "orders"]);
    let mut all = published.clone();
    all.extend(more);
    each_delivered_once(&server, &all, BY_SUBJECT).await;

    // Deleted: the broker keeps no session for it. Resuming the source's session after the
    // removal finds none (MQTT's session-present flag).
    server.cli_ok(&["sources", "rm", "orders"]);
    server.logged("source removed at its broker").await;
    let mut options = MqttOptions::new("vireo.default.orders", "127.0.0.1", broker.port());
    options.set_clean_session(false);
    let (_client, mut events) = AsyncClient::new(options, 10);
    let session_present = loop {
        if let rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack)) =
            events.poll().await.unwrap()
        {
            break ack.session_present;
        }
    };
    assert!(
        !session_present,
        "the source's session was left at the broker"
    );
}

#[tokio::test]
async fn messages_published_at_qos_0_arrive_while_the_source_runs() {
    let broker = Mosquitto::start().expect("an MQTT broker of its own");
    let client = publisher(&broker, "e2e-qos0");
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    subscribed_source(&server, &broker).await;
    // Delivered at the lower of the publish and subscription QoS: 0, with no acknowledgement.
    let mut published = BTreeMap::new();
    for n in 0..50 {
        let topic = format!("e2e/orders/qos0-{n}");
        client
            .publish(&topic, QoS::AtMostOnce, false, format!("{{\"n\":{n}}}"))
            .await
            .unwrap();
        published.insert(topic, String::new());
    }
    each_delivered_once(&server, &published, BY_SUBJECT).await;
}

/// `--qos 0` subscribes at QoS 0: messages published at QoS 1 arrive at the lower QoS, with
/// nothing acknowledged. QoS is an MQTT source's setting, 0 or 1.
#[tokio::test]
async fn a_qos_0_source_takes_messages_best_effort_and_qos_is_checked() {
    let broker = Mosquitto::start().expect("an MQTT broker of its own");
    let client = publisher(&broker, "e2e-sub-qos0");
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    let url = broker.url();
    let created = stdout_json(&server.cli(&[
        "sources",
        "add",
        "orders",
        "--kind",
        "mqtt",
        "--url",
        &url,
        "--topic",
        "e2e/orders/+",
        "--qos",
        "0",
        "--function",
        "probe",
        "-o",
        "json",
    ]));
    assert_eq!(created["qos"], 0, "{created}");
    source_becomes(&server, "running", DEADLINE, |_| true).await;
    let published = publish(
        &client,
        "e2e/orders/",
        (0..50).map(|n| format!("{{\"n\":{n}}}")),
    )
    .await;
    each_delivered_once(&server, &published, BY_SUBJECT).await;
    let listed = stdout_json(&server.cli(&["sources", "ls", "-o", "json"]));
    assert_eq!(listed["sources"][0]["qos"], 0, "{listed}");

    let refused = server.cli(&[
        "sources",
        "add",
        "two",
        "--kind",
        "mqtt",
        "--url",
        &url,
        "--topic",
        "e2e/two/+",
        "--qos",
        "2",
        "--function",
        "probe",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--qos"), "{stderr}");
    let source = |kind: &str, url: &str, qos: u8| json!({"name": "two", "function": "probe", "kind": kind, "url": url, "stream": "e2e/two/+", "qos": qos});
    for (body, says) in [
        (source("mqtt", &url, 2), "qos must be 0"),
        (
            source("redis", "redis://127.0.0.1:6379", 1),
            "qos is an MQTT",
        ),
    ] {
        let (status, code, answer) = create(&server, &body).await;
        assert_eq!((status, code), (400, json!("invalid_source")), "{answer}");
        assert!(answer.to_string().contains(says), "{answer}");
    }
}

#[tokio::test]
async fn an_mqtt_source_that_cannot_work_is_refused_at_create_with_the_reason() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("probe", "probe", json!({})).await;
    let source = |url: &str, topic: &str| json!({"name": "orders", "function": "probe", "kind": "mqtt", "url": url, "stream": topic});
    let (status, code, body) =
        create(&server, &source("nats://127.0.0.1:4222", "e2e/orders/+")).await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (400, "invalid_source"),
        "{body}"
    );
    let (status, code, body) =
        create(&server, &source("mqtt://127.0.0.1:1883", "e2e/#/orders")).await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (400, "invalid_source"),
        "{body}"
    );
    assert!(body.to_string().contains("topic"), "{body}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let (status, code, body) = create(
        &server,
        &source(&format!("mqtt://127.0.0.1:{closed_port}"), "e2e/orders/+"),
    )
    .await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (422, "source_unreachable"),
        "{body}"
    );
}

#[tokio::test]
async fn a_vireo_killed_while_messages_flow_loses_none() {
    let broker = Mosquitto::start().expect("an MQTT broker of its own");
    let client = publisher(&broker, "e2e-crash");
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    subscribed_source(&server, &broker).await;
    let published = publish(
        &client,
        "e2e/orders/",
        (0..MESSAGES).map(|n| format!("crash-{n}")),
    )
    .await;
    server
        .midway_through_a_source("probe", 50, published.len() as u64)
        .await;
    server.kill();
    let server = server.restart().config(FAST_CLAIMS).start();
    // At least once: every message stored, and those stored but not yet acknowledged when
    // Vireo died (at most one batch) stored again, since MQTT gives them no identity to
    // recognise them by. Counted in the queue: the probe's log lines of invocations that ran
    // just before the kill are not all kept, so they cannot tell each message apart here.
    let counts = server
        .queue_counts_until("probe", Duration::from_secs(120), |counts| {
            counts["succeeded"].as_u64().unwrap() >= published.len() as u64
                && counts["queued"] == 0
                && counts["running"] == 0
        })
        .await;
    let stored = counts["succeeded"].as_u64().unwrap();
    assert!(
        stored - published.len() as u64 <= 100,
        "{counts}: more stored twice than one batch in flight"
    );
    assert_eq!(
        (counts["failed"].clone(), counts["dead"].clone()),
        (json!(0), json!(0))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_share_a_topics_messages_and_run_none_twice() {
    let broker = Mosquitto::start().expect("an MQTT broker of its own");
    let client = publisher(&broker, "e2e-shared");
    let data = tempfile::tempdir().unwrap();
    let nodes = two_nodes(data.path()).await;
    add_source(
        &nodes[0],
        "orders",
        "mqtt",
        &broker.url(),
        "e2e/orders/+",
        &[],
    );
    for node in &nodes {
        runs_on(node).await;
    }
    let published = publish(
        &client,
        "e2e/orders/",
        (0..MESSAGES).map(|n| format!("shared-{n}")),
    )
    .await;
    each_delivered_once(&nodes[0], &published, BY_SUBJECT).await;
    shared_by_both(&nodes, MESSAGES).await;
}

#[tokio::test]
async fn a_stopped_broker_makes_the_source_fail_then_run_again_by_itself() {
    let mut broker = Mosquitto::start().expect("an MQTT broker of its own, to stop it");
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    subscribed_source(&server, &broker).await;
    let mut published = publish(
        &publisher(&broker, "e2e-before"),
        "e2e/orders/before-",
        ["before".to_string()],
    )
    .await;
    server.all_succeeded("probe", 1).await;

    broker.stop().unwrap();
    let url = broker.url();
    let failing = source_becomes(&server, "failing", DEADLINE, |error| {
        error.is_some_and(|error| error.contains("MQTT broker") || error.contains(&url))
    })
    .await;
    assert!(failing["last_error_at"].is_string(), "{failing}");

    broker.start_again().unwrap();
    source_becomes(&server, "running", Duration::from_secs(30), |_| true).await;
    let client = publisher(&broker, "e2e-after");
    published.extend(
        publish(
            &client,
            "e2e/orders/after-",
            (0..100).map(|n| format!("after-{n}")),
        )
        .await,
    );
    each_delivered_once(&server, &published, BY_SUBJECT).await;
    state_changes_logged(&server).await;
}

#[tokio::test]
async fn a_message_up_to_6_mib_is_delivered_and_a_larger_one_fails_the_source_with_the_limit() {
    const TAKEN: usize = 6 * 1024 * 1024;
    let broker = Mosquitto::start().expect("an MQTT broker of its own");
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    subscribed_source(&server, &broker).await;
    let client = publisher(&broker, "e2e-large");

    let published = publish(&client, "e2e/orders/large-", ["x".repeat(TAKEN)]).await;
    each_delivered_once(&server, &published, BY_SUBJECT).await;
    let line = last_delivery_line(&server).await;
    assert!(line.ends_with(&format!(" body-bytes={TAKEN}")), "{line}");

    // One byte more, then far more (refused from the packet's header, before it is read):
    // each fails the source and is kept at the broker (never acknowledged, so never lost).
    for (n, size) in [TAKEN + 1, 2 * TAKEN].into_iter().enumerate() {
        if n > 0 {
            // A fresh session: the first oversized message stalls the one before.
            server.cli_ok(&["sources", "rm", "orders"]);
            server.logged("source removed at its broker").await;
            subscribed_source(&server, &broker).await;
        }
        publish(
            &client,
            &format!("e2e/orders/over-{n}-"),
            ["x".repeat(size)],
        )
        .await;
        let failing = source_becomes(&server, "failing", DEADLINE, |error| {
            error.is_some_and(|error| error.contains(&format!("over the {TAKEN} bytes")))
        })
        .await;
        assert!(failing["last_error_at"].is_string(), "{failing}");
    }
    let counts = server.queue_counts_until("probe", DEADLINE, |_| true).await;
    assert_eq!(
        counts["succeeded"], 1,
        "an oversized message was stored: {counts}"
    );
    assert_eq!(
        counts["queued"], 0,
        "an oversized message was stored: {counts}"
    );
}
