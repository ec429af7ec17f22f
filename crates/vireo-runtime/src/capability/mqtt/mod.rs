//! Outbound MQTT for functions: Spin's `fermyon:spin/mqtt@2.0.0`, publishing only. A guest
//! opens `mqtt://host[:port][?client_id=ID]` with a user name, password and keep-alive; the host
//! checks the host and port against the version's `allowed_outbound_hosts` (`mqtt://host:port`)
//! and lends a broker session from the version's pool for that destination and credentials.
//! Each pooled session gets a client id of its own (the guest's as a prefix), since a broker
//! drops the older of two sessions with one id. `publish` returns once the broker has the
//! message at the QoS asked: sent for at-most-once, acknowledged for at-least-once, completed
//! for exactly-once, within the call timeout.

mod spin;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool::managed::{Metrics, RecycleError, RecycleResult};
use rumqttc::{
    AsyncClient, ConnectReturnCode, Event, MqttOptions, Outgoing, Packet, QoS, Transport,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vireo_core::egress::Scheme;
use wasmtime::component::Linker;

use super::Package;
use super::connections::{Active, Asked, Lent, Protocol};
use crate::host::Host;

/// MQTT's port when an address names none.
const DEFAULT_PORT: u16 = 1883;
/// MQTT over TLS's port when an `mqtts://` address names none.
const DEFAULT_TLS_PORT: u16 = 8883;
/// Events a session keeps for the publish waiting on them; older ones are dropped.
const EVENTS: usize = 64;

/// Why an MQTT call failed, before it is said in the interface's error type.
#[derive(Debug)]
pub(crate) enum Failure {
    InvalidAddress,
    ConnectionFailed(String),
    Other(String),
}

/// MQTT broker sessions.
pub(crate) struct Mqtt;

/// A connection lent to the guest.
pub type Connection = Lent<Sessions>;

/// Makes broker sessions for one destination and credentials.
pub(crate) struct Sessions {
    options: MqttOptions,
    client_id: String,
}

/// One session with the broker: the client, and the events its loop has seen.
pub(crate) struct Session {
    client: AsyncClient,
    events: mpsc::Receiver<Event>,
    driver: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Protocol for Mqtt {
    const NAME: &str = "mqtt";
    const PACKAGES: &[Package] = &[Package::interfaces("fermyon:spin", "2.0", &["mqtt"])];
    type Manager = Sessions;

    fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        spin::link(linker)
    }
}

impl deadpool::managed::Manager for Sessions {
    type Type = Session;
    type Error = String;

    /// Connects and waits for the broker's acceptance, so a refused login fails `open`.
    async fn create(&self) -> Result<Session, String> {
        static SESSIONS: AtomicU64 = AtomicU64::new(0);
        let mut options = self.options.clone();
        options.set_client_id(format!(
            "{}-{}-{}",
            self.client_id,
            std::process::id(),
            SESSIONS.fetch_add(1, Ordering::Relaxed)
        ));
        let (client, mut event_loop) = AsyncClient::new(options, EVENTS);
        match event_loop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success => {
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                return Err(format!("the broker refused the connection: {:?}", ack.code));
            }
            Ok(other) => return Err(format!("the broker answered {other:?} to connect")),
            Err(error) => return Err(error.to_string()),
        }
        let (sender, events) = mpsc::channel(EVENTS);
        let driver = tokio::spawn(async move {
            // Ends when the connection does; the pool then drops the session.
            while let Ok(event) = event_loop.poll().await {
                let _ = sender.try_send(event);
            }
        });
        Ok(Session {
            client,
            events,
            driver,
        })
    }

    async fn recycle(&self, session: &mut Session, _: &Metrics) -> RecycleResult<String> {
        if session.driver.is_finished() {
            return Err(RecycleError::message("the broker closed the session"));
        }
        Ok(())
    }
}

/// Where `mqtt://host[:port][?client_id=ID]` (or `mqtts://…`, over TLS) goes.
struct Address {
    scheme: Scheme,
    host: String,
    port: u16,
    client_id: String,
}

fn parse(address: &str) -> Result<Address, Failure> {
    let uri: http::Uri = address.parse().map_err(|_| Failure::InvalidAddress)?;
    let (scheme, default_port) = match uri.scheme_str() {
        Some("mqtt") => (Scheme::Mqtt, DEFAULT_PORT),
        Some("mqtts") => (Scheme::Mqtts, DEFAULT_TLS_PORT),
        _ => return Err(Failure::InvalidAddress),
    };
    let host = uri.host().ok_or(Failure::InvalidAddress)?;
    let client_id = uri
        .query()
        .into_iter()
        .flat_map(|query| query.split('&'))
        .find_map(|pair| pair.strip_prefix("client_id="))
        .unwrap_or("vireo");
    Ok(Address {
        scheme,
        host: host.to_string(),
        port: uri.port_u16().unwrap_or(default_port),
        client_id: client_id.to_string(),
    })
}

