//! Event sources: each source's broker messages are accepted into the durable async queue and
//! acknowledged to the broker only after that commit, so a message the broker forgets is one
//! Vireo keeps.
//!
//! Every kind implements one small trait pair ([`Connector`] to connect, [`Receiver`] to
//! receive up to N, acknowledge, release and report lag); one generic [`runner`] owns what
//! every kind must do alike: batching, backpressure, ack-after-commit, reconnecting with
//! backoff, state and metrics. [`supervisor`] keeps one runner per running source on this node;
//! the nodes of a cluster share a source's messages through the broker's own competing
//! consumers (for Redis, one consumer group per source with a consumer per node).

mod amqp;
mod message;
mod mqtt;
mod nats;
mod postgres;
mod redis;
mod runner;
mod status;
pub mod supervisor;

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;
use vireo_core::{SecretValue, Source, SourceKind, SourceProbe, SourceProbeError};

pub use status::{SOURCE_LAG_METRIC, SOURCE_MESSAGES_METRIC, Statuses};
pub use supervisor::SourceSettings;

/// Largest payload of a message a source delivers: Lambda's limit for a synchronous payload,
/// and the default of the largest request body a function is given (`[limits]
/// max_request_body_kib`). A larger message is never acknowledged: the source turns `failing`
/// naming it, and the broker keeps it.
const MAX_MESSAGE_BYTES: usize = 6 * 1024 * 1024;

/// One message as a broker gave it.
#[derive(Debug, Clone)]
pub struct Message {
    /// The broker's identity of the message, unique in the source's stream: the idempotency
    /// key and the CloudEvents `ce-id`.
    pub id: String,
    /// The stream, subject, topic or routing key it came from (`ce-subject`).
    pub subject: String,
    pub body: Bytes,
    pub content_type: &'static str,
    /// The broker's headers or fields, sent as `x-vireo-msg-<name>`.
    pub headers: Vec<(String, String)>,
}

/// Why a receiver cannot go on; the runner reconnects with backoff.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// How one node connects to a kind's broker.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// This node's consumer name, unique among the nodes sharing a source.
    pub consumer: String,
    /// A message pending this long at a consumer that does not acknowledge it (one that died)
    /// is taken over.
    pub claim_idle: std::time::Duration,
    /// Only the create-time check: leave nothing at the broker that would keep messages for
    /// this connection alone (an MQTT persistent session).
    pub probe: bool,
    /// This node's slot (`NodeRegistry::heartbeat`), `None` until its first heartbeat: for
    /// kinds whose broker keeps state per consumer that the node taking a dead node's place
    /// must find again (an MQTT session).
    pub slot: watch::Receiver<Option<u32>>,
    /// How connections over TLS verify the broker (`rediss://`, `tls://`, `mqtts://`,
    /// `amqps://`, `sslmode=require`): against the name in the source's URL.
    pub tls: BrokerTrust,
}

/// Whom connections to brokers over TLS trust: the server's one trust, in the two forms the
/// clients take it.
#[derive(Debug, Clone)]
pub struct BrokerTrust {
    /// For the clients that take a rustls configuration.
    pub config: Arc<rustls::ClientConfig>,
    /// The authorities trusted beside the Web PKI's, as PEM, for lapin, which builds its
    /// configuration itself (from the Web PKI roots and these).
    pub extra_pem: Option<String>,
}

/// Connects to one kind of broker. Connecting checks what the source reads and prepares it
/// (for Redis, its consumer group), so the same call is the create-time probe.
#[async_trait::async_trait]
pub trait Connector: Send + Sync + 'static {
    async fn connect(
        &self,
        source: &Source,
        password: Option<&SecretValue>,
        options: &ConnectOptions,
    ) -> Result<Box<dyn Receiver>, SourceProbeError>;

    /// Removes what connecting prepared at the broker for a deleted source: its consumer
    /// group, durable consumer, persistent session, or change trigger and waiting changes.
    /// Idempotent: every node that knew the source does it once its runner has stopped, so a
    /// runner elsewhere that reconnected meanwhile cannot leave anything behind. `options` are
    /// this node's, as its runner connected with them.
    async fn remove(
        &self,
        source: &Source,
        password: Option<&SecretValue>,
        options: &ConnectOptions,
    ) -> Result<(), String>;
}

/// A connected source.
#[async_trait::async_trait]
pub trait Receiver: Send {
    /// Up to `max` messages, waiting a short while (about a second) when none is there.
    async fn receive(&mut self, max: u32) -> Result<Vec<Message>, SourceError>;
    /// Tells the broker these are safely stored; it will not deliver them again.
    async fn acknowledge(&mut self, ids: &[String]) -> Result<(), SourceError>;
    /// These were received but not stored (the queue was full): deliver them again.
    async fn release(&mut self, ids: &[String]) -> Result<(), SourceError>;
    /// Messages the broker holds that this source has not received, where it says.
    async fn lag(&mut self) -> Result<Option<u64>, SourceError>;
}

/// Every kind this build reads.
pub struct Kinds {
    redis: Arc<dyn Connector>,
    nats: Arc<dyn Connector>,
    mqtt: Arc<dyn Connector>,
    postgres: Arc<dyn Connector>,
    amqp: Arc<dyn Connector>,
    /// What the create-time probe prepares at the broker with (a JetStream consumer's
    /// ack-wait), the same as the runners.
    claim_idle: std::time::Duration,
    /// Whom connections over TLS trust.
    tls: BrokerTrust,
}

impl Kinds {
    pub fn new(claim_idle: std::time::Duration, tls: BrokerTrust) -> Self {
        Self {
            redis: Arc::new(redis::RedisConnector),
            nats: Arc::new(nats::NatsConnector),
            mqtt: Arc::new(mqtt::MqttConnector),
            postgres: Arc::new(postgres::PostgresConnector),
            amqp: Arc::new(amqp::AmqpConnector),
            claim_idle,
            tls,
        }
    }

    pub(crate) fn tls(&self) -> BrokerTrust {
        self.tls.clone()
    }

    fn connector(&self, kind: SourceKind) -> Arc<dyn Connector> {
        match kind {
            SourceKind::Redis => self.redis.clone(),
            SourceKind::Nats => self.nats.clone(),
            SourceKind::Mqtt => self.mqtt.clone(),
            SourceKind::Postgres => self.postgres.clone(),
            SourceKind::Amqp => self.amqp.clone(),
        }
    }
}

/// How a payload is labelled for the function: JSON, text, or bytes.
fn content_type_of(payload: &[u8]) -> &'static str {
    if serde_json::from_slice::<serde_json::Value>(payload).is_ok() {
        "application/json"
    } else if std::str::from_utf8(payload).is_ok() {
        "text/plain; charset=utf-8"
    } else {
        "application/octet-stream"
    }
}

#[async_trait::async_trait]
impl SourceProbe for Kinds {
    async fn probe(
        &self,
        source: &Source,
        password: Option<&SecretValue>,
    ) -> Result<(), SourceProbeError> {
        let options = ConnectOptions {
            consumer: "probe".to_string(),
            claim_idle: self.claim_idle,
            probe: true,
            slot: watch::channel(None).1,
            tls: self.tls(),
        };
        self.connector(source.spec.kind)
            .connect(source, password, &options)
            .await
            .map(drop)
    }
}
