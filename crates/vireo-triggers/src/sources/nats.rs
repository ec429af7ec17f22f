//! NATS JetStream: one durable pull consumer per source (`vireo_<namespace>_<source>`), created
//! at the stream's end when the source is created and shared by every node, so the nodes
//! compete for the messages. Each pull asks for no more than the runner takes at once, so no
//! message waits in a client buffer while its ack-wait runs; a message is acknowledged after
//! the queue's commit, and one left unacknowledged (its node died) is redelivered by the server
//! when its ack-wait ends.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::consumer::pull::{Batch, BatchError};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::stream::ConsumerErrorKind;
use async_nats::jetstream::{self, AckKind, ErrorCode};
use async_nats::{ConnectErrorKind, connection::State};
use futures::StreamExt as _;
use vireo_core::{SecretValue, Source, SourceProbeError};

use super::{ConnectOptions, Connector, Message, Receiver, SourceError, content_type_of};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a JetStream API request (stream and consumer info) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a pull waits on the server for a first message.
const WAIT: Duration = Duration::from_secs(1);
/// A pull the server did not end by this long after it should have is taken for a lost
/// connection.
const PULL_TIMEOUT: Duration = Duration::from_secs(5);
/// The shortest ack-wait: above any commit, so a live node's messages are not redelivered.
const MIN_ACK_WAIT: Duration = Duration::from_secs(1);

pub(super) struct NatsConnector;

#[async_trait::async_trait]
impl Connector for NatsConnector {
    async fn connect(
        &self,
        source: &Source,
        password: Option<&SecretValue>,
        options: &ConnectOptions,
    ) -> Result<Box<dyn Receiver>, SourceProbeError> {
        let url = source.spec.url.as_str();
        let client = open(url, password, options).await?;
        let context = jetstream::new(client.clone());
        let stream_name = source.spec.stream.as_str();
        let stream = context
            .get_stream(stream_name)
            .await
            .map_err(|error| match error.kind() {
                GetStreamErrorKind::JetStream(cause)
                    if cause.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    SourceProbeError::StreamMissing {
                        what: "JetStream stream",
                        stream: stream_name.to_string(),
                        url: url.to_string(),
                    }
                }
                GetStreamErrorKind::InvalidStreamName | GetStreamErrorKind::EmptyName => {
                    SourceProbeError::Invalid(format!("{stream_name:?} is not a stream name"))
                }
                GetStreamErrorKind::Request => SourceProbeError::Unreachable {
                    url: url.to_string(),
                    detail: format!("JetStream does not answer (is it enabled?): {error}"),
                },
                GetStreamErrorKind::JetStream(_) => unreachable_at(url, error),
            })?;
        let durable = durable_name(source);
        let config = pull::Config {
            durable_name: Some(durable.clone()),
            description: Some(format!("Vireo event source {}", source.event_source())),
            // From the stream's end: a new source reads what is published from now on.
            deliver_policy: DeliverPolicy::New,
            ack_policy: AckPolicy::Explicit,
            ack_wait: options.claim_idle.max(MIN_ACK_WAIT),
            filter_subject: source.spec.subject.clone().unwrap_or_default(),
            ..Default::default()
        };
        let consumer =
            stream
                .create_consumer(config)
                .await
                .map_err(|error| match error.kind() {
                    ConsumerErrorKind::JetStream(cause) => SourceProbeError::Invalid(format!(
                        "creating consumer {durable} on stream {stream_name}: {cause}"
                    )),
                    _ => unreachable_at(url, error),
                })?;
        Ok(Box::new(NatsReceiver {
            client,
            consumer,
            stream: stream_name.to_string(),
            unacknowledged: HashMap::new(),
        }))
    }

    async fn remove(
        &self,
        source: &Source,
        password: Option<&SecretValue>,
        options: &ConnectOptions,
    ) -> Result<(), String> {
        let client = open(&source.spec.url, password, options)
            .await
            .map_err(|e| e.to_string())?;
        let durable = durable_name(source);
        let stream = &source.spec.stream;
        match jetstream::new(client)
            .delete_consumer_from_stream(&durable, stream)
            .await
        {
            Ok(_) => Ok(()),
            // Gone already, or with its stream.
            Err(error)
                if matches!(error.kind(), ConsumerErrorKind::JetStream(cause)
                    if [ErrorCode::CONSUMER_NOT_FOUND, ErrorCode::STREAM_NOT_FOUND]
                        .contains(&cause.error_code())) =>
            {
                Ok(())
            }
            Err(error) => Err(format!(
                "removing consumer {durable} of stream {stream}: {error}"
            )),
        }
    }
}

/// A connection to the source's server, with the password from its secret.
async fn open(
    url: &str,
    password: Option<&SecretValue>,
    options: &ConnectOptions,
) -> Result<async_nats::Client, SourceProbeError> {
    let (address, connect) = connect_options(url, password)?;
    // Used for `tls://` and for a server that asks for TLS.
    let connect = connect.tls_client_config((*options.tls.config).clone());
    connect
        .connect(address.as_str())
        .await
        .map_err(|error| match error.kind() {
            ConnectErrorKind::AuthorizationViolation | ConnectErrorKind::Authentication => {
                SourceProbeError::AuthRefused {
                    url: url.to_string(),
                    detail: error.to_string(),
                }
            }
            _ => unreachable_at(url, error),
        })
}

