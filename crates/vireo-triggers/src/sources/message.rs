//! A broker message as the async invocation it becomes: `POST /` with the payload as body,
//! CloudEvents binary-mode attributes naming the source, and the broker's headers as
//! `x-vireo-msg-*`.

use base64::Engine as _;
use base64::prelude::BASE64_STANDARD;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use sha2::{Digest as _, Sha256};
use vireo_core::{InvocationId, NewAsyncInvocation, Source, StoredRequest, Trigger};

use super::Message;

/// Prefix of the broker's headers on a delivery.
pub const MESSAGE_HEADER_PREFIX: &str = "x-vireo-msg-";
/// Most broker headers carried; the rest are dropped (they stay in the broker's copy).
const MAX_MESSAGE_HEADERS: usize = 32;
/// How many messages a batch delivery holds.
pub const BATCH_SIZE_HEADER: HeaderName = HeaderName::from_static("x-vireo-batch-size");

/// The idempotency key of a message: the source, the stream and the broker's identity, so a
/// redelivered message is stored once. Bounded by the queue's key length through the
/// validated lengths of its parts (names ≤ 63, stream ≤ 128, ids are short).
pub fn idempotency_key(source: &Source, message: &Message) -> String {
    format!(
        "source:{}:{}:{}:{}",
        source.name, source.spec.kind, source.spec.stream, message.id
    )
}

pub fn invocation(source: &Source, message: Message, now_us: i64) -> NewAsyncInvocation {
    let mut headers = cloud_event(
        message.content_type,
        [
            ("ce-id", message.id.clone()),
            ("ce-type", format!("dev.vireo.{}.message", source.spec.kind)),
            ("ce-subject", message.subject.clone()),
        ],
    );
    let broker_headers = message.headers.iter().filter_map(|(name, value)| {
        let name = HeaderName::try_from(format!(
            "{MESSAGE_HEADER_PREFIX}{}",
            name.to_ascii_lowercase()
        ))
        .ok()?;
        Some((name, HeaderValue::from_str(value).ok()?))
    });
    for (name, value) in broker_headers.take(MAX_MESSAGE_HEADERS) {
        headers.append(name, value);
    }
    let key = idempotency_key(source, &message);
    delivery(source, key, headers, message.body, now_us)
}

