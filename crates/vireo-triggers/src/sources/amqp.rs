//! RabbitMQ (AMQP 0-9-1): the source's queue is consumed with manual acknowledgements and a
//! prefetch of one receive's worth (`batch_size`), so the broker hands this node no more than
//! the runner takes at once; a message is acknowledged after the queue's commit, released
//! messages are rejected with requeue, and whatever a connection left unacknowledged (its node
//! died, the broker restarted) the broker delivers again. Every node consumes the same queue
//! under its own consumer tag: RabbitMQ's competing consumers share the messages out.
//!
//! A message's identity is its `message_id` property when the publisher set one, so a
//! redelivered message is stored once. Without it AMQP gives a message no identity that
//! outlives its delivery (delivery tags are per channel), so each arrival gets a fresh id and
//! a message stored but not yet acknowledged when the connection broke is stored twice.
//!
//! The queue is the user's: the source declares it only passively (to check that it exists and
//! to read its depth) and leaves nothing at the broker to remove.

use std::time::Duration;

use futures::{FutureExt as _, StreamExt as _};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ConnectionProperties, Consumer, ErrorKind, message::Delivery};
use vireo_core::{InvocationId, SecretValue, Source, SourceProbeError};

use super::{ConnectOptions, Connector, Message, Receiver, SourceError, content_type_of};

/// How long connecting, opening a channel and declaring may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a receive waits for a first message.
const WAIT: Duration = Duration::from_secs(1);

pub(super) struct AmqpConnector;

#[async_trait::async_trait]
impl Connector for AmqpConnector {
    async fn connect(
        &self,
        source: &Source,
        password: Option<&SecretValue>,
        options: &ConnectOptions,
    ) -> Result<Box<dyn Receiver>, SourceProbeError> {
        let url = source.spec.url.as_str();
        let queue = source.spec.stream.clone();
        let (connection, channel) = tokio::time::timeout(CONNECT_TIMEOUT, async {
            // amqps:// verifies the broker against the URL's host, with the Web PKI roots and
            // the server's extra authorities (lapin builds its rustls configuration itself).
            let tls = OwnedTLSConfig {
                identity: None,
                cert_chain: options.tls.extra_pem.clone(),
            };
            let runtime =
                lapin::runtime::default_runtime().map_err(|error| connect_failure(url, &error))?;
            let connection = Connection::connect_with_config(
                &address(url, password)?,
                properties(),
                tls,
                runtime,
            )
            .await
            .map_err(|error| connect_failure(url, &error))?;
            let channel = connection
                .create_channel()
                .await
                .map_err(|error| connect_failure(url, &error))?;
            declare(&channel, &queue)
                .await
                .map_err(|error| queue_failure(url, &queue, &error))?;
            Ok::<_, SourceProbeError>((connection, channel))
        })
        .await
        .map_err(|_| SourceProbeError::Unreachable {
            url: url.to_string(),
            detail: format!("no answer within {CONNECT_TIMEOUT:?}"),
        })??;
        Ok(Box::new(AmqpReceiver {
            _connection: connection,
            channel,
            queue,
            tag: format!("{}.{}", source.consumer_group(), options.consumer),
            prefetch: u16::try_from(source.spec.batch_size).unwrap_or(u16::MAX),
            // Consuming starts with the first receive: the create-time check takes nothing.
            consumer: None,
            unacknowledged: Vec::new(),
        }))
    }

    async fn remove(
        &self,
        _: &Source,
        _: Option<&SecretValue>,
        _: &ConnectOptions,
    ) -> Result<(), String> {
        // The queue is the user's, and a consumer ends with its connection.
        Ok(())
    }
}

/// The URL to dial: the source's, with the password from its secret.
fn address(url: &str, password: Option<&SecretValue>) -> Result<String, SourceProbeError> {
    let mut parsed =
        url::Url::parse(url).map_err(|e| SourceProbeError::Invalid(format!("url {url:?}: {e}")))?;
    match (parsed.username(), password) {
        (_, Some(password)) => {
            parsed.set_password(Some(password.expose())).map_err(|()| {
                SourceProbeError::Invalid(format!("url {url:?} cannot carry a password"))
            })?;
        }
        ("", None) => {}
        (user, None) => {
            return Err(SourceProbeError::Invalid(format!(
                "url {url:?} names user {user:?}: give the password with password_secret"
            )));
        }
    }
    Ok(parsed.to_string())
}

/// No recovery of lapin's own: the runner reconnects, reporting the source failing meanwhile.
fn properties() -> ConnectionProperties {
    ConnectionProperties::default().with_connection_name("vireo-source".into())
}

/// Checks that `queue` exists, without creating it; its depth.
async fn declare(channel: &Channel, queue: &str) -> Result<u32, lapin::Error> {
    let options = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    let declared = channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await?;
    Ok(declared.message_count())
}

/// The broker's AMQP error code, if it closed the connection or channel with one.
fn refusal(error: &lapin::Error) -> Option<&AMQPErrorKind> {
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => Some(amqp.kind()),
        _ => None,
    }
}

fn connect_failure(url: &str, error: &lapin::Error) -> SourceProbeError {
    let detail = error.to_string();
    let refused = matches!(
        refusal(error),
        Some(AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED))
    ) || detail.contains("ACCESS_REFUSED")
        || detail.contains("ACCESS-REFUSED");
    match refused {
        true => SourceProbeError::AuthRefused {
            url: url.to_string(),
            detail,
        },
        false => SourceProbeError::Unreachable {
            url: url.to_string(),
            detail,
        },
    }
}

