//! The [`ObjectStore`]: a row per bucket with its totals, a row per object naming its bytes.
//!
//! Where the bytes live is the backend's ([`ObjectsDialect`]): a write stores the body under a
//! fresh blob id first, then makes it visible by writing the object's row in a transaction
//! that also replaces the old row and updates the bucket's totals; the old bytes are let go
//! after that commit. A namespace with a `max_object_bytes` quota has its writes wait for each
//! other (`lock_namespace`), so the bytes they check are the bytes they add to.

mod body;
mod listing;
mod notify;

pub(crate) use body::BodyMeter;

use std::collections::BTreeMap;

use vireo_core::{
    BucketId, BucketInfo, BucketNotification, ByteRange, EventBounds, Name, NewObject, ObjectBody,
    ObjectEvent, ObjectInfo, ObjectListing, ObjectPage, ObjectRead, ObjectStore, StoreError,
};

use super::queue::QueueDialect;
use super::{Dialect, SqlStore, Tx, check_function, check_namespace, commit};
use crate::codec;
use crate::rows::{self, Columns, column};
use crate::sql::{Sql, query};

const BUCKET: &str = "SELECT name, object_count, total_bytes, created_at_us FROM buckets
    WHERE namespace = $1 AND name = $2";
const CREATE_BUCKET: &str = "INSERT INTO buckets
        (namespace, name, created_at_us, object_count, total_bytes)
    VALUES ($1, $2, $3, 0, 0) ON CONFLICT DO NOTHING";
const LIST_BUCKETS: &str = "SELECT name, object_count, total_bytes, created_at_us FROM buckets
    WHERE namespace = $1 ORDER BY name";
const DELETE_BUCKET: &str = "DELETE FROM buckets WHERE namespace = $1 AND name = $2";
const NAMESPACE_QUOTAS: &str = "SELECT quotas FROM namespaces WHERE name = $1";
const NAMESPACE_BYTES: &str =
    "SELECT CAST(COALESCE(SUM(total_bytes), 0) AS BIGINT) FROM buckets WHERE namespace = $1";
/// A bucket's objects, each with the blob holding its bytes.
macro_rules! select_objects {
    () => {
        "SELECT key, blob, size, etag, content_type, metadata, created_at_us
            FROM objects WHERE namespace = $1 AND bucket = $2"
    };
}
const OBJECT: &str = concat!(select_objects!(), " AND key = $3");
/// Followed by the bounds of the page.
const LIST_OBJECTS: &str = select_objects!();
const DELETE_OBJECT: &str = "DELETE FROM objects WHERE namespace = $1 AND bucket = $2 AND key = $3";
const INSERT_OBJECT: &str = "INSERT INTO objects
        (namespace, bucket, key, blob, size, etag, content_type, metadata, created_at_us)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const ADD_TO_TOTALS: &str = "UPDATE buckets
    SET object_count = object_count + $3, total_bytes = total_bytes + $4
    WHERE namespace = $1 AND name = $2";

/// How a backend keeps object bytes.
#[async_trait::async_trait]
pub(crate) trait ObjectsDialect: Dialect {
    /// Stores `body` as `blob` (counting and hashing it through `meter`) and begins the write
    /// transaction that is to make it visible. Where the bytes go into that transaction, it
    /// is taken first; where they go elsewhere, after they are stored whole.
    async fn store_body(
        &self,
        blob: &str,
        body: ObjectBody,
        meter: &mut BodyMeter,
    ) -> Result<Tx<Self>, StoreError>;

    /// Lets go of the bytes of a write whose transaction did not commit.
    async fn discard_body(&self, blob: &str);

    /// Lets go of bytes no committed object names any more.
    async fn forget_body(&self, blob: &str);

    /// The bytes of `range` of the blob; `None` when they are gone (the object was replaced or
    /// deleted since its row was read).
    async fn read_body(
        &self,
        blob: &str,
        range: ByteRange,
    ) -> Result<Option<ObjectBody>, StoreError>;
}

#[async_trait::async_trait]
impl<D: ObjectsDialect + QueueDialect> ObjectStore for SqlStore<D> {
    async fn create_bucket(
        &self,
        namespace: &Name,
        name: &Name,
        at_us: i64,
    ) -> Result<BucketInfo, StoreError> {
        let mut tx = self.write().await?;
        check_namespace(&mut *tx, namespace).await?;
        let inserted = query(CREATE_BUCKET)
            .bind(namespace.as_str())
            .bind(name.as_str())
            .bind(at_us)
            .execute(&mut *tx, "creating bucket")
            .await?;
        if inserted == 0 {
            return Err(StoreError::BucketExists {
                namespace: namespace.clone(),
                bucket: name.clone(),
            });
        }
        commit::<D>(tx).await?;
        Ok(BucketInfo {
            name: name.clone(),
            objects: 0,
            bytes: 0,
            created_at_us: at_us,
        })
    }

