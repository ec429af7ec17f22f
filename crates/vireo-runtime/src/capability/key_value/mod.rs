//! Key-value stores for functions: `wasi:keyvalue` (store, atomics, batch at 0.2.0-draft2) and
//! Spin's `fermyon:spin/key-value@2.0.0`, both over the server's `KeyValueStore`. A version may
//! open only the stores its settings grant (`key_value_stores`); any other name is the
//! interface's access-denied error, decided before anything about the store is looked up, so
//! nothing tells another tenant's stores apart from missing ones. Keys and values are checked
//! against the server's limits here, before the store is asked.

mod spin;
mod wasi;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use vireo_core::{
    KeyValueLimits, KeyValueStore, KvCursor, KvStoreId, KvVersioned, Name, StoreError,
};
use wasmtime::component::{Linker, Resource};

use super::tally::{StoreUse, Tally};
use super::{Capability, Grants, Invocation, Package};
use crate::engine::{EngineSettings, HostServices, KeyValueObserver};
use crate::host::Host;
use crate::logs::LogCapture;

/// Keys one `list-keys` page holds, and the most any call may name at once.
const PAGE_KEYS: u32 = 1000;
/// Spin's `get-keys` answers every key at once: past this many it refuses rather than hold them.
const MAX_ALL_KEYS: usize = 100_000;

pub(crate) struct KeyValue {
    backend: Option<Arc<dyn KeyValueStore>>,
    limits: KeyValueLimits,
    observer: Option<KeyValueObserver>,
}

/// What a version may do with key-value stores, shared by its instances.
pub(crate) struct Granted {
    backend: Option<Arc<dyn KeyValueStore>>,
    limits: KeyValueLimits,
    observer: Option<KeyValueObserver>,
    namespace: Name,
    stores: BTreeSet<Name>,
}

/// An open store, as both interfaces' resource.
pub struct Bucket {
    id: KvStoreId,
}

/// A value read for compare-and-swap, with the version the swap must still find.
pub struct Cas {
    id: KvStoreId,
    key: String,
    seen: KvVersioned,
}

impl Host {
    /// The store a guest's handle (a wasi:keyvalue bucket or a Spin store) names; a handle not
    /// in the guest's table traps.
    fn bucket(&self, bucket: &Resource<Bucket>) -> wasmtime::Result<KvStoreId> {
        Ok(self.table.get(bucket)?.id.clone())
    }
}

/// Why an operation failed, before it is said in an interface's own error type.
#[derive(Debug)]
pub(crate) enum Refusal {
    NoSuchStore,
    AccessDenied,
    Other(String),
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::KvStoreNotFound { .. } => Refusal::NoSuchStore,
            other => Refusal::Other(other.to_string()),
        }
    }
}

impl Capability for KeyValue {
    const NAME: &str = "key-value";
    const PACKAGES: &[Package] = &[
        Package::new("wasi:keyvalue", "0.2"),
        Package::interfaces("fermyon:spin", "2.0", &["key-value"]),
    ];
    type Version = Arc<Granted>;
    type Instance = Active;

    fn new(_: &EngineSettings, services: &HostServices) -> Self {
        Self {
            backend: services.key_value.clone(),
            limits: services.key_value_limits,
            observer: services.key_value_observer.clone(),
        }
    }

    fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        wasi::link(linker)?;
        spin::link(linker)
    }

    fn load(&self, grants: &Grants) -> Self::Version {
        Arc::new(Granted {
            backend: self.backend.clone(),
            limits: self.limits,
            observer: self.observer.clone(),
            namespace: grants.namespace.clone(),
            stores: grants.key_value_stores.clone(),
        })
    }

    fn instance(granted: &Self::Version, _: &LogCapture) -> Self::Instance {
        Active {
            granted: granted.clone(),
            tally: Arc::default(),
        }
    }

    fn arm(active: &mut Self::Instance, invocation: &Invocation) {
        active.tally = invocation.key_value.clone();
    }
}

/// An instance's grant, and the tally of the invocation it serves.
#[derive(Clone)]
pub(crate) struct Active {
    granted: Arc<Granted>,
    tally: Arc<Tally>,
}

