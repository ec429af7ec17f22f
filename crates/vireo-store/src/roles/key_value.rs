//! The [`KeyValueStore`]: a row per store with its totals, a row per key.
//!
//! Every write runs in one transaction that first takes its store's row (bumping the store's
//! revision, which stamps what it writes): writers of one store take turns on it on any
//! backend, so an increment or a swap reads what the last write left and no update is lost.
//! A namespace with a `max_kv_bytes` quota has its writers wait for each other across stores
//! as well (`lock_namespace`), so the bytes they check are the bytes they add to. The store row
//! of `default` is created by its first write.

use std::collections::HashMap;

use vireo_core::{
    KeyValueStore, KvCursor, KvKeyPage, KvStoreId, KvStoreInfo, KvVersion, KvVersioned, Name,
    StoreError, decode_counter, encode_counter,
};

use super::{Dialect, SqlStore, Tx, check_namespace, commit};
use crate::codec;
use crate::plan::key_value::{self as plan, Changes};
use crate::rows::{self, column};
use crate::sql::{Sql, query};

const STORE_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM namespaces WHERE name = $1),
        EXISTS (SELECT 1 FROM kv_stores WHERE namespace = $1 AND name = $2)";
const CREATE_STORE: &str = "INSERT INTO kv_stores
        (namespace, name, created_at_us, key_count, total_bytes, revision)
    VALUES ($1, $2, $3, 0, 0, 0) ON CONFLICT DO NOTHING";
/// `default`'s row, as old as its namespace; the `WHERE` also keeps SQLite from reading
/// `ON CONFLICT` as a join's `ON`.
const CREATE_DEFAULT_STORE: &str = "INSERT INTO kv_stores
        (namespace, name, created_at_us, key_count, total_bytes, revision)
    SELECT name, $2, created_at_us, 0, 0, 0 FROM namespaces WHERE name = $1
    ON CONFLICT DO NOTHING";
const LIST_STORES: &str = "SELECT name, key_count, total_bytes, created_at_us FROM kv_stores
    WHERE namespace = $1 ORDER BY name";
const NAMESPACE_CREATED: &str = "SELECT created_at_us FROM namespaces WHERE name = $1";
const DELETE_STORE: &str = "DELETE FROM kv_stores WHERE namespace = $1 AND name = $2";
const NAMESPACE_QUOTAS: &str = "SELECT quotas FROM namespaces WHERE name = $1";
/// Takes the store's row until commit; the write stamps its entries with the new revision.
const LOCK_STORE: &str = "UPDATE kv_stores SET revision = revision + 1
    WHERE namespace = $1 AND name = $2 RETURNING revision";
const NAMESPACE_BYTES: &str =
    "SELECT CAST(COALESCE(SUM(total_bytes), 0) AS BIGINT) FROM kv_stores WHERE namespace = $1";
const ADD_TO_TOTALS: &str = "UPDATE kv_stores
    SET key_count = key_count + $3, total_bytes = total_bytes + $4
    WHERE namespace = $1 AND name = $2";
const GET: &str = "SELECT value, revision FROM kv_entries
    WHERE namespace = $1 AND store = $2 AND key = $3";
const KEY_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM kv_entries
    WHERE namespace = $1 AND store = $2 AND key = $3)";
/// Followed by ` IN ` and the keys.
const GET_MANY: &str =
    "SELECT key, value FROM kv_entries WHERE namespace = $1 AND store = $2 AND key";
/// Followed by ` IN ` and the keys.
const VALUE_SIZES: &str = "SELECT key, CAST(length(value) AS BIGINT) FROM kv_entries
    WHERE namespace = $1 AND store = $2 AND key";
const PUT: &str = "INSERT INTO kv_entries (namespace, store, key, value, revision)
    VALUES ($1, $2, $3, $4, $5)
    ON CONFLICT (namespace, store, key) DO UPDATE SET value = excluded.value,
        revision = excluded.revision";
const DELETE: &str = "DELETE FROM kv_entries WHERE namespace = $1 AND store = $2 AND key = $3";
/// Followed by the bounds of the page.
const LIST_KEYS: &str = "SELECT key FROM kv_entries WHERE namespace = $1 AND store = $2";

