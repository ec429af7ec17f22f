//! Sources read their brokers over TLS (`rediss://`, `tls://`, `mqtts://`, `amqps://`,
//! PostgreSQL's `sslmode=require`), verified against the name in the source's URL with the
//! authorities of `[egress] ca_file`: each broker's messages become succeeded invocations, and
//! the same broker named by an address its certificate does not name is refused at create.

use async_nats::jetstream;
use lapin::types::FieldTable;
use serde_json::{Value, json};
use vireo_testsvc::{Mosquitto, Nats, Postgres, RabbitMq, Redis, TlsIdentity};

use super::{FAST_CLAIMS, create};
use crate::support::{DEADLINE, Server, eventually};

/// Messages published to each broker.
const EACH: usize = 20;

#[tokio::test(flavor = "multi_thread")]
async fn each_kind_reads_its_broker_over_verified_tls() {
    let identity = TlsIdentity::for_names(&["localhost"]);
    let redis = Redis::start_with_tls(&identity).expect("a Redis taking TLS");
    let broker = Mosquitto::start_with_tls(&identity).expect("a Mosquitto taking TLS");
    let nats = Nats::start_with_tls(&identity).expect("a NATS server taking TLS");
    let postgres = Postgres::start_with_tls(&identity).expect("a PostgreSQL taking TLS");
    let rabbitmq = RabbitMq::start_with_tls(&identity).expect("a RabbitMQ taking TLS");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &identity.cert_pem).unwrap();
    let server = Server::builder(&dir.path().join("data"))
        .config(&format!("{FAST_CLAIMS}[egress]\nca_file = {ca:?}\n"))
        .start();
    server.deploy_ok("probe", "probe", json!({})).await;
    server.cli_with_stdin(&["secrets", "set", super::amqp::SECRET], b"guest");

    // The brokers, each with a stream, table or queue to read; NATS takes TLS clients only.
    let mut plain_redis = super::redis::connection(&redis).await;
    super::redis::create_stream(&mut plain_redis, "tls-events").await;
    let js = jetstream::new(
        async_nats::ConnectOptions::new()
            .add_root_certificates(ca.clone())
            .require_tls(true)
            .connect(format!("tls://localhost:{}", nats.port()))
            .await
            .expect("a TLS client of the NATS server"),
    );
    super::nats::create_stream(&js, "TLS_ORDERS", "tls").await;
    let (database, shop) = super::postgres::shop(&postgres).await;
    let (_amqp, channel) = super::amqp::channel(&rabbitmq).await;
    super::amqp::declare_queue(&channel, "tls-jobs").await;

    let by_name = [
        (
            "events",
            "redis",
            format!("rediss://localhost:{}", redis.tls_port().unwrap()),
            "tls-events",
        ),
        (
            "readings",
            "mqtt",
            format!("mqtts://localhost:{}", broker.tls_port().unwrap()),
            "tls/readings/+",
        ),
        (
            "orders",
            "nats",
            format!("tls://localhost:{}", nats.port()),
            "TLS_ORDERS",
        ),
        (
            "signups",
            "postgres",
            format!(
                "{}?sslmode=require",
                database.replace("127.0.0.1", "localhost")
            ),
            "shop.orders",
        ),
        (
            "jobs",
            "amqp",
            format!(
                "amqps://guest@localhost:{}/%2f",
                rabbitmq.tls_port().unwrap()
            ),
            "tls-jobs",
        ),
    ];
    for (name, kind, url, stream) in &by_name {
        let (status, _, created) = create(&server, &source(name, kind, url, stream)).await;
        assert_eq!(status, 201, "{kind} over TLS: {created}");
    }
    // An MQTT session receives only what is published after it subscribed: its runner's.
    for (name, ..) in &by_name {
        let path = format!("/v1/namespaces/default/sources/{name}");
        eventually(DEADLINE, || async {
            let (_, source) = server.get_json(&path).await;
            match source["state"] == "running" {
                true => Ok(()),
                false => Err(format!("{name}: {source}")),
            }
        })
        .await;
    }

    let payloads = || (0..EACH).map(|n| format!("{{\"n\":{n}}}"));
    super::redis::publish(&mut plain_redis, "tls-events", payloads()).await;
    let publisher = super::mqtt::publisher(&broker, "tls-publisher");
    super::mqtt::publish(&publisher, "tls/readings/", payloads()).await;
    super::nats::publish(&js, "tls.orders.new", payloads()).await;
    super::postgres::insert(&shop, 0, EACH as i32).await;
    super::amqp::publish_with(&channel, "tls-jobs", payloads(), &FieldTable::default()).await;

    // Each source acknowledges what it stored: all of them, none failing.
    eventually(DEADLINE, || async {
        let (_, listed) = server.get_json("/v1/namespaces/default/sources").await;
        let sources = listed["sources"].as_array().cloned().unwrap_or_default();
        let done = sources.len() == by_name.len()
            && sources.iter().all(|source| {
                source["state"] == "running" && source["acknowledged"].as_u64() == Some(EACH as u64)
            });
        match done {
            true => Ok(()),
            false => Err(format!("not all acknowledged: {listed}")),
        }
    })
    .await;
    let all = (by_name.len() * EACH) as u64;
    server
        .queue_counts_until("probe", DEADLINE, |counts| {
            counts["succeeded"].as_u64() == Some(all)
        })
        .await;

    // By IP the certificate does not fit: refused at create, naming the reason.
    for (_, kind, url, stream) in &by_name {
        let url = url.replace("localhost", "127.0.0.1");
        let (status, code, refused) = create(&server, &source("by-ip", kind, &url, stream)).await;
        let message = refused["error"]["message"].as_str().unwrap_or_default();
        assert_eq!(
            (status, code),
            (422, json!("source_unreachable")),
            "{kind}: {refused}"
        );
        assert!(
            message.to_lowercase().contains("certificate"),
            "{kind}: {message}"
        );
    }
}

/// A source `name` of `kind` reading `stream` at `url` for the probe; AMQP's with the password
/// secret (RabbitMQ's `guest` needs one).
fn source(name: &str, kind: &str, url: &str, stream: &str) -> Value {
    let mut body = json!({"name": name, "kind": kind, "url": url, "stream": stream,
                          "function": "probe"});
    if kind == "amqp" {
        body["password_secret"] = json!(super::amqp::SECRET);
    }
    body
}
