//! Buckets for functions: `wasi:blobstore@0.2.0-draft` over the server's `ObjectStore`. A
//! version may open only the buckets of its namespace its settings grant (`buckets`); any other
//! name is refused before anything about it is looked up, so nothing tells another tenant's
//! buckets apart from missing ones. Bytes stream both ways through `wasi:io` streams, a chunk
//! at a time, and writes obey the object size limit and the namespace's quota as the admin
//! API's do. The interface's errors are text; each says what was refused and why.

mod streams;
mod wasi;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use futures::TryStreamExt as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use tokio::task::JoinHandle;
use vireo_core::{
    BucketId, BucketInfo, ByteRange, EventBounds, Name, NewObject, ObjectBody, ObjectCursor,
    ObjectInfo, ObjectLimits, ObjectListing, ObjectRead, ObjectStore, StoreError, check_object_key,
};
use wasmtime::component::Linker;

use super::tally::{StoreUse, Tally};
use super::{Capability, Grants, Invocation, Package};
use crate::engine::{EngineSettings, HostServices};
use crate::host::Host;
use crate::logs::LogCapture;

/// Reads and writes one instance may have open at once: each holds a file or a database
/// cursor, and a write a task and a buffer.
const MAX_OPEN_TRANSFERS: usize = 16;
/// `incoming-value-consume-sync` answers the whole range in one list: past this, the guest is
/// told to stream it instead.
const MAX_SYNC_READ_BYTES: u64 = 16 << 20;
/// Names one `read-stream-object-names` answers at most, and objects one `delete-objects` names.
const MAX_NAMES_PER_CALL: u64 = 1000;
/// What an object written by a function is labelled as (the interface carries no type).
const CONTENT_TYPE: &str = "application/octet-stream";

pub(crate) struct Blobstore {
    backend: Option<Backend>,
}

/// The store behind the interface and the server's bounds on what a write may do.
#[derive(Clone)]
struct Backend {
    store: Arc<dyn ObjectStore>,
    limits: ObjectLimits,
    /// The bound on a namespace's queued async invocations that a write's notifications
    /// count against.
    max_pending: u64,
}

impl Active {
    /// What bounds the events of this invocation's changes: the queue's room, and the chain
    /// it runs in.
    fn events(&self) -> Result<EventBounds, Failure> {
        Ok(EventBounds {
            max_pending: self.backend()?.max_pending,
            depth: self.depth,
        })
    }
}

/// What a version may do with buckets, shared by its instances.
pub(crate) struct Granted {
    backend: Option<Backend>,
    namespace: Name,
    buckets: BTreeSet<Name>,
}

/// An open bucket.
pub struct Container {
    id: BucketId,
}

/// The names of a bucket's objects, read a page at a time as the guest asks.
pub struct NameStream {
    id: BucketId,
    pending: VecDeque<String>,
    cursor: Option<ObjectCursor>,
    done: bool,
}

/// An object being written: its bytes go through a bounded pipe from the guest's output stream
/// to the store, which starts reading at `write-data` and stores the object at `finish`.
pub struct OutgoingValue {
    pipe: streams::Pipe,
    writing: Option<Writing>,
}

/// A write the store is taking.
struct Writing {
    /// Sent by `finish`: the bytes are complete. Dropped unsent, the write stores nothing.
    complete: oneshot::Sender<()>,
    stored: JoinHandle<Result<ObjectInfo, StoreError>>,
}

/// Bytes of an object asked for with `get-data`, not yet consumed.
pub struct IncomingValue {
    read: ObjectRead,
    permit: OwnedSemaphorePermit,
}

impl Capability for Blobstore {
    const NAME: &str = "blobstore";
    const PACKAGES: &[Package] = &[Package::new("wasi:blobstore", "0.2")];
    type Version = Arc<Granted>;
    type Instance = Active;

    fn new(_: &EngineSettings, services: &HostServices) -> Self {
        Self {
            backend: services.objects.clone().map(|store| Backend {
                store,
                limits: services.object_limits,
                max_pending: services.max_pending_per_namespace,
            }),
        }
    }

    fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        wasi::link(linker)
    }

    fn load(&self, grants: &Grants) -> Self::Version {
        Arc::new(Granted {
            backend: self.backend.clone(),
            namespace: grants.namespace.clone(),
            buckets: grants.buckets.clone(),
        })
    }

    fn instance(granted: &Self::Version, _: &LogCapture) -> Self::Instance {
        Active {
            granted: granted.clone(),
            tally: Arc::default(),
            transfers: Arc::new(Semaphore::new(MAX_OPEN_TRANSFERS)),
            depth: 0,
        }
    }

    fn arm(active: &mut Self::Instance, invocation: &Invocation) {
        active.tally = invocation.objects.clone();
        active.depth = invocation.event_depth;
    }
}

/// An instance's grant, the tally and event depth of the invocation it serves, and its open
/// transfers.
#[derive(Clone)]
pub(crate) struct Active {
    granted: Arc<Granted>,
    tally: Arc<Tally>,
    transfers: Arc<Semaphore>,
    depth: u32,
}

/// What an invocation did with buckets: reads (object reads, infos, listings, existence
/// checks), writes (objects written, copied, moved, deleted, buckets created) and the object
/// bytes it read and wrote (a copy counts its bytes both ways).
pub type ObjectUse = StoreUse;

fn as_u64(bytes: usize) -> u64 {
    u64::try_from(bytes).unwrap_or(u64::MAX)
}

/// Why an operation failed, in the interface's words (its error is text).
type Failure = String;

fn failed(error: StoreError) -> Failure {
    error.to_string()
}

fn checked_key(key: &str) -> Result<(), Failure> {
    check_object_key(key).map_err(|e| e.to_string())
}

impl Active {
    fn backend(&self) -> Result<&Backend, Failure> {
        self.granted
            .backend
            .as_ref()
            .ok_or_else(|| "this server has no object store".to_string())
    }

    fn store(&self) -> Result<&dyn ObjectStore, Failure> {
        Ok(self.backend()?.store.as_ref())
    }

    /// The bucket `label` names if the version was granted it; nothing is looked up otherwise.
    fn granted(&self, label: &str) -> Result<BucketId, Failure> {
        Name::parse("bucket", label)
            .ok()
            .filter(|name| self.granted.buckets.contains(name))
            .map(|name| BucketId::new(self.granted.namespace.clone(), name))
            .ok_or_else(|| {
                format!("access denied: bucket {label:?} is not granted to this function")
            })
    }

    /// A slot for one more open read or write of this instance.
    fn transfer(&self) -> Result<OwnedSemaphorePermit, Failure> {
        self.transfers.clone().try_acquire_owned().map_err(|_| {
            format!("at most {MAX_OPEN_TRANSFERS} object reads and writes may be open at once")
        })
    }

    async fn open(&self, label: &str) -> Result<Container, Failure> {
        let id = self.granted(label)?;
        self.tally.read();
        self.store()?.bucket(&id).await.map_err(failed)?;
        Ok(Container { id })
    }

    async fn create(&self, label: &str) -> Result<Container, Failure> {
        let id = self.granted(label)?;
        self.tally.wrote();
        self.store()?
            .create_bucket(&id.namespace, &id.bucket, now_us())
            .await
            .map_err(failed)?;
        Ok(Container { id })
    }

    async fn exists(&self, label: &str) -> Result<bool, Failure> {
        let id = self.granted(label)?;
        self.tally.read();
        match self.store()?.bucket(&id).await {
            Ok(_) => Ok(true),
            Err(StoreError::BucketNotFound { .. }) => Ok(false),
            Err(other) => Err(failed(other)),
        }
    }

    async fn bucket_info(&self, id: &BucketId) -> Result<BucketInfo, Failure> {
        self.tally.read();
        self.store()?.bucket(id).await.map_err(failed)
    }