/// A write in progress: its transaction, holding the store's row.
struct Writing<D: Dialect> {
    tx: Tx<D>,
    /// What this write stamps on the entries it writes.
    revision: i64,
    max_kv_bytes: Option<u64>,
}

#[async_trait::async_trait]
impl<D: Dialect> KeyValueStore for SqlStore<D> {
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
        let mut writing = self.begin_write(store).await?;
        write(&mut writing, store, &Changes::from([(key, Some(value))])).await?;
        commit::<D>(writing.tx).await
    }

    async fn delete(&self, store: &KvStoreId, key: &str) -> Result<bool, StoreError> {
        let mut writing = self.begin_write(store).await?;
        let stored = write(&mut writing, store, &Changes::from([(key, None)])).await?;
        commit::<D>(writing.tx).await?;
        Ok(stored.contains_key(key))
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
        let mut writing = self.begin_write(store).await?;
        let current = stored_entry(&mut *writing.tx, store, key).await?;
        let counter = match current {
            None => 0,
            Some((value, _)) => {
                decode_counter(&value).ok_or_else(|| StoreError::KvNotACounter {
                    namespace: store.namespace.clone(),
                    store: store.store.clone(),
                    key: key.to_string(),
                })?
            }
        };
        let counter = counter
            .checked_add(delta)
            .ok_or_else(|| StoreError::KvCounterOverflow {
                namespace: store.namespace.clone(),
                store: store.store.clone(),
                key: key.to_string(),
            })?;
        let value = encode_counter(counter);
        write(
            &mut writing,
            store,
            &Changes::from([(key, Some(&value[..]))]),
        )
        .await?;
        commit::<D>(writing.tx).await?;
        Ok(counter)
    }

    async fn get_versioned(&self, store: &KvStoreId, key: &str) -> Result<KvVersioned, StoreError> {
        let mut conn = self.reader().await?;
        match stored_entry(&mut *conn, store, key).await? {
            Some((value, revision)) => Ok(KvVersioned {
                value: Some(value),
                version: KvVersion(revision),
            }),
            None => {
                check_store(&mut *conn, store).await?;
                Ok(KvVersioned {
                    value: None,
                    version: KvVersion::ABSENT,
                })
            }
        }
    }

    async fn swap(
        &self,
        store: &KvStoreId,
        key: &str,
        expected: KvVersion,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        let mut writing = self.begin_write(store).await?;
        let current = stored_entry(&mut *writing.tx, store, key)
            .await?
            .map_or(KvVersion::ABSENT, |(_, revision)| KvVersion(revision));
        if current != expected {
            // Dropped, the transaction rolls back: nothing written.
            return Ok(false);
        }
        write(&mut writing, store, &Changes::from([(key, Some(value))])).await?;
        commit::<D>(writing.tx).await?;
        Ok(true)
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
        let changes: Changes<'_> = entries
            .iter()
            .map(|(key, value)| (key.as_str(), Some(value.as_slice())))
            .collect();
        let mut writing = self.begin_write(store).await?;
        write(&mut writing, store, &changes).await?;
        commit::<D>(writing.tx).await
    }

    async fn delete_many(&self, store: &KvStoreId, keys: &[String]) -> Result<(), StoreError> {
        let changes: Changes<'_> = keys.iter().map(|key| (key.as_str(), None)).collect();
        let mut writing = self.begin_write(store).await?;
        write(&mut writing, store, &changes).await?;
        commit::<D>(writing.tx).await
    }
}

impl<D: Dialect> SqlStore<D> {
    /// Starts a write to `store`: reads the namespace's quota (and waits for the namespace's
    /// other key-value writers if it has one), then takes the store's row, creating
    /// `default`'s.
    async fn begin_write(&self, store: &KvStoreId) -> Result<Writing<D>, StoreError> {
        let mut tx = self.write().await?;
        let quotas: Option<Option<String>> = query(NAMESPACE_QUOTAS)
            .bind(store.namespace.as_str())
            .optional_scalar(&mut *tx, "reading namespace quotas")
            .await?;
        let Some(quotas) = quotas else {
            return Err(StoreError::NamespaceNotFound(store.namespace.clone()));
        };
        let max_kv_bytes = codec::quotas(quotas.as_deref())?.max_kv_bytes;
        if max_kv_bytes.is_some() {
            D::lock_namespace(&mut tx, &store.namespace).await?;
        }
        let revision = match lock_store(&mut *tx, store).await? {
            Some(revision) => revision,
            None if store.is_default() => {
                query(CREATE_DEFAULT_STORE)
                    .bind(store.namespace.as_str())
                    .bind(store.store.as_str())
                    .execute(&mut *tx, "creating the default key-value store")
                    .await?;
                lock_store(&mut *tx, store).await?.ok_or_else(|| {
                    StoreError::permanent(
                        "creating the default key-value store",
                        "its row is missing after the insert",
                    )
                })?
            }
            None => {
                return Err(StoreError::KvStoreNotFound {
                    namespace: store.namespace.clone(),
                    store: store.store.clone(),
                });
            }
        };
        Ok(Writing {
            tx,
            revision,
            max_kv_bytes,
        })
    }
}

