//! MQTT: the source's topic filter is subscribed to at QoS 1 (or 0, when the source asks for best
//! effort) as a shared subscription
//! (`$share/vireo.<namespace>.<source>/<filter>`), each node with a persistent session of its
//! own (clean session off) and manual acknowledgements: a message is acknowledged (`PUBACK`)
//! only after the queue's commit, in the order it arrived, and one never acknowledged is sent
//! again by the broker when the session resumes. The broker hands each message to one of the
//! group's sessions, so the nodes of a cluster share the messages.
//!
//! A session belongs to the node's slot, not to the node (node ids change at every start):
//! client id `vireo.<namespace>.<source>` for slot 0 (the name a single node has always
//! used) and `vireo.<namespace>.<source>.<slot>` for the others. A node started in place of a
//! dead one takes its slot and so resumes its session and what it left unacknowledged. A
//! session whose slot no live node holds (the cluster shrank) keeps what the broker queued for
//! it until a node takes that slot again.
//!
//! MQTT gives a message no identity that outlives its delivery (packet ids are reused as soon
//! as a message is acknowledged), so each arrival gets a fresh id: delivery is at least once,
//! and a message that was stored but not yet acknowledged when Vireo died or the connection
//! broke is stored twice.

use std::collections::VecDeque;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Packet,
    Publish, QoS, StateError, SubscribeReasonCode, TlsConfiguration, Transport, mqttbytes,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use vireo_core::{InvocationId, SecretValue, Source, SourceProbeError};

use super::{
    ConnectOptions, Connector, MAX_MESSAGE_BYTES, Message, Receiver, SourceError, content_type_of,
};

/// How long connecting and subscribing may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a receive waits for a first message.
const WAIT: Duration = Duration::from_secs(1);
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// Largest packet taken: the payload, its topic (at most 64 KiB) and the packet's header.
/// rumqttc refuses a larger one from its header, before reading it (its default is 10 KiB).
const MAX_PACKET: usize = MAX_MESSAGE_BYTES + 64 * 1024 + 16;
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
        // The check subscribes to the plain filter with a throwaway session: joining the group
        // would take messages from it, and a clean session drops what it took unacknowledged.
        let (client_id, slot, filter) = match options.probe {
            true => (
                format!("{}.probe", source.consumer_group()),
                None,
                source.spec.stream.clone(),
            ),
            false => {
                let slot = node_slot(options).await?;
                (session_id(source, slot), Some(slot), shared_filter(source))
            }
        };
        let mqtt = mqtt_options(url, password, client_id, options.probe, options)?;
        let (client, mut events) = AsyncClient::new(mqtt, REQUESTS);
        let topic = source.spec.stream.clone();
        let qos = match source.spec.qos {
            Some(0) => QoS::AtMostOnce,
            _ => QoS::AtLeastOnce,
        };
        let subscribing = subscribe(&client, &mut events, &filter, qos);
        let early = tokio::time::timeout(CONNECT_TIMEOUT, subscribing)
            .await
            .map_err(|_| SourceProbeError::Unreachable {
                url: url.to_string(),
                detail: format!("no answer within {CONNECT_TIMEOUT:?}"),
            })?
            .map_err(|failure| failure.at(url))?;
        if slot == Some(0) {
            // Slot 0's session may carry the plain subscription of a Vireo from before shared
            // subscriptions, which would deliver every message a second time.
            client.unsubscribe(topic.as_str()).await.map_err(|e| {
                SourceProbeError::Unreachable {
                    url: url.to_string(),
                    detail: e.to_string(),
                }
            })?;
        }
        let (handover, arrivals) = mpsc::channel(HANDOVER);
        let connection = tokio::spawn(drive(events, handover));
        Ok(Box::new(MqttReceiver {
            client,
            topic,
            arrivals,
            connection,
            slot: slot.map(|slot| (slot, options.slot.clone())),
            unacknowledged: VecDeque::new(),
            // A resumed session's unacknowledged messages come before the subscription's
            // answer: handed over first.
            held: early.into_iter().map(Arrival::new).collect(),
        }))
    }

    async fn remove(
        &self,
        source: &Source,
        password: Option<&SecretValue>,
        options: &ConnectOptions,
    ) -> Result<(), String> {
        // Connecting with the session's client id and a clean session discards the session:
        // this node's; each node removes its own.
        let Some(slot) = *options.slot.borrow() else {
            return Err("this node has no slot, so no session of its own to remove".to_string());
        };
        let url = source.spec.url.as_str();
        let mqtt = mqtt_options(url, password, session_id(source, slot), true, options)
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

/// This node's slot, waiting a little for a node that has only just started to get one.
async fn node_slot(options: &ConnectOptions) -> Result<u32, SourceProbeError> {
    let mut slot = options.slot.clone();
    match tokio::time::timeout(CONNECT_TIMEOUT, slot.wait_for(Option::is_some)).await {
        Ok(Ok(held)) => Ok(held.expect("waited for a slot")),
        _ => Err(SourceProbeError::Invalid(
            "this node has no slot yet: its heartbeat has not reached the store".to_string(),
        )),
    }
}

/// The client id of the session of `slot`.
fn session_id(source: &Source, slot: u32) -> String {
    match slot {
        0 => source.consumer_group(),
        slot => format!("{}.{slot}", source.consumer_group()),
    }
}

/// The source's filter as a subscription shared by its sessions, one group per source.
fn shared_filter(source: &Source) -> String {
    format!("$share/{}/{}", source.consumer_group(), source.spec.stream)
}

/// How to connect to the source's broker as `client_id`: over TLS for `mqtts://`, verified
/// against the URL's host.
fn mqtt_options(
    url: &str,
    password: Option<&SecretValue>,
    client_id: String,
    clean_session: bool,
    options: &ConnectOptions,
) -> Result<MqttOptions, SourceProbeError> {
    let parsed =
        url::Url::parse(url).map_err(|e| SourceProbeError::Invalid(format!("url {url:?}: {e}")))?;
    let host = parsed.host_str().unwrap_or_default().to_string();
    let tls = parsed.scheme() == "mqtts";
    let port = parsed.port().unwrap_or(if tls { 8883 } else { 1883 });
    let mut mqtt = MqttOptions::new(client_id, host, port);
    if tls {
        mqtt.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            options.tls.config.clone(),
        )));
    }
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

