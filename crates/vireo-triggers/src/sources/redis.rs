//! Redis Streams: one consumer group per source (`vireo.<namespace>.<source>`), created at the
//! stream's end when the source is created, and one consumer per node in it, so the nodes share
//! the entries. An entry stays in its consumer's pending list until `XACK`, which comes after
//! the queue's commit; entries idle too long at a consumer that went away (a node killed) are
//! taken over with `XAUTOCLAIM`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use redis::aio::MultiplexedConnection;
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamInfoGroupsReply,
    StreamReadOptions, StreamReadReply,
};
use redis::{
    AsyncCommands as _, AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ErrorKind,
    IntoConnectionInfo, RedisError,
};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use vireo_core::{SecretValue, Source, SourceProbeError};

use super::{ConnectOptions, Connector, Message, Receiver, SourceError, content_type_of};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Above the blocking read's wait, so a blocked read is not taken for a dead server.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a read waits for new entries.
const BLOCK: Duration = Duration::from_secs(1);
/// The entry field that is the payload; the others become headers.
const PAYLOAD_FIELD: &str = "payload";

pub(super) struct RedisConnector;

#[async_trait::async_trait]
impl Connector for RedisConnector {
    async fn connect(
        &self,
        source: &Source,
        password: Option<&SecretValue>,
        options: &ConnectOptions,
    ) -> Result<Box<dyn super::Receiver>, SourceProbeError> {
        let url = source.spec.url.as_str();
        let stream = source.spec.stream.clone();
        let mut connection = open(url, password, options).await?;
        let key_type: String = redis::cmd("TYPE")
            .arg(&stream)
            .query_async(&mut connection)
            .await
            .map_err(|e| classify(url, e))?;
        match key_type.as_str() {
            "stream" => {}
            "none" => {
                return Err(SourceProbeError::StreamMissing {
                    what: "stream",
                    stream,
                    url: url.to_string(),
                });
            }
            other => {
                return Err(SourceProbeError::Invalid(format!(
                    "key {stream:?} at {url} is a {other}, not a stream"
                )));
            }
        }
        let group = source.consumer_group();
        // From the stream's end: a new source reads what is added from now on.
        let created: Result<(), RedisError> = connection.xgroup_create(&stream, &group, "$").await;
        match created {
            Ok(()) => {}
            Err(error) if error.code() == Some("BUSYGROUP") => {}
            Err(error) => return Err(classify(url, error)),
        }
        Ok(Box::new(RedisReceiver {
            connection,
            stream,
            group,
            consumer: options.consumer.clone(),
            claim_idle: options.claim_idle,
            replay_own: true,
            claim_from: START.to_string(),
            last_claim: None,
        }))
    }

    async fn remove(
        &self,
        source: &Source,
        password: Option<&SecretValue>,
        options: &ConnectOptions,
    ) -> Result<(), String> {
        let mut connection = open(&source.spec.url, password, options)
            .await
            .map_err(|e| e.to_string())?;
        let destroyed: Result<bool, RedisError> = connection
            .xgroup_destroy(&source.spec.stream, source.consumer_group())
            .await;
        match destroyed {
            Ok(_) => Ok(()),
            // The stream itself is gone, and the group with it.
            Err(error) if error.to_string().contains("requires the key to exist") => Ok(()),
            Err(error) => Err(format!(
                "removing consumer group {} of stream {}: {error}",
                source.consumer_group(),
                source.spec.stream
            )),
        }
    }
}

/// A connection to the source's server, with the password from its secret; over TLS for
/// `rediss://`, verified against the URL's host.
async fn open(
    url: &str,
    password: Option<&SecretValue>,
    options: &ConnectOptions,
) -> Result<MultiplexedConnection, SourceProbeError> {
    // The client's own TLS is not built in: `rediss://` is read as `redis://` and the stream
    // wrapped here.
    let (tls, plain) = match url.split_once("://") {
        Some(("rediss", rest)) => (true, format!("redis://{rest}")),
        _ => (false, url.to_string()),
    };
    let mut info = plain
        .as_str()
        .into_connection_info()
        .map_err(|e| SourceProbeError::Invalid(format!("url {url:?}: {e}")))?;
    if let Some(password) = password {
        let settings = info
            .redis_settings()
            .clone()
            .set_password(password.expose());
        info = info.set_redis_settings(settings);
    }
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    if tls {
        return tokio::time::timeout(CONNECT_TIMEOUT, open_tls(url, &info, config, options))
            .await
            .map_err(|_| unreachable(url, format!("no answer within {CONNECT_TIMEOUT:?}")))?;
    }
    let client = redis::Client::open(info)
        .map_err(|e| SourceProbeError::Invalid(format!("url {url:?}: {e}")))?;
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| classify(url, e))
}

