//! Sources read their brokers over TLS (`rediss://`, `tls://`, `mqtts://`, PostgreSQL's
//! `sslmode=require`), verified against the name in the source's URL with the authorities of
//! `[egress] ca_file`: each broker's messages become succeeded invocations, and the same broker
//! named by an address its certificate does not name is refused at create.

use std::time::Duration;

use async_nats::jetstream;
use serde_json::json;
use vireo_testsvc::{Mosquitto, Nats, Postgres, Redis, TlsIdentity};

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
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &identity.cert_pem).unwrap();
    let server = Server::builder(&dir.path().join("data"))
        .config(&format!("{FAST_CLAIMS}[egress]\nca_file = {ca:?}\n"))
        .start();
    server.deploy_ok("probe", "probe", json!({})).await;

    // The brokers, each with a stream or table to read; NATS takes TLS clients only.
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
    let database = database.replace("127.0.0.1", "localhost");

    let rediss = format!("rediss://localhost:{}", redis.tls_port().unwrap());
    let mqtts = format!("mqtts://localhost:{}", broker.tls_port().unwrap());
    let nats_tls = format!("tls://localhost:{}", nats.port());
    let required = format!("{database}?sslmode=require");
    let sources = [
        ("events", "redis", rediss.as_str(), "tls-events"),
        ("readings", "mqtt", mqtts.as_str(), "tls/readings/+"),
        ("orders", "nats", nats_tls.as_str(), "TLS_ORDERS"),
        ("signups", "postgres", required.as_str(), "shop.orders"),
    ];
    for (name, kind, url, stream) in sources {
        let body = json!({"name": name, "kind": kind, "url": url, "stream": stream,
                          "function": "probe"});
        let (status, _, created) = create(&server, &body).await;
        assert_eq!(status, 201, "{kind} over TLS: {created}");
    }

    // An MQTT session receives only what is published after it subscribed: its runner's.
    for (name, ..) in sources {
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

    let all = (4 * EACH) as u64;
    let counts = server
        .queue_counts_until("probe", Duration::from_secs(60), |counts| {
            counts["succeeded"].as_u64() >= Some(all)
        })
        .await;
    assert_eq!(counts["succeeded"], json!(all), "{counts}");

    // By IP the certificate does not fit: refused at create, naming the reason.
    let by_ip = [
        (
            "redis",
            rediss.replace("localhost", "127.0.0.1"),
            "tls-events",
        ),
        ("mqtt", mqtts.replace("localhost", "127.0.0.1"), "tls/x"),
        (
            "nats",
            nats_tls.replace("localhost", "127.0.0.1"),
            "TLS_ORDERS",
        ),
        (
            "postgres",
            required.replace("localhost", "127.0.0.1"),
            "shop.orders",
        ),
    ];
    for (kind, url, stream) in by_ip {
        let body = json!({"name": "by-ip", "kind": kind, "url": url, "stream": stream,
                          "function": "probe"});
        let (status, code, refused) = create(&server, &body).await;
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