/// Connects and subscribes at `qos`; returns what a resumed session delivered meanwhile.
async fn subscribe(
    client: &AsyncClient,
    events: &mut EventLoop,
    topic: &str,
    qos: QoS,
) -> Result<Vec<Publish>, Failure> {
    let refused = |error: ConnectionError| match error {
        ConnectionError::ConnectionRefused(code) => Failure::Refused(code),
        other => Failure::Connection(other.to_string()),
    };
    client
        .subscribe(topic, qos)
        .await
        .map_err(|e| Failure::Connection(e.to_string()))?;
    let mut early = Vec::new();
    loop {
        match events.poll().await.map_err(refused)? {
            Event::Incoming(Packet::Publish(publish)) => {
                early.push(taken(publish).map_err(Failure::Connection)?);
            }
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
            Ok(Event::Incoming(Packet::Publish(publish))) => taken(publish),
            Ok(_) => continue,
            Err(ConnectionError::MqttState(StateError::Deserialization(
                mqttbytes::Error::PayloadSizeLimitExceeded(size),
            ))) => Err(too_large(size)),
            Err(error) => Err(error.to_string()),
        };
        let failed = arrived.is_err();
        if handover.send(arrived).await.is_err() || failed {
            return;
        }
    }
}

/// `publish`, unless its payload is over the limit (its topic took some of the packet's).
fn taken(publish: Publish) -> Result<Publish, String> {
    match publish.payload.len() {
        size if size > MAX_MESSAGE_BYTES => Err(too_large(size)),
        _ => Ok(publish),
    }
}

/// Why the connection ends at a message of `size` bytes: it is never acknowledged, so it is not
/// lost, but the session offers it first again at every reconnect.
fn too_large(size: usize) -> String {
    format!(
        "the broker sent a message of {size} bytes, over the {MAX_MESSAGE_BYTES} bytes of payload an \
         MQTT source takes; it stays unacknowledged in the session and is offered again at each \
         reconnect"
    )
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
    /// The slot whose session this is, and the node's slot as it changes: a node that lost
    /// its slot (it was silent too long) must leave that session to the node that took it.
    slot: Option<(u32, watch::Receiver<Option<u32>>)>,
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

    /// An error once this node's slot is no longer the session's.
    fn check_slot(&self) -> Result<(), SourceError> {
        match &self.slot {
            Some((connected, now)) if *now.borrow() != Some(*connected) => {
                Err(SourceError(format!(
                    "this node's slot changed from {connected} to {}; reconnecting with that slot's session",
                    now.borrow()
                        .map_or("none".to_string(), |slot| slot.to_string())
                )))
            }
            _ => Ok(()),
        }
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
        self.check_slot()?;
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
