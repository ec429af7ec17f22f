//! The [`KeyValueStore`]: a row per store with its totals, a row per key.
//!
//! Reads of a key go to the [`reader`], writes to the [`writer`], which commits them in
//! batches, unless the backend does them another way ([`KvDialect`]). A batch takes its store's
//! row (bumping the store's revision, which stamps what it writes), so batches of one store take turns on it on any backend and node, and an increment
//! or a swap reads what the last write left: no update is lost. A namespace with a
//! `max_kv_bytes` quota has its batches wait for each other across stores as well
//! (`lock_namespace`), so the bytes they check are the bytes they add to. The store row of
//! `default` is created by its first write.

mod reader;
mod task_queue;
pub(crate) mod writer;

pub(crate) use reader::Entry;

/// Where a store handle's key-value reads and writes queue to be done in batches.
#[derive(Debug, Default)]
pub(crate) struct KvQueues {
    reader: reader::KvReader,
    writer: writer::KvWriter,
}

use std::collections::HashMap;
use std::sync::Arc;

use vireo_core::{
    KeyValueStore, KvCursor, KvKeyPage, KvStoreId, KvStoreInfo, KvVersion, KvVersioned, Name,
    StoreError,
};

use super::{Dialect, SqlStore, check_namespace, commit};
use crate::plan::key_value::{self as plan, KvWrite, KvWritten};
use crate::rows::{self, column};
use crate::sql::{Sql, Statement, query};

const STORE_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM namespaces WHERE name = $1),
        EXISTS (SELECT 1 FROM kv_stores WHERE namespace = $1 AND name = $2)";
const CREATE_STORE: &str = "INSERT INTO kv_stores
        (namespace, name, created_at_us, key_count, total_bytes, revision)
    VALUES ($1, $2, $3, 0, 0, 0) ON CONFLICT DO NOTHING";
const LIST_STORES: &str = "SELECT name, key_count, total_bytes, created_at_us FROM kv_stores
    WHERE namespace = $1 ORDER BY name";
const NAMESPACE_CREATED: &str = "SELECT created_at_us FROM namespaces WHERE name = $1";
const DELETE_STORE: &str = "DELETE FROM kv_stores WHERE namespace = $1 AND name = $2";
/// One key's value and the revision that wrote it.
pub(crate) const READ_ENTRY: &str = "SELECT value, revision FROM kv_entries
    WHERE namespace = $1 AND store = $2 AND key = $3";
const KEY_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM kv_entries
    WHERE namespace = $1 AND store = $2 AND key = $3)";
/// Followed by ` IN ` and the keys.
const GET_MANY: &str =
    "SELECT key, value FROM kv_entries WHERE namespace = $1 AND store = $2 AND key";
/// Followed by the bounds of the page.
const LIST_KEYS: &str = "SELECT key FROM kv_entries WHERE namespace = $1 AND store = $2";

/// How a backend reads and writes single keys: by default through the batching [`reader`] and
/// [`writer`] tasks of its store handle.
#[async_trait::async_trait]
pub(crate) trait KvDialect: Dialect {
    /// The key's value and the revision that wrote it; `None` when the key is not stored, an
    /// error when its store does not exist.
    async fn kv_get(
        &self,
        queues: &KvQueues,
        store: &KvStoreId,
        key: &str,
    ) -> Result<Entry, StoreError> {
        let entry = queues.reader.read(self, store, key).await?;
        if entry.is_none() {
            check_store(&mut *self.reader().await?, store).await?;
        }
        Ok(entry)
    }

    async fn kv_write(
        &self,
        queues: &KvQueues,
        store: &KvStoreId,
        write: KvWrite,
    ) -> Result<KvWritten, StoreError> {
        queues.writer.submit(self, store, write).await
    }
}

#[async_trait::async_trait]
impl<D: KvDialect> KeyValueStore for SqlStore<D> {
    async fn create_store(
        &self,
        namespace: &Name,
        name: &Name,
        at_us: i64,
    ) -> Result<KvStoreInfo, StoreError> {
        let mut tx = self.write().await?;
        check_namespace(&mut *tx, namespace).await?;
        let exists = || StoreError::KvStoreExists {
            namespace: namespace.clone(),
            store: name.clone(),
        };
        if *name == Name::default_kv_store() {
            return Err(exists());
        }
        let inserted = query(CREATE_STORE)
            .bind(namespace.as_str())
            .bind(name.as_str())
            .bind(at_us)
            .execute(&mut *tx, "creating key-value store")
            .await?;
        if inserted == 0 {
            return Err(exists());
        }
        commit::<D>(tx).await?;
        Ok(KvStoreInfo {
            name: name.clone(),
            keys: 0,
            bytes: 0,
            created_at_us: at_us,
        })
    }