    /// Bytes `start..=end` of `key` (clamped to its size), to be consumed.
    async fn get(
        &self,
        id: &BucketId,
        key: &str,
        (start, end): (u64, u64),
    ) -> Result<IncomingValue, Failure> {
        checked_key(key)?;
        if start > end {
            return Err(format!("the range {start}..={end} is empty"));
        }
        let permit = self.transfer()?;
        self.tally.read();
        let range = ByteRange {
            start,
            end: end.saturating_add(1),
        };
        let read = self
            .store()?
            .get_object(id, key, Some(range))
            .await
            .map_err(failed)?
            .ok_or_else(|| missing(id, key))?;
        Ok(IncomingValue { read, permit })
    }

    /// The whole range in memory, for `incoming-value-consume-sync`, within
    /// [`MAX_SYNC_READ_BYTES`].
    async fn consume(&self, value: IncomingValue) -> Result<Vec<u8>, Failure> {
        let size = value.read.range.len();
        if size > MAX_SYNC_READ_BYTES {
            return Err(format!(
                "{size} bytes are more than incoming-value-consume-sync answers \
                 ({MAX_SYNC_READ_BYTES}); use incoming-value-consume-async"
            ));
        }
        let tally = self.tally.clone();
        value
            .read
            .body
            .try_fold(Vec::new(), |mut bytes, chunk| {
                tally.moved(chunk.len());
                bytes.extend_from_slice(&chunk);
                std::future::ready(Ok(bytes))
            })
            .await
            .map_err(|e| format!("reading the object failed: {e}"))
    }

    /// Starts storing `value` as `key`: the store reads the guest's bytes as they come and
    /// makes the object visible when `finish` completes them.
    fn start_write(
        &self,
        id: &BucketId,
        key: &str,
        value: &mut OutgoingValue,
    ) -> Result<(), Failure> {
        checked_key(key)?;
        let backend = self.backend()?.clone();
        let events = self.events()?;
        let permit = self.transfer()?;
        let (complete, completed) = oneshot::channel();
        let body = value
            .pipe
            .start(completed, self.tally.clone())
            .ok_or_else(|| "write-data was already called for this value".to_string())?;
        let (id, key) = (id.clone(), key.to_string());
        self.tally.wrote();
        let stored = tokio::spawn(async move {
            let _open = permit;
            let object = backend.new_object(events, CONTENT_TYPE.to_string(), BTreeMap::new());
            backend.store.put_object(&id, &key, object, body).await
        });
        value.writing = Some(Writing { complete, stored });
        Ok(())
    }

