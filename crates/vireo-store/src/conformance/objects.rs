//! Object buckets: buckets and their totals, bodies streamed in and out whole or by range with
//! their sha256, listings by prefix, delimiter and cursor, the limits and the quota (which
//! store nothing when they refuse), isolation between namespaces, and notifications queued in
//! the transaction of the change they announce.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use sha2::{Digest, Sha256};
use vireo_core::{
    BucketId, BucketNotification, ByteRange, EventBounds, NamespaceQuotas, NewObject, ObjectBody,
    ObjectEvent, ObjectListing, ObjectStore, StoreError,
};

use super::support::{AT, assert_err, deployed, name};
use crate::Stores;

/// A limit no case's body reaches.
const NO_LIMIT: u64 = u64::MAX;
/// Events outside any chain, with room for all of them.
const ANY_EVENTS: EventBounds = EventBounds {
    max_pending: NO_LIMIT,
    depth: 0,
};

fn bucket(namespace: &str, bucket: &str) -> BucketId {
    BucketId::new(name(namespace), name(bucket))
}

async fn created(objects: &dyn ObjectStore, namespace: &str, name_: &str) -> BucketId {
    objects
        .create_bucket(&name(namespace), &name(name_), AT)
        .await
        .unwrap();
    bucket(namespace, name_)
}

/// `bytes` as a body of chunks of `chunk` bytes, so writes see many small pieces.
fn body(bytes: &[u8], chunk: usize) -> ObjectBody {
    let chunks: Vec<std::io::Result<Bytes>> = bytes
        .chunks(chunk.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks).boxed()
}

fn new_object(max_bytes: u64) -> NewObject {
    NewObject {
        content_type: "image/png".into(),
        metadata: BTreeMap::from([("owner".to_string(), "ada".to_string())]),
        at_us: AT,
        max_bytes,
        events: ANY_EVENTS,
    }
}

async fn put(objects: &dyn ObjectStore, at: &BucketId, key: &str, bytes: &[u8]) {
    objects
        .put_object(at, key, new_object(NO_LIMIT), body(bytes, 7000))
        .await
        .unwrap();
}

/// The object's bytes in `range`, streamed.
async fn read(
    objects: &dyn ObjectStore,
    at: &BucketId,
    key: &str,
    range: Option<ByteRange>,
) -> Vec<u8> {
    let read = objects.get_object(at, key, range).await.unwrap().unwrap();
    let chunks: Vec<Bytes> = read.body.try_collect().await.unwrap();
    chunks.concat()
}

/// Bytes that differ at every offset, so a misplaced range shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

pub(super) async fn buckets_are_created_listed_and_deleted_when_empty(stores: &Stores) {
    let objects = stores.objects.as_ref();
    let namespace = name("default");
    assert!(objects.list_buckets(&namespace).await.unwrap().is_empty());
    let uploads = created(objects, "default", "uploads").await;
    created(objects, "default", "archive").await;
    assert_err!(
        objects
            .create_bucket(&namespace, &name("uploads"), AT)
            .await,
        StoreError::BucketExists { .. }
    );
    let names: Vec<_> = objects
        .list_buckets(&namespace)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name.to_string())
        .collect();
    assert_eq!(names, ["archive", "uploads"]);

    put(objects, &uploads, "a", b"hello").await;
    put(objects, &uploads, "b", b"hi").await;
    put(objects, &uploads, "a", b"hello, world").await;
    let info = objects.bucket(&uploads).await.unwrap();
    assert_eq!(
        (info.objects, info.bytes),
        (2, 14),
        "a replaced object counts once"
    );
    assert_err!(
        objects.delete_bucket(&uploads).await,
        StoreError::BucketNotEmpty { objects: 2, .. }
    );
    assert!(
        objects
            .delete_object(&uploads, "a", ANY_EVENTS)
            .await
            .unwrap()
    );
    assert!(
        !objects
            .delete_object(&uploads, "a", ANY_EVENTS)
            .await
            .unwrap()
    );
    assert!(
        objects
            .delete_object(&uploads, "b", ANY_EVENTS)
            .await
            .unwrap()
    );
    let info = objects.bucket(&uploads).await.unwrap();
    assert_eq!((info.objects, info.bytes), (0, 0));
    objects.delete_bucket(&uploads).await.unwrap();
    assert_err!(
        objects.bucket(&uploads).await,
        StoreError::BucketNotFound { .. }
    );
}