    async fn list_stores(&self, namespace: &Name) -> Result<Vec<KvStoreInfo>, StoreError> {
        let mut tx = self.read().await?;
        let created: i64 = query(NAMESPACE_CREATED)
            .bind(namespace.as_str())
            .optional_scalar(&mut *tx, "reading namespace")
            .await?
            .ok_or_else(|| StoreError::NamespaceNotFound(namespace.clone()))?;
        let rows = query(LIST_STORES)
            .bind(namespace.as_str())
            .fetch_all(&mut *tx, "listing key-value stores")
            .await?;
        let mut stores = rows
            .iter()
            .map(rows::kv_store_info)
            .collect::<Result<Vec<_>, _>>()?;
        let default = Name::default_kv_store();
        if let Err(at) = stores.binary_search_by(|store| store.name.cmp(&default)) {
            stores.insert(
                at,
                KvStoreInfo {
                    name: default,
                    keys: 0,
                    bytes: 0,
                    created_at_us: created,
                },
            );
        }
        Ok(stores)
    }

    async fn store_exists(&self, store: &KvStoreId) -> Result<bool, StoreError> {
        let mut conn = self.reader().await?;
        match check_store(&mut *conn, store).await {
            Ok(()) => Ok(true),
            Err(StoreError::NamespaceNotFound(_) | StoreError::KvStoreNotFound { .. }) => Ok(false),
            Err(other) => Err(other),
        }
    }

