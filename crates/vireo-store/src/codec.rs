//! How domain values are kept in columns, for every backend: header lines, the JSON of settings,
//! retry policies, quotas and key scopes, and the conversions from stored columns back to domain
//! values that are about Vireo's types rather than any one database. A backend reads its rows
//! and hands the columns here, so two backends cannot store the same value two ways.

use std::collections::BTreeMap;

use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;
use vireo_core::{
    AliasName, AliasTarget, AsyncStatus, InvocationRecord, Name, NamespaceQuotas, QueueCounts,
    RetryPolicy, Settlement, StoreError, StoredResponse,
};

/// Headers one per line as `name: value`, which is lossless because a header value can never
/// contain a newline.
pub(crate) fn encode_headers(headers: &HeaderMap) -> Vec<u8> {
    let mut encoded = Vec::new();
    for (name, value) in headers {
        encoded.extend_from_slice(name.as_str().as_bytes());
        encoded.extend_from_slice(b": ");
        encoded.extend_from_slice(value.as_bytes());
        encoded.push(b'\n');
    }
    encoded
}

/// Reverses [`encode_headers`]; lines that are not valid headers (never written by Vireo) are
/// skipped rather than failing a delivery.
pub(crate) fn decode_headers(encoded: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in encoded.split(|b| *b == b'\n') {
        let Some(colon) = line.windows(2).position(|pair| pair == b": ") else {
            continue;
        };
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(&line[colon + 2..]),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

/// `value` as the JSON text a column keeps; `what` names it in the error.
pub(crate) fn to_json<T: Serialize + ?Sized>(what: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::permanent(format!("encoding {what}"), e))
}

/// Reverses [`to_json`].
pub(crate) fn from_json<T: DeserializeOwned>(what: &str, json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json)
        .map_err(|e| StoreError::permanent(format!("reading stored {what}"), e))
}

/// A function's stored retry policy; none stored means the default.
pub(crate) fn retry_policy(stored: Option<&str>) -> Result<RetryPolicy, StoreError> {
    stored.map_or(Ok(RetryPolicy::default()), |json| {
        from_json("retry policy", json)
    })
}

/// Quotas as stored: none at all when every quota is the default.
pub(crate) fn encode_quotas(quotas: &NamespaceQuotas) -> Result<Option<String>, StoreError> {
    if *quotas == NamespaceQuotas::default() {
        return Ok(None);
    }
    to_json("quotas", quotas).map(Some)
}

/// Reverses [`encode_quotas`].
pub(crate) fn quotas(stored: Option<&str>) -> Result<NamespaceQuotas, StoreError> {
    stored.map_or(Ok(NamespaceQuotas::default()), |json| {
        from_json("quotas", json)
    })
}

/// The namespaces an API key is scoped to, as stored.
pub(crate) fn encode_key_namespaces(namespaces: &[Name]) -> Result<String, StoreError> {
    let names: Vec<&str> = namespaces.iter().map(Name::as_str).collect();
    to_json("key namespaces", &names)
}

/// Reverses [`encode_key_namespaces`].
pub(crate) fn key_namespaces(stored: &str) -> Result<Vec<Name>, StoreError> {
    let names: Vec<String> = from_json("key namespaces", stored)?;
    names
        .iter()
        .map(|name| name_value("namespaces", name))
        .collect()
}

/// A stored text value parsed back into its type; `column` names it in the error.
pub(crate) fn parsed<T>(
    column: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    parse(value).ok_or_else(|| {
        StoreError::permanent(
            format!("reading column {column}"),
            format!("unexpected value {value:?}"),
        )
    })
}

pub(crate) fn name_value(column: &str, value: &str) -> Result<Name, StoreError> {
    parsed(column, value, |value| Name::parse("stored", value).ok())
}

/// Counts and sizes are unsigned in the domain and signed in SQL; a negative one cannot occur
/// and reads as zero.
pub(crate) fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// SQL integers are signed; a u64 beyond i64::MAX (292,000 years in µs) cannot occur in
/// practice, and saturating keeps a record batch from failing forever over one absurd value.
pub(crate) fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The memory-time a record is billed for, kept beside it so usage sums need no arithmetic.
pub(crate) fn mib_ms(record: &InvocationRecord) -> i64 {
    saturating_i64(
        record
            .billed_ms
            .saturating_mul(u64::from(record.memory_mib)),
    )
}