/// The address to dial and how: a password comes only from the secret, with the URL's user
/// (user and password), or alone as the server's token.
fn connect_options(
    url: &str,
    password: Option<&SecretValue>,
) -> Result<(String, async_nats::ConnectOptions), SourceProbeError> {
    let mut parsed =
        url::Url::parse(url).map_err(|e| SourceProbeError::Invalid(format!("url {url:?}: {e}")))?;
    let user = parsed.username().to_string();
    // The client would otherwise take the URL's user as a token of its own.
    let _ = parsed.set_username("");
    let options = match (user.is_empty(), password) {
        (false, Some(password)) => {
            async_nats::ConnectOptions::with_user_and_password(user, password.expose().to_string())
        }
        (true, Some(token)) => async_nats::ConnectOptions::with_token(token.expose().to_string()),
        (false, None) => {
            return Err(SourceProbeError::Invalid(format!(
                "url {url:?} names user {user:?}: give the password with password_secret"
            )));
        }
        (true, None) => async_nats::ConnectOptions::new(),
    };
    let options = options
        .name("vireo-source")
        .connection_timeout(CONNECT_TIMEOUT)
        .request_timeout(Some(REQUEST_TIMEOUT))
        // The runner reconnects, reporting the source failing meanwhile.
        .max_reconnects(1);
    Ok((parsed.to_string(), options))
}

fn unreachable_at(url: &str, error: impl std::fmt::Display) -> SourceProbeError {
    SourceProbeError::Unreachable {
        url: url.to_string(),
        detail: error.to_string(),
    }
}

/// The durable consumer's name: consumer names allow no dots, and namespace and source names
/// have no underscores, so this names one source only.
fn durable_name(source: &Source) -> String {
    source.consumer_group().replace('.', "_")
}

struct NatsReceiver {
    client: async_nats::Client,
    consumer: PullConsumer,
    stream: String,
    /// Received and not yet acknowledged or released, by stream sequence.
    unacknowledged: HashMap<String, jetstream::Message>,
}

impl NatsReceiver {
    fn connected(&self) -> Result<(), SourceError> {
        match self.client.connection_state() {
            State::Connected => Ok(()),
            state => Err(SourceError(format!(
                "connection to the NATS server of stream {} lost ({state})",
                self.stream
            ))),
        }
    }

    /// Drains one pull to its end (all asked for, or the server saying there are no more), so
    /// no pull is left open to deliver into a buffer nobody reads.
    async fn drain(
        &mut self,
        pull: Result<Batch, BatchError>,
    ) -> Result<Vec<Message>, SourceError> {
        let stream = self.stream.clone();
        let failed = move |error: &dyn std::fmt::Display| {
            SourceError(format!("pulling from stream {stream}: {error}"))
        };
        let mut batch = pull.map_err(|error| failed(&error))?;
        let mut messages = Vec::new();
        let deadline = tokio::time::Instant::now() + WAIT + PULL_TIMEOUT;
        loop {
            let next = tokio::time::timeout_at(deadline, batch.next())
                .await
                .map_err(|_| failed(&"the server did not answer the pull"))?;
            match next {
                None => break,
                Some(Ok(delivered)) => messages.push(self.take(delivered)?),
                Some(Err(error)) => return Err(failed(&error)),
            }
        }
        Ok(messages)
    }

    /// A delivered message as the runner's, kept until acknowledged or released.
    fn take(&mut self, delivered: jetstream::Message) -> Result<Message, SourceError> {
        let sequence = delivered
            .info()
            .map_err(|e| SourceError(format!("a message without JetStream metadata: {e}")))?
            .stream_sequence
            .to_string();
        let headers = delivered
            .headers
            .iter()
            .flat_map(|headers| headers.iter())
            .flat_map(|(name, values)| {
                values
                    .iter()
                    .map(move |value| (name.to_string(), value.as_str().to_string()))
            })
            .collect();
        let message = Message {
            id: sequence.clone(),
            subject: delivered.subject.to_string(),
            content_type: content_type_of(&delivered.payload),
            body: delivered.payload.clone(),
            headers,
        };
        self.unacknowledged.insert(sequence, delivered);
        Ok(message)
    }

    /// Answers each of `ids` with `kind`, then flushes so the answers reach the server now.
    async fn answer(&mut self, ids: &[String], kind: AckKind) -> Result<(), SourceError> {
        for id in ids {
            if let Some(message) = self.unacknowledged.remove(id) {
                message.ack_with(kind).await.map_err(|e| {
                    SourceError(format!(
                        "acknowledging message {id} of {}: {e}",
                        self.stream
                    ))
                })?;
            }
        }
        self.client
            .flush()
            .await
            .map_err(|e| SourceError(format!("sending acknowledgements for {}: {e}", self.stream)))
    }
}

#[async_trait::async_trait]
impl Receiver for NatsReceiver {
    async fn receive(&mut self, max: u32) -> Result<Vec<Message>, SourceError> {
        self.connected()?;
        let max = max as usize;
        // What is there now, up to `max`, without waiting.
        let ready = self.consumer.fetch().max_messages(max).messages().await;
        let ready = self.drain(ready).await?;
        if !ready.is_empty() {
            return Ok(ready);
        }
        // Nothing: wait a while for one, then the next receive takes what followed it.
        let first = self
            .consumer
            .batch()
            .max_messages(1)
            .expires(WAIT)
            .messages()
            .await;
        self.drain(first).await
    }

    async fn acknowledge(&mut self, ids: &[String]) -> Result<(), SourceError> {
        self.answer(ids, AckKind::Ack).await
    }

    async fn release(&mut self, ids: &[String]) -> Result<(), SourceError> {
        self.answer(ids, AckKind::Nak(None)).await
    }

    async fn lag(&mut self) -> Result<Option<u64>, SourceError> {
        self.connected()?;
        let info = self.consumer.info().await.map_err(|e| {
            SourceError(format!(
                "reading the consumer of stream {}: {e}",
                self.stream
            ))
        })?;
        Ok(Some(info.num_pending))
    }
}