/// A connection over TLS to the host and port of `info`.
async fn open_tls(
    url: &str,
    info: &ConnectionInfo,
    config: AsyncConnectionConfig,
    options: &ConnectOptions,
) -> Result<MultiplexedConnection, SourceProbeError> {
    let ConnectionAddr::Tcp(host, port) = info.addr() else {
        return Err(SourceProbeError::Invalid(format!(
            "url {url:?}: rediss:// names a TCP host"
        )));
    };
    let name = ServerName::try_from(host.clone())
        .map_err(|e| SourceProbeError::Invalid(format!("url {url:?}: {e}")))?;
    let tcp = TcpStream::connect((host.as_str(), *port))
        .await
        .map_err(|e| unreachable(url, e.to_string()))?;
    let stream = TlsConnector::from(options.tls.config.clone())
        .connect(name, tcp)
        .await
        .map_err(|e| unreachable(url, format!("TLS: {e}")))?;
    let (connection, driver) =
        MultiplexedConnection::new_with_config(info.redis_settings(), stream, config)
            .await
            .map_err(|e| classify(url, e))?;
    // Ends when the last handle on the connection is dropped.
    tokio::spawn(driver);
    Ok(connection)
}

fn unreachable(url: &str, detail: String) -> SourceProbeError {
    SourceProbeError::Unreachable {
        url: url.to_string(),
        detail,
    }
}

/// The first entry id of a stream, where reading one's own pending entries and claiming start.
const START: &str = "0-0";

/// What a failed connection attempt means for the user.
fn classify(url: &str, error: RedisError) -> SourceProbeError {
    let detail = error.to_string();
    let auth = matches!(error.kind(), ErrorKind::AuthenticationFailed)
        || matches!(error.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"));
    if auth {
        SourceProbeError::AuthRefused {
            url: url.to_string(),
            detail,
        }
    } else {
        SourceProbeError::Unreachable {
            url: url.to_string(),
            detail,
        }
    }
}

struct RedisReceiver {
    connection: MultiplexedConnection,
    stream: String,
    group: String,
    consumer: String,
    claim_idle: Duration,
    /// Read this consumer's own pending entries before new ones: at start, and after entries
    /// were released (the queue refused them).
    replay_own: bool,
    /// Where the next `XAUTOCLAIM` scan continues.
    claim_from: String,
    last_claim: Option<Instant>,
}

/// A failed command as the error the runner reports.
fn failed(doing: &'static str, stream: &str) -> impl FnOnce(RedisError) -> SourceError {
    let stream = stream.to_string();
    move |error| SourceError(format!("{doing} stream {stream}: {error}"))
}

impl RedisReceiver {
    async fn read(
        &mut self,
        from: &str,
        max: u32,
        block: bool,
    ) -> Result<Vec<Message>, SourceError> {
        let mut options = StreamReadOptions::default()
            .group(&self.group, &self.consumer)
            .count(max as usize);
        if block {
            options = options.block(BLOCK.as_millis() as usize);
        }
        let reply: Option<StreamReadReply> = self
            .connection
            .xread_options(&[&self.stream], &[from], &options)
            .await
            .map_err(failed("reading", &self.stream))?;
        Ok(reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|key| key.ids)
            .map(|entry| message(&self.stream, entry))
            .collect())
    }

    /// Entries idle at other consumers for longer than `claim_idle`, checked at most every
    /// half of it.
    async fn claim(&mut self, max: u32) -> Result<Vec<Message>, SourceError> {
        let interval = (self.claim_idle / 2).max(Duration::from_millis(500));
        if self.last_claim.is_some_and(|at| at.elapsed() < interval) {
            return Ok(Vec::new());
        }
        let idle_ms = u64::try_from(self.claim_idle.as_millis()).unwrap_or(u64::MAX);
        let reply: StreamAutoClaimReply = self
            .connection
            .xautoclaim_options(
                &self.stream,
                &self.group,
                &self.consumer,
                idle_ms,
                &self.claim_from,
                StreamAutoClaimOptions::default().count(max as usize),
            )
            .await
            .map_err(failed("claiming idle entries of", &self.stream))?;
        // A scan that reached the end starts over later.
        if reply.next_stream_id == START {
            self.last_claim = Some(Instant::now());
        }
        self.claim_from = reply.next_stream_id;
        Ok(reply
            .claimed
            .into_iter()
            .map(|entry| message(&self.stream, entry))
            .collect())
    }
}

