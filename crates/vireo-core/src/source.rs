//! Event sources: a broker's messages, each accepted into the durable async queue (keyed by the
//! message's identity) and acknowledged to the broker only after that commit. The model, its
//! validation and the seams here; the kinds and their runner are the triggers'.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::message_filter::MessageFilter;
use crate::names::{Name, VersionSelector};
use crate::secrets::{SecretName, SecretValue};
use crate::store::StoreError;

/// Longest connection URL.
pub const MAX_SOURCE_URL_LEN: usize = 1024;
/// Longest stream (subject, topic, queue) name, and subject filter.
pub const MAX_SOURCE_STREAM_LEN: usize = 128;
/// Most messages one receive asks the broker for.
pub const MAX_SOURCE_BATCH: u32 = 1000;
/// Messages one receive asks the broker for when the source does not say.
pub const DEFAULT_SOURCE_BATCH: u32 = 100;
/// Longest a batching source gathers messages for one invocation. Kept well below how long a
/// broker waits before taking an unacknowledged message back (`[sources] claim_idle_ms`).
pub const MAX_BATCH_WINDOW_MS: u32 = 5_000;

/// The brokers a source reads from. Only the kinds built are listed; the CLI and the API name
/// them in their errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// A Redis stream read through a consumer group.
    Redis,
    /// A NATS JetStream stream read through a durable pull consumer.
    Nats,
    /// An MQTT topic filter subscribed to at QoS 1 with a persistent session.
    Mqtt,
    /// A PostgreSQL table's row changes, recorded by a trigger in an outbox table.
    Postgres,
    /// A RabbitMQ (AMQP 0-9-1) queue, consumed with manual acknowledgements.
    Amqp,
}

impl SourceKind {
    pub const ALL: [SourceKind; 5] = [
        SourceKind::Redis,
        SourceKind::Nats,
        SourceKind::Mqtt,
        SourceKind::Postgres,
        SourceKind::Amqp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Redis => "redis",
            SourceKind::Nats => "nats",
            SourceKind::Mqtt => "mqtt",
            SourceKind::Postgres => "postgres",
            SourceKind::Amqp => "amqp",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == value)
    }

    /// The URL schemes this kind connects with.
    fn schemes(self) -> &'static [&'static str] {
        match self {
            SourceKind::Redis => &["redis", "rediss"],
            SourceKind::Nats => &["nats", "tls"],
            SourceKind::Mqtt => &["mqtt", "mqtts"],
            SourceKind::Postgres => &["postgres", "postgresql"],
            SourceKind::Amqp => &["amqp", "amqps"],
        }
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a source reads: what is stored, and what a connection is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub kind: SourceKind,
    /// Without a password: one comes only from `password_secret`.
    pub url: String,
    /// What the source reads: a Redis stream key, a JetStream stream, an MQTT topic filter, a
    /// PostgreSQL table, a RabbitMQ queue.
    pub stream: String,
    /// Only the messages on subjects matching this filter (JetStream); all when `None`.
    pub subject: Option<String>,
    /// The namespace secret holding the broker password, if it needs one.
    pub password_secret: Option<SecretName>,
    /// Most messages taken from the broker per receive, and, when batching, per invocation.
    pub batch_size: u32,
    /// Batching: each invocation gets a JSON array of up to `batch_size` messages, gathered
    /// for at most this long after the first; one invocation per message when `None`.
    pub batch_window_ms: Option<u32>,
    /// Only messages whose JSON body matches invoke the function; the others are acknowledged
    /// and counted as filtered. All when `None`.
    pub filter: Option<MessageFilter>,
    /// MQTT only: the subscription's QoS, 0 (best effort, nothing acknowledged) or 1 (at least
    /// once, the default when `None`).
    pub qos: Option<u8>,
}

/// Why a source's settings are refused; the message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidSource(String);

