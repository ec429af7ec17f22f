//! MQTT: the source's topic filter is subscribed to at QoS 1 with a persistent session (client
//! id `vireo.<namespace>.<source>`, clean session off) and manual acknowledgements: a message
//! is acknowledged (`PUBACK`) only after the queue's commit, in the order it arrived, and one
//! never acknowledged is sent again by the broker when the session resumes. Node ids change at
//! every start, so the session is the source's rather than a node's: a restarted Vireo resumes
//! it. The nodes of a cluster therefore contend for that one session (a broker hands it to the
//! newest connection); sharing one source's messages between nodes is not built for MQTT.
//!
//! MQTT gives a message no identity that outlives its delivery (packet ids are reused as soon
//! as a message is acknowledged), so each arrival gets a fresh id: delivery is at least once,
//! and a message that was stored but not yet acknowledged when Vireo died or the connection
//! broke is stored twice.

use std::collections::VecDeque;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet,
    Publish, QoS, SubscribeReasonCode,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vireo_core::{InvocationId, SecretValue, Source, SourceProbeError};

use super::{ConnectOptions, Connector, Message, Receiver, SourceError, content_type_of};

/// How long connecting and subscribing may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a receive waits for a first message.
const WAIT: Duration = Duration::from_secs(1);
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// Largest message taken (rumqttc's default is 10 KiB).
const MAX_PACKET: usize = 1024 * 1024;
/// Requests (acks) queued towards the connection.
const REQUESTS: usize = 1024;
/// Messages the connection task hands over before it waits for the runner; the broker's
/// in-flight window bounds what is unacknowledged anyway.
const HANDOVER: usize = 1024;

pub(super) struct MqttConnector;

#[async_trait::async_trait]
impl Connector for MqttConnector {
    async fn connect(
        &self,
        source: &Source,
        password: Option<&SecretValue>,
        options: &ConnectOptions,
    ) -> Result<Box<dyn Receiver>, SourceProbeError> {
        let url = source.spec.url.as_str();
        // One session per source, the same after a restart, so what a killed Vireo left
        // unacknowledged is sent again; the check uses a throwaway one beside it, and leaves
        // no session behind to hoard messages.
        let client_id = match options.probe {
            true => format!("{}.probe", source.consumer_group()),
            false => source.consumer_group(),
        };
        let mqtt = mqtt_options(url, password, client_id, options.probe)?;
        let (client, mut events) = AsyncClient::new(mqtt, REQUESTS);
        let topic = source.spec.stream.clone();
        let early = tokio::time::timeout(CONNECT_TIMEOUT, subscribe(&client, &mut events, &topic))
            .await
            .map_err(|_| SourceProbeError::Unreachable {
                url: url.to_string(),
                detail: format!("no answer within {CONNECT_TIMEOUT:?}"),
            })?
            .map_err(|failure| failure.at(url))?;
        let (handover, arrivals) = mpsc::channel(HANDOVER);
        let connection = tokio::spawn(drive(events, handover));
        Ok(Box::new(MqttReceiver {
            client,
            topic,
            arrivals,
            connection,
            unacknowledged: VecDeque::new(),
            // A resumed session's unacknowledged messages come before the subscription's
            // answer: handed over first.
            held: early.into_iter().map(Arrival::new).collect(),
        }))
    }

    async fn remove(&self, source: &Source, password: Option<&SecretValue>) -> Result<(), String> {
        // Connecting with the session's client id and a clean session discards the session.
        let url = source.spec.url.as_str();
        let mqtt = mqtt_options(url, password, source.consumer_group(), true)
            .map_err(|e| e.to_string())?;
        let (client, mut events) = AsyncClient::new(mqtt, REQUESTS);
        let connected = async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(error) => return Err(error.to_string()),
                }
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connected)
            .await
            .map_err(|_| format!("{url} did not answer within {CONNECT_TIMEOUT:?}"))?
            .map_err(|error| format!("removing the session at {url}: {error}"))?;
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(CONNECT_TIMEOUT, events.poll()).await;
        Ok(())
    }
}

/// How to connect to the source's broker as `client_id`.
fn mqtt_options(
    url: &str,
    password: Option<&SecretValue>,
    client_id: String,
    clean_session: bool,
) -> Result<MqttOptions, SourceProbeError> {
    let parsed =
        url::Url::parse(url).map_err(|e| SourceProbeError::Invalid(format!("url {url:?}: {e}")))?;
    let host = parsed.host_str().unwrap_or_default().to_string();
    let port = parsed.port().unwrap_or(1883);
    let mut mqtt = MqttOptions::new(client_id, host, port);
    mqtt.set_keep_alive(KEEP_ALIVE)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_manual_acks(true)
        .set_clean_session(clean_session);
    match (parsed.username(), password) {
        ("", None) => {}
        (user, Some(password)) => {
            mqtt.set_credentials(user, password.expose());
        }
        (user, None) => {
            return Err(SourceProbeError::Invalid(format!(
                "url {url:?} names user {user:?}: give the password with password_secret"
            )));
        }
    }
    Ok(mqtt)
}

/// Why connecting or subscribing failed.
enum Failure {
    Refused(ConnectReturnCode),
    Connection(String),
    Subscription(String),
}

impl Failure {
    fn at(self, url: &str) -> SourceProbeError {
        match self {
            Failure::Refused(
                code @ (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized),
            ) => SourceProbeError::AuthRefused {
                url: url.to_string(),
                detail: format!("{code:?}"),
            },
            Failure::Refused(code) => SourceProbeError::Unreachable {
                url: url.to_string(),
                detail: format!("connection refused: {code:?}"),
            },
            Failure::Connection(detail) => SourceProbeError::Unreachable {
                url: url.to_string(),
                detail,
            },
            Failure::Subscription(detail) => SourceProbeError::Invalid(detail),
        }
    }
}