/// The keep-alive the guest asked for, as the client takes it: zero (none) or whole seconds.
fn keep_alive(seconds: u64) -> Duration {
    Duration::from_secs(seconds.min(u64::from(u16::MAX)))
}

impl Active<Sessions> {
    /// A session with the broker at `address`, if the version may connect there.
    async fn open(
        &self,
        address: &str,
        (username, password): (&str, &str),
        keep_alive_secs: u64,
    ) -> Result<Connection, Failure> {
        let Address {
            scheme,
            host,
            port,
            client_id,
        } = parse(address)?;
        let limits = self.destinations.limits;
        // The pool key holds everything the sessions are made from.
        let key = format!("{address}\0{username}\0{password}\0{keep_alive_secs}");
        let asked = Asked {
            scheme,
            host: &host,
            port,
            address: &key,
        };
        let trust = &self.destinations.trust;
        self.lend(asked, |approved| {
            // The client connects to the approved address and would verify the certificate
            // against it: the configuration verifies it against the name the guest gave.
            let mut options = MqttOptions::new(&client_id, approved.ip().to_string(), port);
            if scheme == Scheme::Mqtts {
                let config = trust.config_for(super::server_name(&host)?)?;
                options.set_transport(Transport::tls_with_config(config.into()));
            }
            options
                .set_keep_alive(keep_alive(keep_alive_secs))
                .set_max_packet_size(limits.max_result_bytes, limits.max_result_bytes);
            if !username.is_empty() {
                options.set_credentials(username, password);
            }
            Ok(Sessions { options, client_id })
        })
        .await
        .map_err(Failure::ConnectionFailed)
    }

    /// Publishes and waits until the broker has the message at `qos`.
    async fn publish(
        &self,
        connection: &mut Connection,
        topic: String,
        payload: Vec<u8>,
        qos: QoS,
    ) -> Result<(), Failure> {
        let limits = &self.destinations.limits;
        connection.sent(payload.len());
        let publishing = async |session: &mut Session| {
            // Events from before this publish say nothing about it.
            while session.events.try_recv().is_ok() {}
            session
                .client
                .publish(topic, qos, false, payload)
                .await
                .map_err(|e| Failure::Other(e.to_string()))?;
            while let Some(event) = session.events.recv().await {
                let done = matches!(
                    (qos, &event),
                    (QoS::AtMostOnce, Event::Outgoing(Outgoing::Publish(_)))
                        | (QoS::AtLeastOnce, Event::Incoming(Packet::PubAck(_)))
                        | (QoS::ExactlyOnce, Event::Incoming(Packet::PubComp(_)))
                );
                if done {
                    return Ok(());
                }
            }
            Err(Failure::ConnectionFailed(
                "the broker closed the connection".into(),
            ))
        };
        // A session whose publish failed is in an unknown state: it is not lent again.
        let failed = |result: &Result<(), Failure>, _: &Session| result.is_err();
        match connection.call(limits, publishing, failed, |_| {}).await {
            Ok(result) => result,
            Err(cut) => Err(Failure::Other(cut.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_scheme_host_port_and_client_id() {
        let address = parse("mqtt://127.0.0.1:1884?client_id=sensor").unwrap();
        assert_eq!(
            (
                address.host.as_str(),
                address.port,
                address.client_id.as_str()
            ),
            ("127.0.0.1", 1884, "sensor")
        );
        let address = parse("mqtt://broker.example.com").unwrap();
        assert_eq!((address.port, address.client_id.as_str()), (1883, "vireo"));
        let tls = parse("mqtts://broker.example.com").unwrap();
        assert_eq!((tls.scheme, tls.port), (Scheme::Mqtts, 8883));
        assert!(matches!(
            parse("not an address"),
            Err(Failure::InvalidAddress)
        ));
        assert!(matches!(parse("http://h"), Err(Failure::InvalidAddress)));
    }

    #[test]
    fn keep_alives_are_whole_seconds() {
        assert_eq!(keep_alive(0), Duration::ZERO);
        assert_eq!(keep_alive(30), Duration::from_secs(30));
        assert_eq!(keep_alive(u64::MAX), Duration::from_secs(65535));
    }
}