fn queue_failure(url: &str, queue: &str, error: &lapin::Error) -> SourceProbeError {
    match refusal(error) {
        Some(AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)) => SourceProbeError::StreamMissing {
            what: "queue",
            stream: queue.to_string(),
            url: url.to_string(),
        },
        Some(AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)) => SourceProbeError::AuthRefused {
            url: url.to_string(),
            detail: format!("queue {queue:?}: {error}"),
        },
        _ => connect_failure(url, error),
    }
}

struct AmqpReceiver {
    /// Held for its lifetime: dropping it closes the connection, and the broker then requeues
    /// what this consumer left unacknowledged.
    _connection: Connection,
    channel: Channel,
    queue: String,
    tag: String,
    prefetch: u16,
    consumer: Option<Consumer>,
    /// Handed to the runner and not yet acknowledged or released: id and delivery tag.
    unacknowledged: Vec<(String, u64)>,
}

impl AmqpReceiver {
    fn failed(&self, doing: &str, error: &dyn std::fmt::Display) -> SourceError {
        SourceError(format!("{doing} queue {}: {error}", self.queue))
    }

    /// The consumer, started on first use with a prefetch of one receive.
    async fn consumer(&mut self) -> Result<&mut Consumer, SourceError> {
        if self.consumer.is_none() {
            self.channel
                .basic_qos(self.prefetch, BasicQosOptions::default())
                .await
                .map_err(|e| self.failed("setting the prefetch of", &e))?;
            let consumer = self
                .channel
                .basic_consume(
                    self.queue.as_str().into(),
                    self.tag.as_str().into(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| self.failed("consuming", &e))?;
            self.consumer = Some(consumer);
        }
        Ok(self.consumer.as_mut().expect("started above"))
    }

    /// A delivery as the runner's message, kept until acknowledged or released.
    fn take(&mut self, delivery: Delivery) -> Message {
        let id = delivery
            .properties
            .message_id()
            .as_ref()
            .map(|id| id.as_str().to_string())
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| InvocationId::generate().to_string());
        self.unacknowledged
            .push((id.clone(), delivery.delivery_tag));
        let headers = delivery
            .properties
            .headers()
            .iter()
            .flat_map(|table| table.inner())
            .filter_map(|(name, value)| Some((name.as_str().to_string(), header_value(value)?)))
            .collect();
        Message {
            id,
            subject: delivery.routing_key.as_str().to_string(),
            content_type: content_type_of(&delivery.data),
            body: delivery.data.into(),
            headers,
        }
    }

    /// The delivery tags of `ids`, no longer unacknowledged.
    fn settle(&mut self, ids: &[String]) -> Vec<u64> {
        let (settled, kept) = std::mem::take(&mut self.unacknowledged)
            .into_iter()
            .partition(|(id, _)| ids.contains(id));
        self.unacknowledged = kept;
        settled.into_iter().map(|(_, tag)| tag).collect()
    }
}

/// A header's value as text, where it is text, a number or a flag.
fn header_value(value: &AMQPValue) -> Option<String> {
    Some(match value {
        AMQPValue::LongString(text) => String::from_utf8(text.as_bytes().to_vec()).ok()?,
        AMQPValue::ShortString(text) => text.as_str().to_string(),
        AMQPValue::Boolean(flag) => flag.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        _ => return None,
    })
}

#[async_trait::async_trait]
impl Receiver for AmqpReceiver {
    async fn receive(&mut self, max: u32) -> Result<Vec<Message>, SourceError> {
        let queue = self.queue.clone();
        let lost = |error: Option<lapin::Error>| match error {
            Some(error) => SourceError(format!("consuming queue {queue}: {error}")),
            None => SourceError(format!("the broker ended the consumer of queue {queue}")),
        };
        let consumer = self.consumer().await?;
        let mut deliveries = Vec::new();
        match tokio::time::timeout(WAIT, consumer.next()).await {
            Err(_) => return Ok(Vec::new()),
            Ok(None) => return Err(lost(None)),
            Ok(Some(delivery)) => deliveries.push(delivery.map_err(|e| lost(Some(e)))?),
        }
        // What else is there now, without waiting.
        while deliveries.len() < max as usize {
            match consumer.next().now_or_never() {
                None => break,
                Some(None) => return Err(lost(None)),
                Some(Some(delivery)) => deliveries.push(delivery.map_err(|e| lost(Some(e)))?),
            }
        }
        Ok(deliveries
            .into_iter()
            .map(|delivery| self.take(delivery))
            .collect())
    }

    async fn acknowledge(&mut self, ids: &[String]) -> Result<(), SourceError> {
        for tag in self.settle(ids) {
            self.channel
                .basic_ack(tag, BasicAckOptions::default())
                .await
                .map_err(|e| self.failed("acknowledging a message of", &e))?;
        }
        Ok(())
    }

    async fn release(&mut self, ids: &[String]) -> Result<(), SourceError> {
        let requeue = BasicNackOptions {
            multiple: false,
            requeue: true,
        };
        for tag in self.settle(ids) {
            self.channel
                .basic_nack(tag, requeue)
                .await
                .map_err(|e| self.failed("releasing a message of", &e))?;
        }
        Ok(())
    }

    async fn lag(&mut self) -> Result<Option<u64>, SourceError> {
        // The messages ready in the queue: not yet delivered to any consumer.
        let ready = declare(&self.channel, &self.queue)
            .await
            .map_err(|e| self.failed("reading the depth of", &e))?;
        Ok(Some(u64::from(ready)))
    }
}
