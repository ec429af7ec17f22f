//! Bucket notifications are accepted into the queue by the store, in the transaction of the
//! write they announce, past the queue writer that wakes the worker for what it accepts. This
//! wraps the object store the API writes through so that a write that may have queued an event
//! wakes the worker too, and a delivery starts at once instead of at the worker's next poll.

use std::sync::Arc;

use tokio::sync::Notify;
use vireo_core::{
    BucketId, BucketInfo, BucketNotification, ByteRange, EventBounds, Name, NewObject, ObjectBody,
    ObjectInfo, ObjectListing, ObjectPage, ObjectRead, ObjectStore, StoreError,
};

pub(crate) struct WakingObjects {
    pub inner: Arc<dyn ObjectStore>,
    /// The queue worker's wake-up.
    pub wake: Arc<Notify>,
}

#[async_trait::async_trait]
impl ObjectStore for WakingObjects {
    async fn create_bucket(
        &self,
        namespace: &Name,
        name: &Name,
        at_us: i64,
    ) -> Result<BucketInfo, StoreError> {
        self.inner.create_bucket(namespace, name, at_us).await
    }

    async fn list_buckets(&self, namespace: &Name) -> Result<Vec<BucketInfo>, StoreError> {
        self.inner.list_buckets(namespace).await
    }

    async fn bucket(&self, bucket: &BucketId) -> Result<BucketInfo, StoreError> {
        self.inner.bucket(bucket).await
    }

    async fn delete_bucket(&self, bucket: &BucketId) -> Result<(), StoreError> {
        self.inner.delete_bucket(bucket).await
    }

    async fn put_object(
        &self,
        bucket: &BucketId,
        key: &str,
        object: NewObject,
        body: ObjectBody,
    ) -> Result<ObjectInfo, StoreError> {
        let stored = self.inner.put_object(bucket, key, object, body).await?;
        self.wake.notify_one();
        Ok(stored)
    }

    async fn head_object(
        &self,
        bucket: &BucketId,
        key: &str,
    ) -> Result<Option<ObjectInfo>, StoreError> {
        self.inner.head_object(bucket, key).await
    }

    async fn get_object(
        &self,
        bucket: &BucketId,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<Option<ObjectRead>, StoreError> {
        self.inner.get_object(bucket, key, range).await
    }

    async fn delete_object(
        &self,
        bucket: &BucketId,
        key: &str,
        events: EventBounds,
    ) -> Result<bool, StoreError> {
        let deleted = self.inner.delete_object(bucket, key, events).await?;
        if deleted {
            self.wake.notify_one();
        }
        Ok(deleted)
    }

    async fn list_objects(
        &self,
        bucket: &BucketId,
        listing: &ObjectListing,
    ) -> Result<ObjectPage, StoreError> {
        self.inner.list_objects(bucket, listing).await
    }

    async fn set_notification(
        &self,
        bucket: &BucketId,
        notification: &BucketNotification,
    ) -> Result<(), StoreError> {
        self.inner.set_notification(bucket, notification).await
    }

    async fn notifications(
        &self,
        bucket: &BucketId,
    ) -> Result<Vec<BucketNotification>, StoreError> {
        self.inner.notifications(bucket).await
    }

    async fn delete_notification(
        &self,
        bucket: &BucketId,
        function: &Name,
    ) -> Result<bool, StoreError> {
        self.inner.delete_notification(bucket, function).await
    }
}