    async fn list_buckets(&self, namespace: &Name) -> Result<Vec<BucketInfo>, StoreError> {
        let mut tx = self.read().await?;
        check_namespace(&mut *tx, namespace).await?;
        let rows = query(LIST_BUCKETS)
            .bind(namespace.as_str())
            .fetch_all(&mut *tx, "listing buckets")
            .await?;
        rows.iter().map(bucket_info).collect()
    }

    async fn bucket(&self, bucket: &BucketId) -> Result<BucketInfo, StoreError> {
        let mut tx = self.read().await?;
        find_bucket(&mut *tx, bucket).await
    }

    async fn delete_bucket(&self, bucket: &BucketId) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        let info = find_bucket(&mut *tx, bucket).await?;
        if info.objects > 0 {
            return Err(StoreError::BucketNotEmpty {
                namespace: bucket.namespace.clone(),
                bucket: bucket.bucket.clone(),
                objects: info.objects,
            });
        }
        query(DELETE_BUCKET)
            .bind(bucket.namespace.as_str())
            .bind(bucket.bucket.as_str())
            .execute(&mut *tx, "deleting bucket")
            .await?;
        commit::<D>(tx).await
    }

    async fn put_object(
        &self,
        bucket: &BucketId,
        key: &str,
        object: NewObject,
        body: ObjectBody,
    ) -> Result<ObjectInfo, StoreError> {
        // Refuse before taking any bytes what would be refused after them.
        let quota = {
            let mut tx = self.read().await?;
            find_bucket(&mut *tx, bucket).await?;
            object_quota(&mut *tx, &bucket.namespace).await?
        };
        let mut meter = BodyMeter::new(
            object.max_bytes,
            quota.map(|limit| (&bucket.namespace, limit)),
        );
        let blob = uuid::Uuid::now_v7().simple().to_string();
        let tx = match self.store_body(&blob, body, &mut meter).await {
            Ok(tx) => tx,
            Err(e) => {
                self.discard_body(&blob).await;
                return Err(e);
            }
        };
        let (size, etag) = meter.finish();
        let events = object.events;
        let info = ObjectInfo {
            key: key.to_string(),
            size,
            etag,
            content_type: object.content_type,
            created_at_us: object.at_us,
            metadata: object.metadata,
        };
        match make_visible::<D>(tx, bucket, &blob, &info, events).await {
            Ok(replaced) => {
                if let Some(old) = replaced {
                    self.forget_body(&old).await;
                }
                Ok(info)
            }
            Err(e) => {
                self.discard_body(&blob).await;
                Err(e)
            }
        }
    }

    async fn head_object(
        &self,
        bucket: &BucketId,
        key: &str,
    ) -> Result<Option<ObjectInfo>, StoreError> {
        Ok(self.stored_object(bucket, key).await?.map(|(info, _)| info))
    }

    async fn get_object(
        &self,
        bucket: &BucketId,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<Option<ObjectRead>, StoreError> {
        // A write may replace the object between reading its row and opening its bytes; the
        // row read again then names the new bytes.
        const ATTEMPTS: usize = 3;
        for _ in 0..ATTEMPTS {
            let Some((info, blob)) = self.stored_object(bucket, key).await? else {
                return Ok(None);
            };
            let range = clamp(range, info.size);
            if let Some(body) = self.read_body(&blob, range).await? {
                return Ok(Some(ObjectRead { info, range, body }));
            }
        }
        Err(StoreError::unavailable(
            format!("reading object {key:?} of bucket {bucket}"),
            "it was replaced while being opened, again and again",
        ))
    }

    async fn delete_object(
        &self,
        bucket: &BucketId,
        key: &str,
        events: EventBounds,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        find_bucket(&mut *tx, bucket).await?;
        let removed = remove_object(&mut *tx, bucket, key).await?;
        if let Some((info, _)) = &removed {
            let now = vireo_core::time::now_micros();
            notify::accept_events::<D>(&mut tx, bucket, ObjectEvent::Deleted, info, now, events)
                .await?;
        }
        commit::<D>(tx).await?;
        let removed = removed.map(|(_, blob)| blob);
        match removed {
            Some(blob) => {
                self.forget_body(&blob).await;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn list_objects(
        &self,
        bucket: &BucketId,
        listing: &ObjectListing,
    ) -> Result<ObjectPage, StoreError> {
        let mut tx = self.read().await?;
        find_bucket(&mut *tx, bucket).await?;
        listing::page(&mut *tx, bucket, listing).await
    }

    async fn set_notification(
        &self,
        bucket: &BucketId,
        notification: &BucketNotification,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        find_bucket(&mut *tx, bucket).await?;
        check_function(&mut *tx, &bucket.namespace, &notification.function).await?;
        query(notify::SET_NOTIFICATION)
            .bind(bucket.namespace.as_str())
            .bind(bucket.bucket.as_str())
            .bind(notification.function.as_str())
            .bind(notify::encode_events(&notification.events)?)
            .bind(notification.prefix.as_str())
            .bind(notification.suffix.as_str())
            .execute(&mut *tx, "setting bucket notification")
            .await?;
        commit::<D>(tx).await
    }

    async fn notifications(
        &self,
        bucket: &BucketId,
    ) -> Result<Vec<BucketNotification>, StoreError> {
        let mut tx = self.read().await?;
        find_bucket(&mut *tx, bucket).await?;
        notify::notifications(&mut *tx, bucket).await
    }

    async fn delete_notification(
        &self,
        bucket: &BucketId,
        function: &Name,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        find_bucket(&mut *tx, bucket).await?;
        let deleted = query(notify::DELETE_NOTIFICATION)
            .bind(bucket.namespace.as_str())
            .bind(bucket.bucket.as_str())
            .bind(function.as_str())
            .execute(&mut *tx, "deleting bucket notification")
            .await?;
        commit::<D>(tx).await?;
        Ok(deleted > 0)
    }
}

impl<D: ObjectsDialect + QueueDialect> SqlStore<D> {
    /// The object's description and the blob holding its bytes.
    async fn stored_object(
        &self,
        bucket: &BucketId,
        key: &str,
    ) -> Result<Option<(ObjectInfo, String)>, StoreError> {
        let mut tx = self.read().await?;
        find_bucket(&mut *tx, bucket).await?;
        let row = query(OBJECT)
            .bind(bucket.namespace.as_str())
            .bind(bucket.bucket.as_str())
            .bind(key)
            .fetch_optional(&mut *tx, "reading object")
            .await?;
        row.map(|row| Ok((object_info(&row)?, column(&row, "blob")?)))
            .transpose()
    }
}

/// Writes the object's row over any old one, checking the quota, with the invocations of its
/// notifications, and commits; the blob of the object it replaced, if any.
async fn make_visible<D: QueueDialect>(
    mut tx: Tx<D>,
    bucket: &BucketId,
    blob: &str,
    info: &ObjectInfo,
    events: EventBounds,
) -> Result<Option<String>, StoreError> {
    find_bucket(&mut *tx, bucket).await?;
    let limit = object_quota(&mut *tx, &bucket.namespace).await?;
    if limit.is_some() {
        D::lock_namespace(&mut tx, &bucket.namespace).await?;
    }
    let old = take_object(&mut *tx, bucket, &info.key).await?;
    let old_size = old
        .as_ref()
        .map_or(0, |(old, _)| codec::saturating_i64(old.size));
    let replaced = old.map(|(_, blob)| blob);
    let size = codec::saturating_i64(info.size);
    if let Some(limit) = limit {
        let held: i64 = query(NAMESPACE_BYTES)
            .bind(bucket.namespace.as_str())
            .scalar(&mut *tx, "counting the namespace's object bytes")
            .await?;
        let grows = size > old_size;
        if grows && held - old_size + size > codec::saturating_i64(limit) {
            return Err(StoreError::ObjectQuotaExceeded {
                namespace: bucket.namespace.clone(),
                limit,
            });
        }
    }
    query(INSERT_OBJECT)
        .bind(bucket.namespace.as_str())
        .bind(bucket.bucket.as_str())
        .bind(info.key.as_str())
        .bind(blob)
        .bind(size)
        .bind(info.etag.as_str())
        .bind(info.content_type.as_str())
        .bind(codec::to_json("object metadata", &info.metadata)?)
        .bind(info.created_at_us)
        .execute(&mut *tx, "writing object")
        .await?;
    add_to_totals(
        &mut *tx,
        bucket,
        1 - i64::from(replaced.is_some()),
        size - old_size,
    )
    .await?;
    notify::accept_events::<D>(
        &mut tx,
        bucket,
        ObjectEvent::Created,
        info,
        info.created_at_us,
        events,
    )
    .await?;
    commit::<D>(tx).await?;
    Ok(replaced)
}

/// Deletes the object's row and takes it off the bucket's totals; the object and its blob.
async fn remove_object(
    conn: &mut impl Sql,
    bucket: &BucketId,
    key: &str,
) -> Result<Option<(ObjectInfo, String)>, StoreError> {
    let removed = take_object(&mut *conn, bucket, key).await?;
    if let Some((info, _)) = &removed {
        add_to_totals(conn, bucket, -1, -codec::saturating_i64(info.size)).await?;
    }
    Ok(removed)
}

/// Deletes the object's row (leaving the totals to the caller); the object and its blob.
async fn take_object(
    conn: &mut impl Sql,
    bucket: &BucketId,
    key: &str,
) -> Result<Option<(ObjectInfo, String)>, StoreError> {
    let row = query(OBJECT)
        .bind(bucket.namespace.as_str())
        .bind(bucket.bucket.as_str())
        .bind(key)
        .fetch_optional(&mut *conn, "reading object")
        .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    query(DELETE_OBJECT)
        .bind(bucket.namespace.as_str())
        .bind(bucket.bucket.as_str())
        .bind(key)
        .execute(conn, "deleting object")
        .await?;
    Ok(Some((object_info(&row)?, column(&row, "blob")?)))
}

async fn add_to_totals(
    conn: &mut impl Sql,
    bucket: &BucketId,
    objects: i64,
    bytes: i64,
) -> Result<(), StoreError> {
    query(ADD_TO_TOTALS)
        .bind(bucket.namespace.as_str())
        .bind(bucket.bucket.as_str())
        .bind(objects)
        .bind(bytes)
        .execute(conn, "counting the bucket's objects")
        .await?;
    Ok(())
}

/// The bucket, or `NamespaceNotFound`/`BucketNotFound`, whichever is precise.
async fn find_bucket(conn: &mut impl Sql, bucket: &BucketId) -> Result<BucketInfo, StoreError> {
    let row = query(BUCKET)
        .bind(bucket.namespace.as_str())
        .bind(bucket.bucket.as_str())
        .fetch_optional(&mut *conn, "reading bucket")
        .await?;
    match row {
        Some(row) => bucket_info(&row),
        None => {
            check_namespace(conn, &bucket.namespace).await?;
            Err(StoreError::BucketNotFound {
                namespace: bucket.namespace.clone(),
                bucket: bucket.bucket.clone(),
            })
        }
    }
}

/// The namespace's `max_object_bytes`.
async fn object_quota(conn: &mut impl Sql, namespace: &Name) -> Result<Option<u64>, StoreError> {
    let quotas: Option<String> = query(NAMESPACE_QUOTAS)
        .bind(namespace.as_str())
        .scalar(conn, "reading namespace quotas")
        .await?;
    Ok(codec::quotas(quotas.as_deref())?.max_object_bytes)
}

/// `range` within an object of `size` bytes; all of it when `None`.
fn clamp(range: Option<ByteRange>, size: u64) -> ByteRange {
    let ByteRange { start, end } = range.unwrap_or(ByteRange {
        start: 0,
        end: size,
    });
    let end = end.min(size);
    ByteRange {
        start: start.min(end),
        end,
    }
}

fn bucket_info(row: &impl Columns) -> Result<BucketInfo, StoreError> {
    Ok(BucketInfo {
        name: rows::name_column(row, "name")?,
        objects: codec::unsigned(column(row, "object_count")?),
        bytes: codec::unsigned(column(row, "total_bytes")?),
        created_at_us: column(row, "created_at_us")?,
    })
}

fn object_info(row: &impl Columns) -> Result<ObjectInfo, StoreError> {
    let metadata: BTreeMap<String, String> =
        codec::from_json("object metadata", &column::<String>(row, "metadata")?)?;
    Ok(ObjectInfo {
        key: column(row, "key")?,
        size: codec::unsigned(column(row, "size")?),
        etag: column(row, "etag")?,
        content_type: column(row, "content_type")?,
        created_at_us: column(row, "created_at_us")?,
        metadata,
    })
}