pub(super) async fn objects_round_trip_whole_and_by_range_with_their_sha256(stores: &Stores) {
    let objects = stores.objects.as_ref();
    let at = created(objects, "default", "files").await;
    // Empty, one byte, and more than two of PostgreSQL's 1 MiB chunks.
    for len in [0, 1, 2 * 1024 * 1024 + 12_345] {
        let bytes = pattern(len);
        let key = format!("sizes/{len}");
        let info = objects
            .put_object(&at, &key, new_object(NO_LIMIT), body(&bytes, 64 * 1024 + 3))
            .await
            .unwrap();
        assert_eq!(info.size, len as u64);
        assert_eq!(info.etag, hex::encode(Sha256::digest(&bytes)));
        assert_eq!(objects.head_object(&at, &key).await.unwrap(), Some(info));
        assert_eq!(read(objects, &at, &key, None).await, bytes, "{len} bytes");
    }
    let bytes = pattern(2 * 1024 * 1024 + 12_345);
    let key = "sizes/2109497";
    let mib = 1024 * 1024;
    for (start, end) in [
        (0, 1),
        (mib - 5, mib + 5),
        (10, 2 * mib + 100),
        (2 * mib, 3 * mib),
    ] {
        let range = ByteRange { start, end };
        let expected = &bytes[start as usize..(end as usize).min(bytes.len())];
        assert_eq!(
            read(objects, &at, key, Some(range)).await,
            expected,
            "range {start}..{end}, clamped to the size"
        );
    }
    let info = objects.head_object(&at, key).await.unwrap().unwrap();
    assert_eq!(info.content_type, "image/png");
    assert_eq!(info.metadata["owner"], "ada");
    assert_eq!(info.created_at_us, AT);
    assert!(
        objects
            .get_object(&at, "missing", None)
            .await
            .unwrap()
            .is_none()
    );
    assert!(objects.head_object(&at, "missing").await.unwrap().is_none());

    put(objects, &at, key, b"replaced").await;
    assert_eq!(read(objects, &at, key, None).await, b"replaced");
}