    /// Ends a write begun with `write-data`: the object once stored, or why it was not.
    async fn finish(value: OutgoingValue) -> Result<(), Failure> {
        let OutgoingValue { pipe, writing } = value;
        // The guest's stream is gone (its child resource); so must the host's end be.
        drop(pipe);
        let Some(Writing { complete, stored }) = writing else {
            return Err("write-data was not called for this value".to_string());
        };
        // The task is there until it answers; a send fails only if it is gone already.
        let _ = complete.send(());
        match stored.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(failed(error)),
            Err(join) => Err(format!("storing the object failed: {join}")),
        }
    }

    /// The next names of a listing, at most `wanted` (capped at [`MAX_NAMES_PER_CALL`]), and
    /// whether the listing is over.
    async fn next_names(
        &self,
        names: &mut NameStream,
        wanted: u64,
    ) -> Result<(Vec<String>, bool), Failure> {
        let wanted = usize::try_from(wanted.min(MAX_NAMES_PER_CALL)).unwrap_or(0);
        while names.pending.len() < wanted && !names.done {
            let short = u32::try_from(wanted - names.pending.len()).unwrap_or(u32::MAX);
            self.tally.read();
            let page = self
                .store()?
                .list_objects(
                    &names.id,
                    &ObjectListing {
                        cursor: names.cursor.take(),
                        limit: short,
                        ..ObjectListing::default()
                    },
                )
                .await
                .map_err(failed)?;
            names
                .pending
                .extend(page.objects.into_iter().map(|o| o.key));
            names.done = page.cursor.is_none();
            names.cursor = page.cursor;
        }
        let taken = names.pending.drain(..wanted.min(names.pending.len()));
        let taken: Vec<String> = taken.collect();
        Ok((taken, names.done && names.pending.is_empty()))
    }

    async fn delete(&self, id: &BucketId, key: &str) -> Result<(), Failure> {
        checked_key(key)?;
        let events = self.events()?;
        self.tally.wrote();
        self.store()?
            .delete_object(id, key, events)
            .await
            .map(drop)
            .map_err(failed)
    }

    async fn delete_many(&self, id: &BucketId, keys: &[String]) -> Result<(), Failure> {
        if as_u64(keys.len()) > MAX_NAMES_PER_CALL {
            return Err(format!(
                "at most {MAX_NAMES_PER_CALL} objects per call, got {}",
                keys.len()
            ));
        }
        for key in keys {
            self.delete(id, key).await?;
        }
        Ok(())
    }

    /// Deletes every object of the bucket, a page at a time.
    async fn clear(&self, id: &BucketId) -> Result<(), Failure> {
        let mut names = NameStream::of(id.clone());
        loop {
            let (keys, done) = self.next_names(&mut names, MAX_NAMES_PER_CALL).await?;
            self.delete_many(id, &keys).await?;
            if done {
                return Ok(());
            }
        }
    }

    async fn info(&self, id: &BucketId, key: &str) -> Result<Option<ObjectInfo>, Failure> {
        checked_key(key)?;
        self.tally.read();
        self.store()?.head_object(id, key).await.map_err(failed)
    }

    /// Copies `from` to `to` through the store, streaming; the source is read as one object
    /// even if it is replaced meanwhile.
    async fn copy(&self, from: &ObjectAt, to: &ObjectAt) -> Result<(), Failure> {
        let (source, target) = (self.granted(&from.0)?, self.granted(&to.0)?);
        checked_key(&from.1)?;
        checked_key(&to.1)?;
        let _open = self.transfer()?;
        self.tally.read();
        let read = self
            .store()?
            .get_object(&source, &from.1, None)
            .await
            .map_err(failed)?
            .ok_or_else(|| missing(&source, &from.1))?;
        let tally = self.tally.clone();
        let body: ObjectBody = Box::pin(read.body.inspect_ok(move |chunk| {
            // Read and written.
            tally.moved(2 * chunk.len());
        }));
        self.tally.wrote();
        let object =
            self.backend()?
                .new_object(self.events()?, read.info.content_type, read.info.metadata);
        self.store()?
            .put_object(&target, &to.1, object, body)
            .await
            .map(drop)
            .map_err(failed)
    }

    async fn rename(&self, from: &ObjectAt, to: &ObjectAt) -> Result<(), Failure> {
        self.copy(from, to).await?;
        if from != to {
            self.delete(&self.granted(&from.0)?, &from.1).await?;
        }
        Ok(())
    }
}

/// A bucket (by the guest's name for it) and a key.
type ObjectAt = (String, String);

fn missing(id: &BucketId, key: &str) -> Failure {
    format!("object {key:?} does not exist in bucket {}", id.bucket)
}

impl Backend {
    fn new_object(
        &self,
        events: EventBounds,
        content_type: String,
        metadata: BTreeMap<String, String>,
    ) -> NewObject {
        NewObject {
            content_type,
            metadata,
            at_us: now_us(),
            max_bytes: self.limits.max_object_bytes,
            events,
        }
    }
}

impl NameStream {
    fn of(id: BucketId) -> Self {
        Self {
            id,
            pending: VecDeque::new(),
            cursor: None,
            done: false,
        }
    }
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// The interface's timestamps are seconds since the Unix epoch.
fn seconds(at_us: i64) -> u64 {
    u64::try_from(at_us.div_euclid(1_000_000)).unwrap_or(0)
}