/// What an invocation did with key-value stores: reads (get, exists, listings, swap reads),
/// writes (set, delete, increment, swap) and the bytes of the keys and values they moved.
pub type KeyValueUse = StoreUse;

/// Counts one operation and the bytes it sent.
fn count(tally: &Tally, op: Op, bytes: usize) {
    match op {
        Op::Read => tally.read(),
        Op::Write => tally.wrote(),
    }
    tally.moved(bytes);
}

#[derive(Clone, Copy)]
enum Op {
    Read,
    Write,
}

impl Active {
    fn backend(&self) -> Result<&dyn KeyValueStore, Refusal> {
        self.granted
            .backend
            .as_deref()
            .ok_or_else(|| Refusal::Other("this server has no key-value store".to_string()))
    }

    /// Opens `label` if the version was granted it and it exists.
    async fn open(&self, label: &str) -> Result<Bucket, Refusal> {
        let granted = Name::parse("key-value store", label)
            .ok()
            .filter(|name| self.granted.stores.contains(name));
        let Some(store) = granted else {
            return Err(Refusal::AccessDenied);
        };
        let namespace = &self.granted.namespace;
        // `default` exists in every namespace: no need to ask the store.
        let id = KvStoreId::new(namespace.clone(), store);
        if !id.is_default() && !self.backend()?.store_exists(&id).await? {
            return Err(Refusal::NoSuchStore);
        }
        Ok(Bucket { id })
    }

    /// Runs one store operation, counting it for the invocation (a read or a write, with the
    /// bytes of keys and values it sent) and telling the observer how long the store took.
    async fn timed<T>(
        &self,
        store: &KvStoreId,
        (name, op, sent): (&'static str, Op, usize),
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, Refusal> {
        let started = Instant::now();
        let result = call.await;
        count(&self.tally, op, sent);
        if let Some(observe) = &self.granted.observer {
            observe(store, name, started.elapsed());
        }
        Ok(result?)
    }

    /// Bytes a read brought back.
    fn received(&self, bytes: usize) {
        self.tally.moved(bytes);
    }

    fn check_key(&self, key: &str) -> Result<(), Refusal> {
        self.granted
            .limits
            .check_key(key)
            .map_err(|e| Refusal::Other(e.to_string()))
    }

    fn check_value(&self, value: &[u8]) -> Result<(), Refusal> {
        self.granted
            .limits
            .check_value(value)
            .map_err(|e| Refusal::Other(e.to_string()))
    }

    fn check_count(count: usize) -> Result<(), Refusal> {
        if count > PAGE_KEYS as usize {
            return Err(Refusal::Other(format!(
                "at most {PAGE_KEYS} keys per call, got {count}"
            )));
        }
        Ok(())
    }

    async fn get(&self, bucket: &KvStoreId, key: &str) -> Result<Option<Vec<u8>>, Refusal> {
        self.check_key(key)?;
        let reading = self.backend()?.get(bucket, key);
        let value = self
            .timed(bucket, ("get", Op::Read, key.len()), reading)
            .await?;
        self.received(value.as_ref().map_or(0, Vec::len));
        Ok(value)
    }

    async fn set(&self, bucket: &KvStoreId, key: &str, value: &[u8]) -> Result<(), Refusal> {
        self.check_key(key)?;
        self.check_value(value)?;
        let writing = self.backend()?.set(bucket, key, value);
        let sent = key.len() + value.len();
        self.timed(bucket, ("set", Op::Write, sent), writing).await
    }

    async fn delete(&self, bucket: &KvStoreId, key: &str) -> Result<(), Refusal> {
        self.check_key(key)?;
        let deleting = self.backend()?.delete(bucket, key);
        self.timed(bucket, ("delete", Op::Write, key.len()), deleting)
            .await
            .map(drop)
    }

    async fn exists(&self, bucket: &KvStoreId, key: &str) -> Result<bool, Refusal> {
        self.check_key(key)?;
        let asking = self.backend()?.exists(bucket, key);
        self.timed(bucket, ("exists", Op::Read, key.len()), asking)
            .await
    }

    /// A page of keys after `cursor`, and the cursor of the next page.
    async fn list_keys(
        &self,
        bucket: &KvStoreId,
        cursor: Option<&str>,
    ) -> Result<(Vec<String>, Option<String>), Refusal> {
        let cursor = cursor
            .map(KvCursor::parse)
            .transpose()
            .map_err(|e| Refusal::Other(e.to_string()))?;
        let listing = self
            .backend()?
            .list_keys(bucket, "", cursor.as_ref(), PAGE_KEYS);
        let page = self
            .timed(bucket, ("list_keys", Op::Read, 0), listing)
            .await?;
        self.received(page.keys.iter().map(String::len).sum());
        Ok((page.keys, page.cursor.map(|next| next.to_string())))
    }

    /// Every key, for Spin's `get-keys`, refused past [`MAX_ALL_KEYS`].
    async fn all_keys(&self, bucket: &KvStoreId) -> Result<Vec<String>, Refusal> {
        let mut keys = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) = self.list_keys(bucket, cursor.as_deref()).await?;
            keys.extend(page);
            if keys.len() > MAX_ALL_KEYS {
                return Err(Refusal::Other(format!(
                    "the store holds more than {MAX_ALL_KEYS} keys: list them in pages"
                )));
            }
            match next {
                Some(next) => cursor = Some(next),
                None => return Ok(keys),
            }
        }
    }