/// Writes `changes` into the store `writing` holds, adding them to its totals, unless the
/// namespace's quota refuses the bytes they add (then nothing is written). Returns the sizes of
/// the values the changed keys had.
async fn write<D: Dialect>(
    writing: &mut Writing<D>,
    store: &KvStoreId,
    changes: &Changes<'_>,
) -> Result<HashMap<String, i64>, StoreError> {
    let (namespace, name) = (store.namespace.as_str(), store.store.as_str());
    let tx = &mut *writing.tx;
    let mut sizes = query(VALUE_SIZES).bind(namespace).bind(name);
    sizes.push(" IN ").push_list(changes.keys().copied());
    let stored = sizes
        .fetch_all(&mut *tx, "reading value sizes")
        .await?
        .iter()
        .map(|row| Ok((column::<String>(row, 0)?, column::<i64>(row, 1)?)))
        .collect::<Result<HashMap<_, _>, StoreError>>()?;
    let delta = plan::kv_delta(changes, &stored);
    if let Some(limit) = writing.max_kv_bytes {
        let held: i64 = query(NAMESPACE_BYTES)
            .bind(namespace)
            .scalar(&mut *tx, "counting the namespace's key-value bytes")
            .await?;
        plan::admit_kv_bytes(&store.namespace, held, delta.bytes, limit)?;
    }
    for (key, change) in changes {
        match change {
            Some(value) => {
                query(PUT)
                    .bind(namespace)
                    .bind(name)
                    .bind(*key)
                    .bind(*value)
                    .bind(writing.revision)
                    .execute(&mut *tx, "storing key")
                    .await?
            }
            None => {
                query(DELETE)
                    .bind(namespace)
                    .bind(name)
                    .bind(*key)
                    .execute(&mut *tx, "deleting key")
                    .await?
            }
        };
    }
    query(ADD_TO_TOTALS)
        .bind(namespace)
        .bind(name)
        .bind(delta.keys)
        .bind(delta.bytes)
        .execute(&mut *tx, "counting the store's keys")
        .await?;
    Ok(stored)
}

/// Takes the store's row, bumping its revision; `None` when the store has no row.
async fn lock_store(conn: &mut impl Sql, store: &KvStoreId) -> Result<Option<i64>, StoreError> {
    query(LOCK_STORE)
        .bind(store.namespace.as_str())
        .bind(store.store.as_str())
        .optional_scalar(conn, "taking the key-value store")
        .await
}

/// The key's value and the revision that wrote it, if it is stored.
async fn stored_entry(
    conn: &mut impl Sql,
    store: &KvStoreId,
    key: &str,
) -> Result<Option<(Vec<u8>, i64)>, StoreError> {
    let row = query(GET)
        .bind(store.namespace.as_str())
        .bind(store.store.as_str())
        .bind(key)
        .fetch_optional(conn, "reading key")
        .await?;
    row.map(|row| Ok((column(&row, "value")?, column(&row, "revision")?)))
        .transpose()
}

/// `NamespaceNotFound` or `KvStoreNotFound` unless the store exists.
async fn check_store(conn: &mut impl Sql, store: &KvStoreId) -> Result<(), StoreError> {
    let row = query(STORE_EXISTS)
        .bind(store.namespace.as_str())
        .bind(store.store.as_str())
        .fetch_one(conn, "checking key-value store")
        .await?;
    plan::kv_store_found(store, column(&row, 0)?, column(&row, 1)?)
}
