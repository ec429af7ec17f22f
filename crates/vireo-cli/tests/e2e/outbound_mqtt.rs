//! Functions publish to a real Mosquitto through Spin's `fermyon:spin/mqtt@2.0.0`, built with
//! Spin SDK 5: a subscriber sees each message at the QoS the function asked, and destinations
//! outside the version's grants are refused.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use vireo_testsvc::Mosquitto;

use crate::support::{DEADLINE, Server};

/// A subscriber to `topic` on `broker` at exactly-once, so each message arrives at the QoS it
/// was sent.
pub(crate) async fn subscriber(broker: &Mosquitto, topic: &str) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(format!("test-{topic}"), "127.0.0.1", broker.port());
    options.set_keep_alive(Duration::from_secs(30));
    let (client, mut events) = AsyncClient::new(options, 16);
    client.subscribe(topic, QoS::ExactlyOnce).await.unwrap();
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Event::Incoming(Packet::SubAck(_)) = events.poll().await.unwrap() {
                return;
            }
        }
    })
    .await
    .expect("the broker acknowledges the subscription");
    (client, events)
}

/// The next message the subscriber receives: its payload and QoS.
pub(crate) async fn next_message(events: &mut EventLoop) -> (String, QoS) {
    tokio::time::timeout(DEADLINE, async {
        loop {
            if let Event::Incoming(Packet::Publish(message)) = events.poll().await.unwrap() {
                return (
                    String::from_utf8_lossy(&message.payload).to_string(),
                    message.qos,
                );
            }
        }
    })
    .await
    .expect("the subscriber receives the message")
}

#[tokio::test]
async fn a_subscriber_sees_each_message_at_the_qos_asked() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let broker = Mosquitto::shared();
    let grant = format!("mqtt://127.0.0.1:{}", broker.port());
    server.deploy_outbound("mq", &[grant]).await;
    let (_client, mut events) = subscriber(broker, "sensors/qos").await;

    for (qos, expected) in [
        ("0", QoS::AtMostOnce),
        ("1", QoS::AtLeastOnce),
        ("2", QoS::ExactlyOnce),
    ] {
        let path = format!("/mqtt/publish?qos={qos}&topic=sensors/qos");
        let payload = format!("reading at qos {qos}");
        let address = format!("{}?client_id=sensor", broker.url());
        assert_eq!(server.outbound("mq", &path, &address, &payload).await, "ok");
        assert_eq!(next_message(&mut events).await, (payload, expected));
    }
}

#[tokio::test]
async fn publishing_outside_the_grants_is_refused() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let broker = Mosquitto::shared();
    let port = broker.port();
    server.deploy_outbound("bare", &[]).await;
    server
        .deploy_outbound("redis-only", &[format!("redis://127.0.0.1:{port}")])
        .await;
    let path = "/mqtt/publish?qos=1&topic=refused";
    for function in ["bare", "redis-only"] {
        assert_eq!(
            server.outbound(function, path, &broker.url(), "x").await,
            format!(
                "error Error::ConnectionFailed(\"mqtt://127.0.0.1:{port} is not in the version's allowed_outbound_hosts\")"
            ),
            "{function}"
        );
    }
    assert_eq!(
        server.outbound("bare", path, "not an address", "x").await,
        "error Error::InvalidAddress"
    );
}