    async fn delete_store(&self, namespace: &Name, name: &Name) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_namespace(&mut *tx, namespace).await?;
        if *name == Name::default_kv_store() {
            return Err(StoreError::KvDefaultStore {
                namespace: namespace.clone(),
            });
        }
        let deleted = query(DELETE_STORE)
            .bind(namespace.as_str())
            .bind(name.as_str())
            .execute(&mut *tx, "deleting key-value store")
            .await?;
        if deleted == 0 {
            return Err(StoreError::KvStoreNotFound {
                namespace: namespace.clone(),
                store: name.clone(),
            });
        }
        commit::<D>(tx).await
    }

    async fn get(&self, store: &KvStoreId, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_versioned(store, key).await?.value)
    }

    async fn set(&self, store: &KvStoreId, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let put = KvWrite::Put(vec![(key.to_string(), value.to_vec())]);
        self.write_kv(store, put).await.map(drop)
    }

    async fn delete(&self, store: &KvStoreId, key: &str) -> Result<bool, StoreError> {
        match self
            .write_kv(store, KvWrite::Delete(vec![key.to_string()]))
            .await?
        {
            KvWritten::Done { existed } => Ok(existed),
            other => Err(unexpected(other)),
        }
    }

    async fn exists(&self, store: &KvStoreId, key: &str) -> Result<bool, StoreError> {
        let mut conn = self.reader().await?;
        let exists: bool = query(KEY_EXISTS)
            .bind(store.namespace.as_str())
            .bind(store.store.as_str())
            .bind(key)
            .scalar(&mut *conn, "reading key")
            .await?;
        if !exists {
            check_store(&mut *conn, store).await?;
        }
        Ok(exists)
    }

    async fn list_keys(
        &self,
        store: &KvStoreId,
        prefix: &str,
        cursor: Option<&KvCursor>,
        limit: u32,
    ) -> Result<KvKeyPage, StoreError> {
        let limit = limit.max(1);
        let mut tx = self.read().await?;
        check_store(&mut *tx, store).await?;
        let mut sql = query(LIST_KEYS)
            .bind(store.namespace.as_str())
            .bind(store.store.as_str());
        if !prefix.is_empty() {
            sql.push(" AND key >= ").push_bind(prefix);
        }
        if let Some(end) = plan::prefix_end(prefix) {
            sql.push(" AND key < ").push_bind(end);
        }
        if let Some(cursor) = cursor {
            sql.push(" AND key > ").push_bind(cursor.last_key());
        }
        // One more than the page, to know whether another follows.
        sql.push(" ORDER BY key LIMIT ")
            .push_bind(limit.saturating_add(1));
        let rows = sql.fetch_all(&mut *tx, "listing keys").await?;
        let mut keys = rows
            .iter()
            .map(|row| column::<String>(row, 0))
            .collect::<Result<Vec<_>, _>>()?;
        let more = keys.len() > limit as usize;
        keys.truncate(limit as usize);
        let cursor = more.then(|| KvCursor::after(keys.last().map_or("", String::as_str)));
        Ok(KvKeyPage { keys, cursor })
    }

    async fn increment(&self, store: &KvStoreId, key: &str, delta: i64) -> Result<i64, StoreError> {
        let increment = KvWrite::Increment {
            key: key.to_string(),
            delta,
        };
        match self.write_kv(store, increment).await? {
            KvWritten::Counter(counter) => Ok(counter),
            other => Err(unexpected(other)),
        }
    }

    async fn get_versioned(&self, store: &KvStoreId, key: &str) -> Result<KvVersioned, StoreError> {
        let read = self.backend.kv_get(&self.key_value, store, key).await?;
        Ok(match read {
            Some((value, revision)) => KvVersioned {
                value: Some(value),
                version: KvVersion(revision),
            },
            None => KvVersioned {
                value: None,
                version: KvVersion::ABSENT,
            },
        })
    }

    async fn swap(
        &self,
        store: &KvStoreId,
        key: &str,
        expected: KvVersion,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let swap = KvWrite::Swap {
            key: key.to_string(),
            expected,
            value: value.to_vec(),
        };
        match self.write_kv(store, swap).await? {
            KvWritten::Swapped(swapped) => Ok(swapped),
            other => Err(unexpected(other)),
        }
    }

    async fn get_many(
        &self,
        store: &KvStoreId,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut tx = self.read().await?;
        check_store(&mut *tx, store).await?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = query(GET_MANY)
            .bind(store.namespace.as_str())
            .bind(store.store.as_str());
        sql.push(" IN ").push_list(keys.iter());
        let rows = sql.fetch_all(&mut *tx, "reading keys").await?;
        let values = rows
            .iter()
            .map(|row| Ok((column::<String>(row, 0)?, column::<Vec<u8>>(row, 1)?)))
            .collect::<Result<HashMap<_, _>, StoreError>>()?;
        // A key asked twice gets its value twice.
        Ok(keys.iter().map(|key| values.get(key).cloned()).collect())
    }

    async fn set_many(
        &self,
        store: &KvStoreId,
        entries: &[(String, Vec<u8>)],
    ) -> Result<(), StoreError> {
        self.write_kv(store, KvWrite::Put(entries.to_vec()))
            .await
            .map(drop)
    }

    async fn delete_many(&self, store: &KvStoreId, keys: &[String]) -> Result<(), StoreError> {
        self.write_kv(store, KvWrite::Delete(keys.to_vec()))
            .await
            .map(drop)
    }
}

impl<D: KvDialect> SqlStore<D> {
    async fn write_kv(&self, store: &KvStoreId, write: KvWrite) -> Result<KvWritten, StoreError> {
        self.backend.kv_write(&self.key_value, store, write).await
    }
}

/// The failure of a batch's statement or transaction, told to each caller it held.
fn batch_failure(context: &'static str, error: &Arc<StoreError>) -> StoreError {
    StoreError::Unavailable {
        context: context.into(),
        retryable: !matches!(
            error.class(),
            vireo_core::ErrorClass::Unavailable { retryable: false }
        ),
        source: Box::new(SharedError(error.clone())),
    }
}

/// One error told to every caller of a failed batch.
#[derive(Debug)]
struct SharedError(Arc<StoreError>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

/// An answer of the writer that does not fit the write asked.
fn unexpected(written: KvWritten) -> StoreError {
    StoreError::permanent(
        "writing to a key-value store",
        format!("the writer answered {written:?}"),
    )
}

/// Whether the store's namespace and the store exist: one row of two booleans.
pub(crate) fn store_check(store: &KvStoreId) -> Statement<'_> {
    query(STORE_EXISTS)
        .bind(store.namespace.as_str())
        .bind(store.store.as_str())
}

/// `NamespaceNotFound` or `KvStoreNotFound` unless the store exists.
async fn check_store(conn: &mut impl Sql, store: &KvStoreId) -> Result<(), StoreError> {
    let row = store_check(store)
        .fetch_one(conn, "checking key-value store")
        .await?;
    plan::kv_store_found(store, column(&row, 0)?, column(&row, 1)?)
}