/// Several messages in one invocation, Lambda-style: `POST /` with a JSON array, each element
/// `{"id", "subject", "headers", "body"}` (`body` as text, or `body_base64` when the payload is
/// not UTF-8). `ce-id` and the idempotency key digest the messages' ids, so a batch the broker
/// redelivers whole is stored once.
pub fn batch_invocation(
    source: &Source,
    messages: Vec<Message>,
    now_us: i64,
) -> NewAsyncInvocation {
    let ids = messages
        .iter()
        .map(|message| message.id.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let digest = hex::encode(Sha256::digest(ids.as_bytes()));
    let count = messages.len();
    let records: Vec<serde_json::Value> = messages.into_iter().map(batch_record).collect();
    let mut headers = cloud_event(
        "application/json",
        [
            ("ce-id", format!("batch-{digest}")),
            ("ce-type", format!("dev.vireo.{}.batch", source.spec.kind)),
            ("ce-subject", source.spec.stream.clone()),
        ],
    );
    headers.insert(BATCH_SIZE_HEADER, HeaderValue::from(count));
    let key = format!("source:{}:batch:{digest}", source.name);
    let body = serde_json::to_vec(&records).expect("JSON values serialize");
    delivery(source, key, headers, body.into(), now_us)
}

fn batch_record(message: Message) -> serde_json::Value {
    let headers: serde_json::Map<String, serde_json::Value> = message
        .headers
        .into_iter()
        .take(MAX_MESSAGE_HEADERS)
        .map(|(name, value)| (name, value.into()))
        .collect();
    let mut record = serde_json::json!({
        "id": message.id,
        "subject": message.subject,
        "headers": headers,
    });
    match std::str::from_utf8(&message.body) {
        Ok(text) => record["body"] = text.into(),
        Err(_) => record["body_base64"] = BASE64_STANDARD.encode(&message.body).into(),
    }
    record
}

/// The headers every delivery has: a host for wasi:http, the body's type and the CloudEvents
/// attributes.
fn cloud_event<const N: usize>(
    content_type: &'static str,
    attributes: [(&'static str, String); N],
) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("localhost"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in attributes {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    headers
}

fn delivery(
    source: &Source,
    idempotency_key: String,
    headers: HeaderMap,
    body: bytes::Bytes,
    now_us: i64,
) -> NewAsyncInvocation {
    NewAsyncInvocation {
        id: InvocationId::generate(),
        namespace: source.namespace.clone(),
        function: source.function.clone(),
        selector: source.selector.clone(),
        trigger: Trigger::Source,
        source: source.event_source(),
        idempotency_key: Some(idempotency_key),
        request: StoredRequest {
            method: "POST".to_string(),
            uri: "/".to_string(),
            headers,
            body,
        },
        accepted_at_us: now_us,
        event_time_us: now_us,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use vireo_core::{AliasName, Name, SourceKind, SourceSpec, VersionSelector};

    use super::*;

    fn orders() -> Source {
        Source {
            namespace: Name::default_namespace(),
            name: Name::parse("source", "orders").unwrap(),
            function: Name::parse("function", "fulfil").unwrap(),
            selector: VersionSelector::Alias(AliasName::latest()),
            spec: SourceSpec {
                kind: SourceKind::Redis,
                url: "redis://127.0.0.1".to_string(),
                stream: "orders".to_string(),
                subject: None,
                password_secret: None,
                batch_size: 10,
                batch_window_ms: None,
                filter: None,
                qos: None,
            },
            paused: false,
            created_at_us: 0,
        }
    }

    fn message(id: &str, body: &'static [u8]) -> Message {
        Message {
            id: id.to_string(),
            subject: "orders".to_string(),
            body: Bytes::from_static(body),
            content_type: "application/json",
            headers: vec![
                ("Region".to_string(), "eu".to_string()),
                ("bad name".to_string(), "x".to_string()),
            ],
        }
    }

    #[test]
    fn a_message_carries_its_identity_subject_and_headers() {
        let built = invocation(&orders(), message("1-0", b"{}"), 5);
        let headers = &built.request.headers;
        assert_eq!(headers["ce-id"], "1-0");
        assert_eq!(headers["ce-type"], "dev.vireo.redis.message");
        assert_eq!(headers["ce-subject"], "orders");
        assert_eq!(headers["x-vireo-msg-region"], "eu");
        assert_eq!(headers.len(), 6, "the invalid header name is dropped");
        assert_eq!(built.source, "/namespaces/default/sources/orders");
        assert_eq!(
            built.idempotency_key.as_deref(),
            Some("source:orders:redis:orders:1-0")
        );
        assert_eq!(built.trigger, Trigger::Source);
    }

    #[test]
    fn a_batch_is_one_json_array_keyed_by_its_messages() {
        let batch = |ids: [&str; 2]| {
            let messages = vec![message(ids[0], b"{\"n\":1}"), message(ids[1], &[0xff, 0])];
            batch_invocation(&orders(), messages, 5)
        };
        let built = batch(["1-0", "2-0"]);
        let headers = &built.request.headers;
        assert_eq!(headers["ce-type"], "dev.vireo.redis.batch");
        assert_eq!(headers["ce-subject"], "orders");
        assert_eq!(headers["x-vireo-batch-size"], "2");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let records: serde_json::Value = serde_json::from_slice(&built.request.body).unwrap();
        assert_eq!(
            records,
            serde_json::json!([
                {"id": "1-0", "subject": "orders", "headers": {"Region": "eu", "bad name": "x"},
                 "body": "{\"n\":1}"},
                {"id": "2-0", "subject": "orders", "headers": {"Region": "eu", "bad name": "x"},
                 "body_base64": "/wA="},
            ])
        );
        let key = built.idempotency_key.unwrap();
        assert!(key.starts_with("source:orders:batch:"), "{key}");
        assert!(key.len() <= vireo_core::queue::MAX_IDEMPOTENCY_KEY_LEN);
        assert_eq!(batch(["1-0", "2-0"]).idempotency_key.unwrap(), key);
        assert_ne!(batch(["1-0", "3-0"]).idempotency_key.unwrap(), key);
    }
}