/// Connects and subscribes at QoS 1; returns what a resumed session delivered meanwhile.
async fn subscribe(
    client: &AsyncClient,
    events: &mut EventLoop,
    topic: &str,
) -> Result<Vec<Publish>, Failure> {
    let refused = |error: ConnectionError| match error {
        ConnectionError::ConnectionRefused(code) => Failure::Refused(code),
        other => Failure::Connection(other.to_string()),
    };
    client
        .subscribe(topic, QoS::AtLeastOnce)
        .await
        .map_err(|e| Failure::Connection(e.to_string()))?;
    let mut early = Vec::new();
    loop {
        match events.poll().await.map_err(refused)? {
            Event::Incoming(Packet::Publish(publish)) => early.push(publish),
            Event::Incoming(Packet::SubAck(ack)) => {
                return match ack.return_codes.first() {
                    Some(SubscribeReasonCode::Success(_)) => Ok(early),
                    _ => Err(Failure::Subscription(format!(
                        "the broker refused the subscription to {topic:?}"
                    ))),
                };
            }
            _ => {}
        }
    }
}

/// Runs the connection, handing each message over, until it fails or the receiver is gone.
async fn drive(mut events: EventLoop, handover: mpsc::Sender<Result<Publish, String>>) {
    loop {
        let arrived = match events.poll().await {
            Ok(Event::Incoming(Packet::Publish(publish))) => Ok(publish),
            Ok(_) => continue,
            Err(error) => Err(error.to_string()),
        };
        let failed = arrived.is_err();
        if handover.send(arrived).await.is_err() || failed {
            return;
        }
    }
}

/// A message as it arrived, with the id the runner knows it by.
struct Arrival {
    id: String,
    publish: Publish,
}

impl Arrival {
    fn new(publish: Publish) -> Self {
        Self {
            id: InvocationId::generate().to_string(),
            publish,
        }
    }

    fn message(&self) -> Message {
        Message {
            id: self.id.clone(),
            subject: self.publish.topic.clone(),
            content_type: content_type_of(&self.publish.payload),
            body: self.publish.payload.clone(),
            headers: Vec::new(),
        }
    }
}

struct MqttReceiver {
    client: AsyncClient,
    topic: String,
    arrivals: mpsc::Receiver<Result<Publish, String>>,
    connection: JoinHandle<()>,
    /// Handed to the runner and not yet acknowledged, in arrival order.
    unacknowledged: VecDeque<Arrival>,
    /// Arrived while subscribing, or released by the runner (the queue was full): handed over
    /// first. The broker still counts them unacknowledged, so they are not lost if this node
    /// dies.
    held: VecDeque<Arrival>,
}

impl MqttReceiver {
    fn lost(&self, error: &str) -> SourceError {
        SourceError(format!(
            "connection to the MQTT broker for {} lost: {error}",
            self.topic
        ))
    }

    fn hand_over(&mut self, arrival: Arrival) -> Message {
        let message = arrival.message();
        self.unacknowledged.push_back(arrival);
        message
    }
}

impl Drop for MqttReceiver {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

#[async_trait::async_trait]
impl Receiver for MqttReceiver {
    async fn receive(&mut self, max: u32) -> Result<Vec<Message>, SourceError> {
        let max = max as usize;
        let mut messages = Vec::new();
        while messages.len() < max
            && let Some(arrival) = self.held.pop_front()
        {
            messages.push(self.hand_over(arrival));
        }
        if messages.is_empty() {
            match tokio::time::timeout(WAIT, self.arrivals.recv()).await {
                Err(_) => return Ok(messages),
                Ok(None) => return Err(self.lost("closed")),
                Ok(Some(Err(error))) => return Err(self.lost(&error)),
                Ok(Some(Ok(publish))) => messages.push(self.hand_over(Arrival::new(publish))),
            }
        }
        while messages.len() < max {
            match self.arrivals.try_recv() {
                Ok(Ok(publish)) => messages.push(self.hand_over(Arrival::new(publish))),
                Ok(Err(error)) => return Err(self.lost(&error)),
                Err(_) => break,
            }
        }
        Ok(messages)
    }

    async fn acknowledge(&mut self, ids: &[String]) -> Result<(), SourceError> {
        // In the order they arrived, as MQTT wants its acknowledgements.
        let (acknowledged, kept): (VecDeque<Arrival>, VecDeque<Arrival>) = self
            .unacknowledged
            .drain(..)
            .partition(|arrival| ids.contains(&arrival.id));
        self.unacknowledged = kept;
        for arrival in acknowledged {
            self.client
                .ack(&arrival.publish)
                .await
                .map_err(|e| self.lost(&e.to_string()))?;
        }
        Ok(())
    }

    async fn release(&mut self, ids: &[String]) -> Result<(), SourceError> {
        let (released, kept): (VecDeque<Arrival>, VecDeque<Arrival>) = self
            .unacknowledged
            .drain(..)
            .partition(|arrival| ids.contains(&arrival.id));
        self.unacknowledged = kept;
        self.held.extend(released);
        Ok(())
    }

    async fn lag(&mut self) -> Result<Option<u64>, SourceError> {
        // MQTT brokers do not say how many messages wait for a session.
        Ok(None)
    }
}