impl SourceSpec {
    pub fn validate(&self) -> Result<(), InvalidSource> {
        let fail = |message: String| Err(InvalidSource(message));
        if self.url.len() > MAX_SOURCE_URL_LEN {
            return fail(format!("url is longer than {MAX_SOURCE_URL_LEN} bytes"));
        }
        let url = url::Url::parse(&self.url)
            .map_err(|e| InvalidSource(format!("url {:?} is not a URL: {e}", self.url)))?;
        let schemes = self.kind.schemes();
        if !schemes.contains(&url.scheme()) {
            return fail(format!(
                "url {:?}: a {} source connects with {}",
                self.url,
                self.kind,
                schemes
                    .iter()
                    .map(|scheme| format!("{scheme}://"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return fail(format!("url {:?} names no host", self.url));
        }
        if url.password().is_some() {
            return fail(
                "url must not contain a password: store it as a namespace secret and name it with password_secret"
                    .to_string(),
            );
        }
        if self.stream.is_empty()
            || self.stream.len() > MAX_SOURCE_STREAM_LEN
            || self.stream.chars().any(|c| c.is_control() || c == ' ')
        {
            return fail(format!(
                "stream {:?} must be 1 to {MAX_SOURCE_STREAM_LEN} bytes without spaces or control characters",
                self.stream
            ));
        }
        if let Some(subject) = &self.subject {
            if self.kind != SourceKind::Nats {
                return fail(format!(
                    "subject filters a JetStream stream; a {} source reads only its stream",
                    self.kind
                ));
            }
            if !is_token_list(subject) {
                return fail(format!(
                    "subject {subject:?} must be 1 to {MAX_SOURCE_STREAM_LEN} bytes of dot-separated tokens without spaces"
                ));
            }
        }
        if self.kind == SourceKind::Mqtt && !is_topic_filter(&self.stream) {
            return fail(format!(
                "topic {:?} is not an MQTT topic filter ('+' is a whole level, '#' only the last one)",
                self.stream
            ));
        }
        if let Some(qos) = self.qos {
            if self.kind != SourceKind::Mqtt {
                return fail(format!(
                    "qos is an MQTT subscription's; a {} source acknowledges each message after its commit",
                    self.kind
                ));
            }
            if qos > 1 {
                return fail(format!(
                    "qos must be 0 (best effort) or 1 (at least once, the default), got {qos}: \
                     a function's delivery is at least once, so QoS 2's exactly-once handshake \
                     would promise nothing more"
                ));
            }
        }
        if self.kind == SourceKind::Postgres && !is_table_name(&self.stream) {
            return fail(format!(
                "table {:?} must be a table name, optionally schema-qualified (letters, digits and _, not starting with a digit)",
                self.stream
            ));
        }
        if self.batch_size == 0 || self.batch_size > MAX_SOURCE_BATCH {
            return fail(format!(
                "batch_size must be between 1 and {MAX_SOURCE_BATCH}, got {}",
                self.batch_size
            ));
        }
        if self
            .batch_window_ms
            .is_some_and(|window| window > MAX_BATCH_WINDOW_MS)
        {
            return fail(format!(
                "batch_window_ms must be at most {MAX_BATCH_WINDOW_MS}"
            ));
        }
        Ok(())
    }
}

/// A NATS subject or filter: non-empty tokens separated by dots.
fn is_token_list(subject: &str) -> bool {
    subject.len() <= MAX_SOURCE_STREAM_LEN
        && subject
            .split('.')
            .all(|token| !token.is_empty() && !token.chars().any(|c| c.is_control() || c == ' '))
}

/// `table` or `schema.table`, each an unquoted SQL identifier.
fn is_table_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('.').collect();
    parts.len() <= 2
        && parts.iter().all(|part| {
            part.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// An MQTT topic filter: `+` stands for one whole level, `#` for the rest and only at the end.
fn is_topic_filter(filter: &str) -> bool {
    let levels: Vec<&str> = filter.split('/').collect();
    levels.iter().enumerate().all(|(at, level)| match *level {
        "+" => true,
        "#" => at == levels.len() - 1,
        level => !level.contains(['+', '#']),
    })
}

/// A source to create.
#[derive(Debug, Clone)]
pub struct NewSource {
    pub namespace: Name,
    pub name: Name,
    pub function: Name,
    pub selector: VersionSelector,
    pub spec: SourceSpec,
    pub created_at_us: i64,
}

/// A stored source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub namespace: Name,
    pub name: Name,
    pub function: Name,
    pub selector: VersionSelector,
    pub spec: SourceSpec,
    pub paused: bool,
    pub created_at_us: i64,
}

impl Source {
    /// The CloudEvents `ce-source` of its deliveries.
    pub fn event_source(&self) -> String {
        format!("/namespaces/{}/sources/{}", self.namespace, self.name)
    }

    /// Its consumer group (or durable consumer) at the broker: one per source, shared by every
    /// node, so the nodes compete for the messages instead of each receiving all of them.
    pub fn consumer_group(&self) -> String {
        format!("vireo.{}.{}", self.namespace, self.name)
    }
}

/// Where sources are kept.
#[async_trait::async_trait]
pub trait SourceStore: Send + Sync + 'static {
    /// `SourceExists` if the name is taken in the namespace; `FunctionNotFound` without the
    /// function.
    async fn create_source(&self, source: &NewSource) -> Result<Source, StoreError>;
    async fn get_source(&self, namespace: &Name, name: &Name) -> Result<Source, StoreError>;
    async fn list_sources(&self, namespace: &Name) -> Result<Vec<Source>, StoreError>;
    /// Every namespace's sources, for the runners of each node.
    async fn all_sources(&self) -> Result<Vec<Source>, StoreError>;
    async fn delete_source(&self, namespace: &Name, name: &Name) -> Result<(), StoreError>;
    async fn set_source_paused(
        &self,
        namespace: &Name,
        name: &Name,
        paused: bool,
    ) -> Result<Source, StoreError>;
}

/// What a connection attempt found wrong; each names the cause, for the API to answer with.
#[derive(Debug, thiserror::Error)]
pub enum SourceProbeError {
    #[error("cannot reach {url}: {detail}")]
    Unreachable { url: String, detail: String },
    #[error("{url} refused the credentials: {detail}")]
    AuthRefused { url: String, detail: String },
    #[error("{what} {stream:?} does not exist at {url}; create it first")]
    StreamMissing {
        what: &'static str,
        stream: String,
        url: String,
    },
    #[error("{0}")]
    Invalid(String),
}

/// Connects to a source's broker once and prepares what it reads from (for Redis, its consumer
/// group), so a source is refused at create with the reason rather than failing later.
#[async_trait::async_trait]
pub trait SourceProbe: Send + Sync + 'static {
    async fn probe(
        &self,
        source: &Source,
        password: Option<&SecretValue>,
    ) -> Result<(), SourceProbeError>;
}

/// Where a source is on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceState {
    /// Connecting to the broker for the first time since the runner started.
    Starting,
    /// Connected, reading.
    Running,
    /// Paused by its owner; the broker keeps the backlog.
    Paused,
    /// Cannot connect or read; retried with backoff.
    Failing,
}

/// A source's state and counters on this node since it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SourceStatus {
    pub state: SourceState,
    /// Messages taken from the broker.
    pub received: u64,
    /// Messages committed to the queue and acknowledged to the broker (duplicates included).
    pub acknowledged: u64,
    /// Messages the queue refused for now (namespace queue full); the broker redelivers them.
    pub refused: u64,
    /// Messages acknowledged without an invocation: their body did not match the filter.
    pub filtered: u64,
    /// Messages acknowledged in the last [`SOURCE_RATE_SECONDS`] seconds, this one included.
    pub acknowledged_recently: u64,
    /// Messages in the broker not yet delivered to the source, where the broker reports it.
    pub lag: Option<u64>,
    pub last_error: Option<String>,
    pub last_error_at_us: Option<i64>,
}

/// The window of a source's recent rate of acknowledged messages.
pub const SOURCE_RATE_SECONDS: u64 = 10;

impl SourceStatus {
    /// Messages acknowledged per second, over the last [`SOURCE_RATE_SECONDS`].
    pub fn acknowledged_per_second(&self) -> f64 {
        self.acknowledged_recently as f64 / SOURCE_RATE_SECONDS as f64
    }
}

/// Reads the state of the sources running on this node, for the API.
pub trait SourceMonitor: Send + Sync + 'static {
    fn status(&self, namespace: &Name, name: &Name) -> Option<SourceStatus>;
}