    async fn increment(&self, bucket: &KvStoreId, key: &str, delta: i64) -> Result<i64, Refusal> {
        self.check_key(key)?;
        let adding = self.backend()?.increment(bucket, key, delta);
        // The key and the eight bytes of the counter.
        self.timed(bucket, ("increment", Op::Write, key.len() + 8), adding)
            .await
    }

    async fn read_for_swap(&self, bucket: &KvStoreId, key: &str) -> Result<Cas, Refusal> {
        self.check_key(key)?;
        let reading = self.backend()?.get_versioned(bucket, key);
        let seen = self
            .timed(bucket, ("cas_read", Op::Read, key.len()), reading)
            .await?;
        self.received(seen.value.as_ref().map_or(0, Vec::len));
        Ok(Cas {
            id: bucket.clone(),
            key: key.to_string(),
            seen,
        })
    }

    /// Writes `value` if the key is still as `cas` saw it; otherwise the key as it is now.
    async fn swap(&self, cas: &Cas, value: &[u8]) -> Result<Result<(), Cas>, Refusal> {
        self.check_value(value)?;
        let swapping = self
            .backend()?
            .swap(&cas.id, &cas.key, cas.seen.version, value);
        let sent = cas.key.len() + value.len();
        let swapped = self
            .timed(&cas.id, ("swap", Op::Write, sent), swapping)
            .await?;
        if swapped {
            return Ok(Ok(()));
        }
        Ok(Err(self.read_for_swap(&cas.id, &cas.key).await?))
    }

    async fn get_many(
        &self,
        bucket: &KvStoreId,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, Refusal> {
        Self::check_count(keys.len())?;
        for key in &keys {
            self.check_key(key)?;
        }
        let reading = self.backend()?.get_many(bucket, &keys);
        let sent = keys.iter().map(String::len).sum();
        let values = self
            .timed(bucket, ("get_many", Op::Read, sent), reading)
            .await?;
        self.received(values.iter().flatten().map(Vec::len).sum());
        Ok(keys.into_iter().zip(values).collect())
    }

    async fn set_many(
        &self,
        bucket: &KvStoreId,
        entries: Vec<(String, Vec<u8>)>,
    ) -> Result<(), Refusal> {
        Self::check_count(entries.len())?;
        for (key, value) in &entries {
            self.check_key(key)?;
            self.check_value(value)?;
        }
        let writing = self.backend()?.set_many(bucket, &entries);
        let sent = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
        self.timed(bucket, ("set_many", Op::Write, sent), writing)
            .await
    }

    async fn delete_many(&self, bucket: &KvStoreId, keys: Vec<String>) -> Result<(), Refusal> {
        Self::check_count(keys.len())?;
        for key in &keys {
            self.check_key(key)?;
        }
        let deleting = self.backend()?.delete_many(bucket, &keys);
        let sent = keys.iter().map(String::len).sum();
        self.timed(bucket, ("delete_many", Op::Write, sent), deleting)
            .await
    }
}