#[async_trait::async_trait]
impl Receiver for RedisReceiver {
    async fn receive(&mut self, max: u32) -> Result<Vec<Message>, SourceError> {
        if self.replay_own {
            let own = self.read(START, max, false).await?;
            if !own.is_empty() {
                return Ok(own);
            }
            self.replay_own = false;
        }
        let claimed = self.claim(max).await?;
        if !claimed.is_empty() {
            return Ok(claimed);
        }
        self.read(">", max, true).await
    }

    async fn acknowledge(&mut self, ids: &[String]) -> Result<(), SourceError> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: u64 = self
            .connection
            .xack(&self.stream, &self.group, ids)
            .await
            .map_err(failed("acknowledging entries of", &self.stream))?;
        Ok(())
    }

    async fn release(&mut self, _ids: &[String]) -> Result<(), SourceError> {
        // They stay in this consumer's pending list; the next receive reads them again.
        self.replay_own = true;
        Ok(())
    }

    async fn lag(&mut self) -> Result<Option<u64>, SourceError> {
        let groups: StreamInfoGroupsReply = self
            .connection
            .xinfo_groups(&self.stream)
            .await
            .map_err(failed("reading the groups of", &self.stream))?;
        Ok(groups
            .groups
            .into_iter()
            .find(|group| group.name == self.group)
            .and_then(|group| group.lag)
            .map(|lag| lag as u64))
    }
}

/// An entry as a message: its `payload` field is the body and the other fields are headers;
/// an entry without one is sent whole, as a JSON object of its fields.
fn message(stream: &str, entry: StreamId) -> Message {
    let mut fields: HashMap<String, Bytes> = entry
        .map
        .into_iter()
        .filter_map(|(field, value)| match value {
            redis::Value::BulkString(bytes) => Some((field, Bytes::from(bytes))),
            redis::Value::SimpleString(text) => Some((field, Bytes::from(text))),
            _ => None,
        })
        .collect();
    let (body, content_type) = match fields.remove(PAYLOAD_FIELD) {
        Some(payload) => {
            let content_type = content_type_of(&payload);
            (payload, content_type)
        }
        None => {
            let object: serde_json::Map<String, serde_json::Value> = fields
                .drain()
                .map(|(field, value)| {
                    let text = String::from_utf8_lossy(&value).into_owned();
                    (field, serde_json::Value::String(text))
                })
                .collect();
            let body = serde_json::to_vec(&object).unwrap_or_default();
            (Bytes::from(body), "application/json")
        }
    };
    let mut headers: Vec<(String, String)> = fields
        .into_iter()
        .filter_map(|(field, value)| Some((field, String::from_utf8(value.to_vec()).ok()?)))
        .collect();
    headers.sort();
    Message {
        id: entry.id,
        subject: stream.to_string(),
        body,
        content_type,
        headers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: &[(&str, &str)]) -> StreamId {
        StreamId {
            id: "5-1".to_string(),
            map: fields
                .iter()
                .map(|(field, value)| {
                    (
                        field.to_string(),
                        redis::Value::BulkString(value.as_bytes().to_vec()),
                    )
                })
                .collect(),
            milliseconds_elapsed_from_delivery: None,
            delivered_count: None,
        }
    }

    #[test]
    fn the_payload_field_is_the_body_and_the_rest_are_headers() {
        let message = message(
            "orders",
            entry(&[("payload", "{\"n\":1}"), ("region", "eu")]),
        );
        assert_eq!(message.id, "5-1");
        assert_eq!(message.body, Bytes::from_static(b"{\"n\":1}"));
        assert_eq!(message.content_type, "application/json");
        assert_eq!(message.headers, [("region".to_string(), "eu".to_string())]);
    }

    #[test]
    fn an_entry_without_payload_is_sent_whole_as_json() {
        let message = message("orders", entry(&[("a", "1"), ("b", "x")]));
        let body: serde_json::Value = serde_json::from_slice(&message.body).unwrap();
        assert_eq!(body, serde_json::json!({"a": "1", "b": "x"}));
        assert!(message.headers.is_empty());
        let text = super::message("s", entry(&[("payload", "hello")]));
        assert_eq!(text.content_type, "text/plain; charset=utf-8");
    }
}