/// Opens one namespace secret, for a source's password: only the server holds the key.
#[async_trait::async_trait]
pub trait SecretOpener: Send + Sync + 'static {
    /// `SecretNotFound` when the namespace has no such secret.
    async fn open_secret(
        &self,
        namespace: &Name,
        name: &SecretName,
    ) -> Result<SecretValue, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(url: &str) -> SourceSpec {
        SourceSpec {
            kind: SourceKind::Redis,
            url: url.to_string(),
            stream: "events".to_string(),
            subject: None,
            password_secret: None,
            batch_size: 100,
            batch_window_ms: None,
            filter: None,
            qos: None,
        }
    }

    #[test]
    fn qos_is_0_or_1_and_for_mqtt_only() {
        let mut mqtt = spec("mqtt://127.0.0.1:1883");
        mqtt.kind = SourceKind::Mqtt;
        mqtt.stream = "sensors/+/temp".to_string();
        for qos in [None, Some(0), Some(1)] {
            mqtt.qos = qos;
            assert!(mqtt.validate().is_ok(), "{qos:?}");
        }
        mqtt.qos = Some(2);
        let two = mqtt.validate().unwrap_err().to_string();
        assert!(
            two.contains("qos must be 0") && two.contains("got 2"),
            "{two}"
        );
        let mut redis = spec("redis://127.0.0.1");
        redis.qos = Some(1);
        let redis = redis.validate().unwrap_err().to_string();
        assert!(redis.contains("qos is an MQTT"), "{redis}");
    }

    #[test]
    fn urls_are_checked_against_the_kind() {
        assert!(spec("redis://127.0.0.1:6379").validate().is_ok());
        assert!(spec("rediss://user@example.com/2").validate().is_ok());
        let wrong_scheme = spec("nats://127.0.0.1:4222").validate().unwrap_err();
        assert!(
            wrong_scheme.to_string().contains("redis://"),
            "{wrong_scheme}"
        );
        let with_password = spec("redis://u:p@127.0.0.1").validate().unwrap_err();
        assert!(
            with_password.to_string().contains("password_secret"),
            "{with_password}"
        );
        assert!(spec("not a url").validate().is_err());
    }

    #[test]
    fn stream_and_batch_are_bounded() {
        let mut bad = spec("redis://127.0.0.1");
        bad.stream = "a b".to_string();
        assert!(bad.validate().unwrap_err().to_string().contains("stream"));
        let mut bad = spec("redis://127.0.0.1");
        bad.batch_size = 0;
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("batch_size")
        );
    }

    #[test]
    fn subjects_filter_jetstream_streams_only() {
        let mut nats = spec("nats://127.0.0.1:4222");
        nats.kind = SourceKind::Nats;
        nats.subject = Some("orders.*.>".to_string());
        assert!(nats.validate().is_ok());
        nats.subject = Some("orders..x".to_string());
        assert!(nats.validate().unwrap_err().to_string().contains("subject"));
        let mut redis = spec("redis://127.0.0.1");
        redis.subject = Some("orders".to_string());
        assert!(
            redis
                .validate()
                .unwrap_err()
                .to_string()
                .contains("subject")
        );
    }

    #[test]
    fn kinds_round_trip() {
        for kind in SourceKind::ALL {
            assert_eq!(SourceKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(SourceKind::parse("kafka"), None);
    }
}
