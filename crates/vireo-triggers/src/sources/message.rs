//! A broker message as the async invocation it becomes: `POST /` with the payload as body,
//! CloudEvents binary-mode attributes naming the source, and the broker's headers as
//! `x-vireo-msg-*`.

use http::{HeaderMap, HeaderName, HeaderValue, header};
use vireo_core::{InvocationId, NewAsyncInvocation, Source, StoredRequest, Trigger};

use super::Message;

/// Prefix of the broker's headers on a delivery.
pub const MESSAGE_HEADER_PREFIX: &str = "x-vireo-msg-";
/// Most broker headers carried; the rest are dropped (they stay in the broker's copy).
const MAX_MESSAGE_HEADERS: usize = 32;

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
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("localhost"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(message.content_type),
    );
    let attributes = [
        ("ce-id", message.id.clone()),
        ("ce-type", format!("dev.vireo.{}.message", source.spec.kind)),
        ("ce-subject", message.subject.clone()),
    ];
    for (name, value) in attributes {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
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
    NewAsyncInvocation {
        id: InvocationId::generate(),
        namespace: source.namespace.clone(),
        function: source.function.clone(),
        selector: source.selector.clone(),
        trigger: Trigger::Source,
        source: source.event_source(),
        idempotency_key: Some(idempotency_key(source, &message)),
        request: StoredRequest {
            method: "POST".to_string(),
            uri: "/".to_string(),
            headers,
            body: message.body,
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

    #[test]
    fn a_message_carries_its_identity_subject_and_headers() {
        let source = Source {
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
                filter: None,
            },
            paused: false,
            created_at_us: 0,
        };
        let message = Message {
            id: "1-0".to_string(),
            subject: "orders".to_string(),
            body: Bytes::from_static(b"{}"),
            content_type: "application/json",
            headers: vec![
                ("Region".to_string(), "eu".to_string()),
                ("bad name".to_string(), "x".to_string()),
            ],
        };
        let built = invocation(&source, message, 5);
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
}
