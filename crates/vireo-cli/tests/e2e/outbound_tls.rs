//! Functions reach PostgreSQL (`sslmode=require`), Redis (`rediss://`), MQTT (`mqtts://`) and
//! HTTPS over TLS, built with Spin SDK 5 (and the `fetch` fixture for HTTPS), against real
//! servers listening for TLS with a certificate for `localhost` that the server trusts through
//! `[egress] ca_file`. The certificate is
//! verified against the name the function gave, although the host connects to the address it
//! approved: the same server named by its IP is refused, and so is every server when the CA
//! is not trusted.

use redis::AsyncCommands as _;
use rumqttc::QoS;
use serde_json::json;
use vireo_testsvc::{Mosquitto, Postgres, Redis, TlsIdentity};

use crate::egress::fetch;
use crate::outbound_mqtt::{next_message, subscriber};
use crate::support::Server;

/// What rustls says of a certificate it refused, inside the interfaces' error texts.
const REFUSED_CERTIFICATE: &str = "invalid peer certificate";

/// Servers listening for TLS as `localhost`, each also on a plain port for the test to check
/// what the function did.
struct TlsServers {
    identity: TlsIdentity,
    postgres: Postgres,
    redis: Redis,
    broker: Mosquitto,
    /// A Vireo serving HTTPS.
    https: Server,
    dir: tempfile::TempDir,
}

impl TlsServers {
    fn start() -> Self {
        let identity = TlsIdentity::for_names(&["localhost"]);
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&cert, &identity.cert_pem).unwrap();
        std::fs::write(&key, &identity.key_pem).unwrap();
        Self {
            postgres: Postgres::start_with_tls(&identity).expect("a PostgreSQL taking TLS"),
            redis: Redis::start_with_tls(&identity).expect("a Redis taking TLS"),
            broker: Mosquitto::start_with_tls(&identity).expect("a Mosquitto taking TLS"),
            https: Server::builder(&dir.path().join("https"))
                .tls(&cert, &key)
                .start(),
            identity,
            dir,
        }
    }

    /// The HTTPS server's `/healthz`, by `host`.
    fn healthz(&self, host: &str) -> String {
        let port = self.https.address().rsplit_once(':').unwrap().1.to_string();
        format!("https://{host}:{port}/healthz")
    }

    /// The grants for every server, by name and by IP.
    fn grants(&self) -> Vec<String> {
        let (pg, rd, mq) = self.ports();
        ["localhost", "127.0.0.1"]
            .iter()
            .flat_map(|host| {
                [
                    format!("postgres://{host}:{pg}"),
                    format!("rediss://{host}:{rd}"),
                    format!("mqtts://{host}:{mq}"),
                ]
            })
            .collect()
    }

    /// PostgreSQL's port, and Redis' and Mosquitto's TLS ports.
    fn ports(&self) -> (u16, u16, u16) {
        (
            self.postgres.port(),
            self.redis.tls_port().expect("started with TLS"),
            self.broker.tls_port().expect("started with TLS"),
        )
    }

    /// A Vireo trusting the servers' certificate, or only the Web PKI, with the functions
    /// `tls` (databases and brokers) and `fetch` (HTTPS).
    async fn vireo(&self, trusted: bool) -> Server {
        let dir = self.dir.path();
        let mut builder = Server::builder(&dir.join(format!("vireo-{trusted}")));
        if trusted {
            let ca = dir.join("ca.pem");
            std::fs::write(&ca, &self.identity.cert_pem).unwrap();
            builder = builder.config(&format!("[egress]\nca_file = {:?}\n", ca));
        }
        let server = builder.start();
        server.deploy_outbound("tls", &self.grants()).await;
        let https: Vec<_> = ["localhost", "127.0.0.1"]
            .iter()
            .map(|host| self.healthz(host).replace("/healthz", ""))
            .collect();
        server
            .deploy_ok("fetch", "fetch", json!({"allowed_outbound_hosts": https}))
            .await;
        server
    }
}

/// Whether the function's PostgreSQL session is encrypted, as the server says.
const SESSION_SSL: &str = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

