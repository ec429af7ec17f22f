//! A bucket's notifications, and the async invocations a change becomes: accepted through the
//! queue's own accept rules in the transaction that writes the change, so the object's row and
//! its events commit together or not at all.

use std::collections::BTreeSet;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use vireo_core::{
    AliasName, BucketId, BucketNotification, Enqueued, EventBounds, InvocationId,
    NewAsyncInvocation, ObjectEvent, ObjectInfo, StoreError, StoredRequest, Trigger,
    VersionSelector,
};

use crate::codec;
use crate::roles::Conn;
use crate::roles::queue::{QueueDialect, accept};
use crate::rows::{self, Columns, column};
use crate::sql::{Sql, query};

const NOTIFICATIONS: &str = "SELECT function, events, prefix, suffix FROM bucket_notifications
    WHERE namespace = $1 AND bucket = $2 ORDER BY function";
pub(super) const SET_NOTIFICATION: &str = "INSERT INTO bucket_notifications
        (namespace, bucket, function, events, prefix, suffix)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (namespace, bucket, function) DO UPDATE
    SET events = excluded.events, prefix = excluded.prefix, suffix = excluded.suffix";
pub(super) const DELETE_NOTIFICATION: &str = "DELETE FROM bucket_notifications
    WHERE namespace = $1 AND bucket = $2 AND function = $3";

/// The bucket's notifications by function.
pub(super) async fn notifications(
    conn: &mut impl Sql,
    bucket: &BucketId,
) -> Result<Vec<BucketNotification>, StoreError> {
    query(NOTIFICATIONS)
        .bind(bucket.namespace.as_str())
        .bind(bucket.bucket.as_str())
        .fetch_all(conn, "reading bucket notifications")
        .await?
        .iter()
        .map(notification)
        .collect()
}

pub(super) fn encode_events(events: &BTreeSet<ObjectEvent>) -> Result<String, StoreError> {
    codec::to_json("notification events", events)
}

fn notification(row: &impl Columns) -> Result<BucketNotification, StoreError> {
    Ok(BucketNotification {
        function: rows::name_column(row, "function")?,
        events: codec::from_json("notification events", &column::<String>(row, "events")?)?,
        prefix: column(row, "prefix")?,
        suffix: column(row, "suffix")?,
    })
}

/// Accepts an invocation for each of the bucket's notifications that `event` on `object`
/// matches. A notification of a function deleted since is skipped; a namespace whose queue is
/// full refuses the whole write, which then stores nothing.
pub(super) async fn accept_events<D: QueueDialect>(
    tx: &mut Conn<D>,
    bucket: &BucketId,
    event: ObjectEvent,
    object: &ObjectInfo,
    at_us: i64,
    events: EventBounds,
) -> Result<(), StoreError> {
    let depth = events.depth + 1;
    let batch: Vec<NewAsyncInvocation> = notifications(&mut *tx, bucket)
        .await?
        .into_iter()
        .filter(|n| n.matches(event, &object.key))
        .map(|n| invocation(bucket, &n, (event, depth), object, at_us))
        .collect::<Result<_, _>>()?;
    if batch.is_empty() {
        return Ok(());
    }
    if events.chain_ends() {
        tracing::warn!(
            bucket = %bucket, key = %object.key, depth = events.depth,
            "a function at the end of a chain of bucket events changed an object; \
             its notifications are not delivered, so the chain stops"
        );
        return Ok(());
    }
    let outcomes = accept::<D>(tx, &batch, events.max_pending).await?;
    for (outcome, item) in outcomes.iter().zip(&batch) {
        match outcome {
            Enqueued::Accepted | Enqueued::Duplicate(_) => {}
            Enqueued::FunctionNotFound => tracing::warn!(
                bucket = %bucket, function = %item.function,
                "a bucket notification names a function that no longer exists; not delivered"
            ),
            Enqueued::QueueFull { limit } => {
                return Err(StoreError::QuotaExceeded(format!(
                    "namespace {} already has {limit} async invocations queued or running, so the \
                     notification of {} for object {:?} cannot be queued; nothing was written",
                    bucket.namespace, item.function, object.key
                )));
            }
        }
    }
    Ok(())
}

/// `POST /` with the change as JSON and its CloudEvents attributes: `ce-type` the event's,
/// `ce-source` the bucket, `ce-subject` the key (control characters percent-encoded, which a
/// header cannot carry), and `ce-vireodepth` its depth in a chain of events.
fn invocation(
    bucket: &BucketId,
    notification: &BucketNotification,
    (event, depth): (ObjectEvent, u32),
    object: &ObjectInfo,
    at_us: i64,
) -> Result<NewAsyncInvocation, StoreError> {
    let body = serde_json::json!({
        "event": event.as_str(),
        "bucket": bucket.bucket.as_str(),
        "key": object.key,
        "size": object.size,
        "etag": object.etag,
        "content_type": object.content_type,
    });
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("localhost"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        HeaderName::from_static("ce-type"),
        HeaderValue::from_static(event.event_type()),
    );
    let subject: String = object
        .key
        .chars()
        .map(|c| {
            if c.is_control() {
                format!("%{:02X}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect();
    let subject = HeaderValue::from_bytes(subject.as_bytes())
        .map_err(|e| StoreError::permanent("naming the object in its event", e))?;
    headers.insert(HeaderName::from_static("ce-subject"), subject);
    headers.insert(
        HeaderName::from_static(vireo_core::EVENT_DEPTH_HEADER),
        HeaderValue::from(depth),
    );
    Ok(NewAsyncInvocation {
        id: InvocationId::generate(),
        namespace: bucket.namespace.clone(),
        function: notification.function.clone(),
        selector: VersionSelector::Alias(AliasName::latest()),
        trigger: Trigger::Bucket,
        source: format!("/namespaces/{}/buckets/{}", bucket.namespace, bucket.bucket),
        request: StoredRequest {
            method: "POST".into(),
            uri: "/".into(),
            headers,
            body: Bytes::from(body.to_string()),
        },
        idempotency_key: None,
        accepted_at_us: at_us,
        event_time_us: at_us,
    })
}