pub(super) async fn listings_page_by_prefix_delimiter_and_cursor(stores: &Stores) {
    let objects = stores.objects.as_ref();
    let at = created(objects, "default", "tree").await;
    let mut keys = vec![
        "a",
        "img/1.png",
        "img/2.png",
        "img/sub/3.png",
        "imgx",
        "z/9",
        "é",
    ];
    keys.extend(["thumbs/a", "thumbs/b", "thumbs/c"]);
    for key in &keys {
        put(objects, &at, key, key.as_bytes()).await;
    }
    keys.sort();

    // Every key once, in byte order, in pages of every size.
    for limit in [1, 3, 100] {
        let mut listed = Vec::new();
        let mut cursor = None;
        loop {
            let listing = ObjectListing {
                cursor,
                limit,
                ..ObjectListing::default()
            };
            let page = objects.list_objects(&at, &listing).await.unwrap();
            assert!(page.objects.len() <= limit as usize);
            listed.extend(page.objects.into_iter().map(|o| o.key));
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(listed, keys, "pages of {limit}");
    }

    // Rolled up by `/`, page by page: folders once each, then the rest.
    let mut entries = Vec::new();
    let mut cursor = None;
    loop {
        let listing = ObjectListing {
            delimiter: Some("/".into()),
            cursor,
            limit: 2,
            ..ObjectListing::default()
        };
        let page = objects.list_objects(&at, &listing).await.unwrap();
        assert!(page.objects.len() + page.common_prefixes.len() <= 2);
        entries.extend(page.common_prefixes);
        entries.extend(page.objects.into_iter().map(|o| o.key));
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    entries.sort();
    assert_eq!(entries, ["a", "img/", "imgx", "thumbs/", "z/", "é"]);

    let listing = ObjectListing {
        prefix: "img/".into(),
        delimiter: Some("/".into()),
        limit: 10,
        ..ObjectListing::default()
    };
    let page = objects.list_objects(&at, &listing).await.unwrap();
    let listed: Vec<_> = page.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(listed, ["img/1.png", "img/2.png"]);
    assert_eq!(page.common_prefixes, ["img/sub/"]);
    assert_eq!(page.cursor, None);
}

pub(super) async fn limits_and_the_quota_refuse_and_store_nothing(stores: &Stores) {
    let quotas = NamespaceQuotas {
        max_object_bytes: Some(100),
        ..NamespaceQuotas::default()
    };
    stores
        .tenants
        .create_namespace(&name("small"), &quotas, AT)
        .await
        .unwrap();
    let objects = stores.objects.as_ref();
    let at = created(objects, "small", "files").await;

    assert_err!(
        objects
            .put_object(&at, "big", new_object(10), body(&pattern(11), 3))
            .await,
        StoreError::ObjectTooLarge { limit: 10 }
    );
    put(objects, &at, "sixty", &pattern(60)).await;
    assert_err!(
        objects
            .put_object(&at, "fifty", new_object(NO_LIMIT), body(&pattern(50), 7))
            .await,
        StoreError::ObjectQuotaExceeded { limit: 100, .. }
    );
    // Replacing an object counts only what it adds.
    put(objects, &at, "sixty", &pattern(90)).await;
    let failing: ObjectBody = futures::stream::iter(vec![
        Ok(Bytes::from_static(b"part")),
        Err(std::io::Error::other("the client went away")),
    ])
    .boxed();
    assert_err!(
        objects
            .put_object(&at, "cut", new_object(NO_LIMIT), failing)
            .await,
        StoreError::ObjectBodyFailed(_)
    );
    assert!(objects.head_object(&at, "fifty").await.unwrap().is_none());
    assert!(objects.head_object(&at, "cut").await.unwrap().is_none());
    let info = objects.bucket(&at).await.unwrap();
    assert_eq!((info.objects, info.bytes), (1, 90));
    assert_eq!(read(objects, &at, "sixty", None).await, pattern(90));
}

pub(super) async fn other_namespaces_and_unknown_buckets_are_unreachable(stores: &Stores) {
    stores
        .tenants
        .create_namespace(&name("other"), &NamespaceQuotas::default(), AT)
        .await
        .unwrap();
    let objects = stores.objects.as_ref();
    let mine = created(objects, "default", "shared-name").await;
    let theirs = created(objects, "other", "shared-name").await;
    put(objects, &mine, "secret", b"mine").await;
    assert!(
        objects
            .head_object(&theirs, "secret")
            .await
            .unwrap()
            .is_none()
    );
    let page = objects
        .list_objects(
            &theirs,
            &ObjectListing {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(page.objects.is_empty());

    let missing = bucket("default", "missing");
    assert_err!(
        objects.head_object(&missing, "k").await,
        StoreError::BucketNotFound { .. }
    );
    assert_err!(
        objects
            .put_object(&missing, "k", new_object(NO_LIMIT), body(b"x", 1))
            .await,
        StoreError::BucketNotFound { .. }
    );
    assert_err!(
        objects.delete_object(&missing, "k", ANY_EVENTS).await,
        StoreError::BucketNotFound { .. }
    );
    let nowhere = bucket("nowhere", "files");
    assert_err!(
        objects.list_buckets(&name("nowhere")).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        objects.get_object(&nowhere, "k", None).await,
        StoreError::NamespaceNotFound(_)
    );
}

/// Every invocation the queue holds, claimed at a time after all of them.
async fn claim_all(stores: &Stores) -> Vec<vireo_core::ClaimedInvocation> {
    stores
        .queue
        .claim("test-worker", i64::MAX / 2, i64::MAX / 2 + 1, 1000)
        .await
        .unwrap()
}

pub(super) async fn matching_changes_queue_one_invocation_each_with_the_write(stores: &Stores) {
    let function = deployed(stores, "thumbnail").await;
    let objects = stores.objects.as_ref();
    let at = created(objects, "default", "uploads").await;
    let notification = BucketNotification {
        function: function.clone(),
        events: [ObjectEvent::Created, ObjectEvent::Deleted].into(),
        prefix: "images/".into(),
        suffix: ".png".into(),
    };
    objects.set_notification(&at, &notification).await.unwrap();
    assert_eq!(objects.notifications(&at).await.unwrap(), [notification]);
    assert_err!(
        objects
            .set_notification(
                &at,
                &BucketNotification {
                    function: name("missing"),
                    events: [ObjectEvent::Created].into(),
                    prefix: String::new(),
                    suffix: String::new(),
                }
            )
            .await,
        StoreError::FunctionNotFound { .. }
    );

    put(objects, &at, "images/cat.png", b"png").await;
    put(objects, &at, "images/cat.jpg", b"jpg").await;
    put(objects, &at, "thumbs/cat.png", b"small").await;
    assert!(
        objects
            .delete_object(&at, "images/cat.png", ANY_EVENTS)
            .await
            .unwrap()
    );
    let claimed = claim_all(stores).await;
    let mut events: Vec<(String, String)> = claimed
        .iter()
        .map(|job| {
            assert_eq!(job.trigger, vireo_core::Trigger::Bucket);
            assert_eq!(job.function, function);
            assert_eq!(job.source, "/namespaces/default/buckets/uploads");
            let header = |name: &str| job.request.headers[name].to_str().unwrap().to_string();
            assert_eq!(header("ce-subject"), "images/cat.png");
            let body: serde_json::Value = serde_json::from_slice(&job.request.body).unwrap();
            assert_eq!(body["bucket"], "uploads");
            assert_eq!(body["key"], "images/cat.png");
            assert_eq!(body["size"], 3);
            assert_eq!(body["etag"], hex::encode(Sha256::digest(b"png")));
            assert_eq!(body["content_type"], "image/png");
            (
                header("ce-type"),
                body["event"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            (
                "dev.vireo.object.created".to_string(),
                "created".to_string()
            ),
            (
                "dev.vireo.object.deleted".to_string(),
                "deleted".to_string()
            ),
        ]
    );

    assert!(objects.delete_notification(&at, &function).await.unwrap());
    assert!(!objects.delete_notification(&at, &function).await.unwrap());
    put(objects, &at, "images/dog.png", b"png").await;
    assert!(
        claim_all(stores).await.is_empty(),
        "no notification, no event"
    );
}

pub(super) async fn a_full_queue_refuses_the_write_and_stores_nothing(stores: &Stores) {
    let function = deployed(stores, "thumbnail").await;
    let objects = stores.objects.as_ref();
    let at = created(objects, "default", "uploads").await;
    let notification = BucketNotification {
        function,
        events: [ObjectEvent::Created, ObjectEvent::Deleted].into(),
        prefix: String::new(),
        suffix: String::new(),
    };
    objects.set_notification(&at, &notification).await.unwrap();
    let object = |max_pending| NewObject {
        events: EventBounds::outside_chains(max_pending),
        ..new_object(NO_LIMIT)
    };
    objects
        .put_object(&at, "first", object(1), body(b"1", 1))
        .await
        .unwrap();
    assert_err!(
        objects
            .put_object(&at, "second", object(1), body(b"2", 1))
            .await,
        StoreError::QuotaExceeded(_)
    );
    assert!(objects.head_object(&at, "second").await.unwrap().is_none());
    assert_err!(
        objects
            .delete_object(&at, "first", EventBounds::outside_chains(1))
            .await,
        StoreError::QuotaExceeded(_)
    );
    assert!(
        objects.head_object(&at, "first").await.unwrap().is_some(),
        "not deleted"
    );
    let info = objects.bucket(&at).await.unwrap();
    assert_eq!((info.objects, info.bytes), (1, 1));
    assert_eq!(claim_all(stores).await.len(), 1);
}