#[tokio::test(flavor = "multi_thread")]
async fn functions_reach_databases_and_brokers_over_verified_tls() {
    let servers = TlsServers::start();
    let server = servers.vireo(true).await;
    let (pg, rd, mq) = servers.ports();

    // PostgreSQL: require asks for TLS; prefer, the default, connects without it.
    for (address, encrypted) in [
        (
            format!("host=localhost port={pg} user=postgres dbname=postgres sslmode=require"),
            "Boolean(true)",
        ),
        (
            format!("postgres://postgres@localhost:{pg}/postgres"),
            "Boolean(false)",
        ),
    ] {
        let answer = server
            .outbound("tls", "/pg/query", &address, SESSION_SSL)
            .await;
        assert!(
            answer.starts_with("ok ") && answer.contains(encrypted),
            "{address}: {answer}"
        );
    }

    // Redis: the TLS port speaks nothing else; the plain port shows the write landed.
    let rediss = format!("rediss://localhost:{rd}");
    assert_eq!(
        server
            .outbound("tls", "/redis/execute", &rediss, "SET over-tls yes")
            .await,
        "ok status:OK"
    );
    let mut plain = redis::Client::open(servers.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let stored: String = plain.get("over-tls").await.unwrap();
    assert_eq!(stored, "yes");

    // MQTT: a subscriber on the plain listener sees what was published over TLS.
    let (_client, mut events) = subscriber(&servers.broker, "tls/readings").await;
    let mqtts = format!("mqtts://localhost:{mq}");
    assert_eq!(
        server
            .outbound(
                "tls",
                "/mqtt/publish?qos=1&topic=tls/readings",
                &mqtts,
                "sealed"
            )
            .await,
        "ok"
    );
    assert_eq!(
        next_message(&mut events).await,
        ("sealed".to_string(), QoS::AtLeastOnce)
    );

    // HTTPS trusts the same authorities.
    let (status, body) = fetch(&server, "fetch", &servers.healthz("localhost"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = fetch(&server, "fetch", &servers.healthz("127.0.0.1"), &[]).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("TlsCertificateError"), "{body}");

    // The same servers named by IP: the certificate is not for that name.
    for (path, address, body) in [
        (
            "/pg/query",
            format!("postgres://postgres@127.0.0.1:{pg}/postgres?sslmode=require"),
            "SELECT 1",
        ),
        (
            "/redis/execute",
            format!("rediss://127.0.0.1:{rd}"),
            "GET over-tls",
        ),
        (
            "/mqtt/publish?qos=1&topic=tls/refused",
            format!("mqtts://127.0.0.1:{mq}"),
            "x",
        ),
    ] {
        let answer = server.outbound("tls", path, &address, body).await;
        assert!(
            answer.starts_with("error") && answer.contains(REFUSED_CERTIFICATE),
            "{address}: {answer}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_certificate_from_an_untrusted_authority_is_refused() {
    let servers = TlsServers::start();
    let server = servers.vireo(false).await;
    let (pg, rd, mq) = servers.ports();
    for (path, address, body) in [
        (
            "/pg/query",
            format!("host=localhost port={pg} user=postgres sslmode=require"),
            "SELECT 1",
        ),
        ("/redis/execute", format!("rediss://localhost:{rd}"), "PING"),
        (
            "/mqtt/publish?qos=1&topic=tls/untrusted",
            format!("mqtts://localhost:{mq}"),
            "x",
        ),
    ] {
        let answer = server.outbound("tls", path, &address, body).await;
        assert!(
            answer.starts_with("error")
                && answer.contains(REFUSED_CERTIFICATE)
                && answer.contains("UnknownIssuer"),
            "{address}: {answer}"
        );
    }
    let (status, body) = fetch(&server, "fetch", &servers.healthz("localhost"), &[]).await;
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("TlsCertificateError"), "{body}");
}

/// A server that accepts connections and never says a word: a TLS handshake (and PostgreSQL's
/// TLS request before it) waits for an answer that does not come, and `connect_timeout_ms`
/// ends the wait with the interface's error rather than a hung invocation.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_stalls_the_handshake_is_given_up_on_in_time() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut accepted = Vec::new();
        while let Ok((connection, _)) = silent.accept().await {
            accepted.push(connection);
        }
    });
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[connections]\nconnect_timeout_ms = 500\n")
        .start();
    let grants =
        ["postgres", "rediss", "mqtts"].map(|scheme| format!("{scheme}://127.0.0.1:{port}"));
    server.deploy_outbound("tls", &grants).await;
    for (path, address, body) in [
        (
            "/pg/query",
            format!("postgres://postgres@127.0.0.1:{port}/postgres?sslmode=require"),
            "SELECT 1",
        ),
        (
            "/redis/execute",
            format!("rediss://127.0.0.1:{port}"),
            "PING",
        ),
        (
            "/mqtt/publish?qos=1&topic=stalled",
            format!("mqtts://127.0.0.1:{port}"),
            "x",
        ),
    ] {
        let answer = server.outbound("tls", path, &address, body).await;
        assert!(
            answer.starts_with("error") && answer.contains("Timeout occurred while creating"),
            "{address}: {answer}"
        );
    }
    held.abort();
}