/// An alias's split as stored: nothing for an alias that names one version.
pub(crate) fn encode_split(target: &AliasTarget) -> Result<Option<String>, StoreError> {
    if target.is_single() {
        return Ok(None);
    }
    to_json("alias split", target).map(Some)
}

/// The aliases of a function with this newest version: just `latest`, when there is one.
pub(crate) fn latest_alias(latest_version: Option<u32>) -> BTreeMap<String, u32> {
    latest_version
        .map(|latest| (AliasName::LATEST.to_string(), latest))
        .into_iter()
        .collect()
}

/// The status a settled invocation is stored with, and when it is due again if it is queued.
pub(crate) fn settled(settlement: &Settlement) -> (AsyncStatus, Option<i64>) {
    match settlement {
        Settlement::Succeeded => (AsyncStatus::Succeeded, None),
        Settlement::Failed => (AsyncStatus::Failed, None),
        Settlement::Dead => (AsyncStatus::Dead, None),
        Settlement::Retry { at_us } | Settlement::Postpone { at_us } => {
            (AsyncStatus::Queued, Some(*at_us))
        }
    }
}

/// The last answer stored with an async invocation: present when its status is.
pub(crate) fn stored_response(
    status: Option<u16>,
    headers: Option<Vec<u8>>,
    body: Option<Vec<u8>>,
    truncated: Option<bool>,
) -> Option<StoredResponse> {
    status.map(|status| StoredResponse {
        status,
        headers: decode_headers(&headers.unwrap_or_default()),
        body: body.unwrap_or_default().into(),
        body_truncated: truncated.unwrap_or(false),
    })
}

/// A function's queue counts from `(status, count)` rows.
pub(crate) fn queue_counts(
    rows: impl IntoIterator<Item = (String, i64)>,
) -> Result<QueueCounts, StoreError> {
    let mut counts = QueueCounts::default();
    for (status, count) in rows {
        let count = unsigned(count);
        match parsed("status", &status, AsyncStatus::parse)? {
            AsyncStatus::Queued => counts.queued = count,
            AsyncStatus::Running => counts.running = count,
            AsyncStatus::Succeeded => counts.succeeded = count,
            AsyncStatus::Failed => counts.failed = count,
            AsyncStatus::Dead => counts.dead = count,
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_survive_encoding_including_repeats_and_raw_bytes() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2: with colon"));
        headers.append("x-raw", HeaderValue::from_bytes(b"caf\xe9").unwrap());
        assert_eq!(decode_headers(&encode_headers(&headers)), headers);
    }

    #[test]
    fn defaults_are_stored_as_nothing_and_read_back() {
        assert_eq!(encode_quotas(&NamespaceQuotas::default()).unwrap(), None);
        let quota = NamespaceQuotas {
            max_queued: Some(3),
            ..NamespaceQuotas::default()
        };
        let stored = encode_quotas(&quota).unwrap();
        assert_eq!(quotas(stored.as_deref()).unwrap(), quota);
        assert_eq!(quotas(None).unwrap(), NamespaceQuotas::default());
        assert_eq!(retry_policy(None).unwrap(), RetryPolicy::default());
        let unreadable = retry_policy(Some("{")).unwrap_err();
        assert!(
            unreadable.to_string().contains("retry policy"),
            "{unreadable}"
        );
    }

    #[test]
    fn stored_values_that_do_not_parse_are_reported_with_their_column() {
        let bad = name_value("namespace", "Not A Name").unwrap_err();
        assert!(bad.to_string().contains("column namespace"), "{bad}");
        let namespaces = [Name::default_namespace()];
        let stored = encode_key_namespaces(&namespaces).unwrap();
        assert_eq!(key_namespaces(&stored).unwrap(), namespaces);
        assert!(queue_counts([("lost".to_string(), 1)]).is_err());
        let counts = queue_counts([("dead".to_string(), 2), ("queued".to_string(), -1)]).unwrap();
        assert_eq!((counts.dead, counts.queued), (2, 0));
    }
}
