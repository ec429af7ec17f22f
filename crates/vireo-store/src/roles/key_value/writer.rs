//! Group commit of key-value writes. Every write goes to one writer task per store handle;
//! while it commits a batch, the writes that arrive queue, and the next batch takes them all in
//! one transaction. A write costs the database a share of a transaction instead of one of its
//! own, which is what lets many concurrent functions write without waiting on each other.
//!
//! In a batch, a store's row is taken once (bumping its revision, which stamps every key the
//! batch writes), the stored sizes of every key the batch names are read in one statement, the
//! writes are applied in the order they arrived by [`StoreBatch`], and the rows are written in
//! a few statements. A write that fails on its own (not a counter, over the quota) changes
//! nothing and fails alone; a transaction that fails fails every write it held. Namespaces,
//! then their stores, are taken in name order, so batches on several nodes never deadlock.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::sync::mpsc;
use vireo_core::{KvStoreId, StoreError};

use super::task_queue::{Asked, TaskQueue};
use super::{GET_MANY, batch_failure};
use crate::codec;
use crate::plan::key_value::{self as plan, KvQuota, KvWrite, KvWritten, StoreBatch, StoredKey};
use crate::roles::{Dialect, Tx, commit};
use crate::rows::column;
use crate::sql::{Sql, query};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 256;
/// Keys per statement, far below every backend's limit on parameters.
const KEYS_PER_STATEMENT: usize = 500;

const NAMESPACE_QUOTAS: &str = "SELECT quotas FROM namespaces WHERE name = $1";
/// `default`'s row, as old as its namespace; the `WHERE` also keeps SQLite from reading
/// `ON CONFLICT` as a join's `ON`.
const CREATE_DEFAULT_STORE: &str = "INSERT INTO kv_stores
        (namespace, name, created_at_us, key_count, total_bytes, revision)
    SELECT name, $2, created_at_us, 0, 0, 0 FROM namespaces WHERE name = $1
    ON CONFLICT DO NOTHING";
/// Takes the store's row until commit; the batch stamps its entries with the new revision.
const LOCK_STORE: &str = "UPDATE kv_stores SET revision = revision + 1
    WHERE namespace = $1 AND name = $2 RETURNING revision";
const NAMESPACE_BYTES: &str =
    "SELECT CAST(COALESCE(SUM(total_bytes), 0) AS BIGINT) FROM kv_stores WHERE namespace = $1";
/// Followed by ` IN ` and the keys.
const STORED_KEYS: &str = "SELECT key, CAST(length(value) AS BIGINT), revision FROM kv_entries
    WHERE namespace = $1 AND store = $2 AND key";
/// Followed by one `(…)` of five values per key, then [`PUT_CONFLICT`].
const PUT: &str = "INSERT INTO kv_entries (namespace, store, key, value, revision) VALUES ";
const PUT_CONFLICT: &str = " ON CONFLICT (namespace, store, key) DO UPDATE
    SET value = excluded.value, revision = excluded.revision";
/// Followed by ` IN ` and the keys.
const DELETE: &str = "DELETE FROM kv_entries WHERE namespace = $1 AND store = $2 AND key";
const ADD_TO_TOTALS: &str = "UPDATE kv_stores
    SET key_count = key_count + $3, total_bytes = total_bytes + $4
    WHERE namespace = $1 AND name = $2";

type Answer = Result<KvWritten, StoreError>;

/// A write handed to the writer, and where its answer goes.
type Pending = Asked<KvWrite, KvWritten>;

/// The queue to a store handle's writer task, started by the first write.
#[derive(Debug, Default)]
pub(crate) struct KvWriter(TaskQueue<KvWrite, KvWritten>);

impl KvWriter {
    /// Queues `write` to `store` and waits for the batch that commits it. A caller that stops
    /// waiting does not take its write back: the batch commits it all the same.
    pub(super) async fn submit<D: Dialect>(
        &self,
        backend: &D,
        store: &KvStoreId,
        write: KvWrite,
    ) -> Answer {
        let start = |queue| run(backend.clone(), queue);
        (self.0)
            .ask(start, store, write, "writing to a key-value store")
            .await
    }
}

/// The writer task: a batch of whatever has queued, committed, answered; until every handle
/// on the queue is gone.
async fn run<D: Dialect>(backend: D, mut queue: mpsc::Receiver<Pending>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        write_batch(&backend, std::mem::take(&mut batch)).await;
    }
}

/// One write of a batch and, once applied, its answer.
struct Slot {
    store: KvStoreId,
    write: Option<KvWrite>,
    answer: Option<Answer>,
}

impl Slot {
    fn fail(&mut self, error: StoreError) {
        self.write = None;
        self.answer = Some(Err(error));
    }
}

async fn write_batch<D: Dialect>(backend: &D, mut batch: Vec<Pending>) {
    // By namespace, then store; stable, so each store's writes keep the order they came in.
    batch.sort_by(|a, b| {
        (&a.store.namespace, &a.store.store).cmp(&(&b.store.namespace, &b.store.store))
    });
    let (mut slots, replies): (Vec<Slot>, Vec<_>) = batch
        .into_iter()
        .map(|pending| {
            let slot = Slot {
                store: pending.store,
                write: Some(pending.request),
                answer: None,
            };
            (slot, pending.reply)
        })
        .unzip();
    if let Err(error) = transaction(backend, &mut slots).await {
        // Nothing the transaction held was written; a write that failed on its own keeps
        // its own reason.
        let error = Arc::new(error);
        for slot in &mut slots {
            if !matches!(slot.answer, Some(Err(_))) {
                slot.answer = Some(Err(batch_failure("writing to a key-value store", &error)));
            }
        }
    }
    for (slot, reply) in slots.into_iter().zip(replies) {
        let answer = slot.answer.unwrap_or_else(|| {
            Err(StoreError::permanent(
                "writing to a key-value store",
                "the batch ended without applying the write",
            ))
        });
        // A caller that stopped waiting has nothing to be told.
        let _ = reply.send(answer);
    }
}

/// Applies every write of `slots` (sorted by namespace and store) in one transaction.
async fn transaction<D: Dialect>(backend: &D, slots: &mut [Slot]) -> Result<(), StoreError> {
    let mut tx = backend.write().await?;
    for namespace in slots.chunk_by_mut(|a, b| a.store.namespace == b.store.namespace) {
        let Some(mut quota) = namespace_quota::<D>(&mut tx, &namespace[0].store).await? else {
            for slot in namespace {
                slot.fail(StoreError::NamespaceNotFound(slot.store.namespace.clone()));
            }
            continue;
        };
        for store in namespace.chunk_by_mut(|a, b| a.store.store == b.store.store) {
            write_store::<D>(&mut tx, store, &mut quota).await?;
        }
    }
    commit::<D>(tx).await
}

/// The namespace's quota and what its stores hold, waiting for the namespace's other writers
/// where it has one; `None` when the namespace does not exist.
async fn namespace_quota<D: Dialect>(
    tx: &mut Tx<D>,
    store: &KvStoreId,
) -> Result<Option<KvQuota>, StoreError> {
    let quotas: Option<Option<String>> = query(NAMESPACE_QUOTAS)
        .bind(store.namespace.as_str())
        .optional_scalar(&mut **tx, "reading namespace quotas")
        .await?;
    let Some(quotas) = quotas else {
        return Ok(None);
    };
    let limit = codec::quotas(quotas.as_deref())?.max_kv_bytes;
    let mut held = 0;
    if limit.is_some() {
        D::lock_namespace(tx, &store.namespace).await?;
        held = query(NAMESPACE_BYTES)
            .bind(store.namespace.as_str())
            .scalar(&mut **tx, "counting the namespace's key-value bytes")
            .await?;
    }
    Ok(Some(KvQuota { limit, held }))
}

/// Applies the writes of one store, all in `slots`.
async fn write_store<D: Dialect>(
    tx: &mut Tx<D>,
    slots: &mut [Slot],
    quota: &mut KvQuota,
) -> Result<(), StoreError> {
    let store = slots[0].store.clone();
    let Some(revision) = take_store(&mut **tx, &store).await? else {
        for slot in slots {
            slot.fail(StoreError::KvStoreNotFound {
                namespace: store.namespace.clone(),
                store: store.store.clone(),
            });
        }
        return Ok(());
    };
    let writes = slots.iter().filter_map(|slot| slot.write.as_ref());
    let keys: BTreeSet<String> = writes
        .clone()
        .flat_map(KvWrite::keys)
        .map(str::to_string)
        .collect();
    let counters: BTreeSet<String> = writes
        .filter_map(KvWrite::reads_value)
        .map(str::to_string)
        .collect();
    let stored = stored_keys(&mut **tx, &store, &keys).await?;
    let values = stored_values(&mut **tx, &store, &counters).await?;
    let mut batch = StoreBatch::new(store.clone(), revision, stored, values);
    for slot in slots.iter_mut() {
        if let Some(write) = slot.write.take() {
            slot.answer = Some(batch.apply(write, quota));
        }
    }
    let rows = batch.finish();
    let (namespace, name) = (store.namespace.as_str(), store.store.as_str());
    for puts in rows.puts.chunks(KEYS_PER_STATEMENT) {
        let mut put = query(PUT);
        for (index, (key, value)) in puts.iter().enumerate() {
            put.push(if index == 0 { "(" } else { ", (" })
                .push_bind(namespace)
                .push(", ")
                .push_bind(name)
                .push(", ")
                .push_bind(key)
                .push(", ")
                .push_bind(value)
                .push(", ")
                .push_bind(rows.revision)
                .push(")");
        }
        put.push(PUT_CONFLICT);
        put.execute(&mut **tx, "storing keys").await?;
    }
    for deletes in rows.deletes.chunks(KEYS_PER_STATEMENT) {
        let mut delete = query(DELETE).bind(namespace).bind(name);
        delete.push(" IN ").push_list(deletes);
        delete.execute(&mut **tx, "deleting keys").await?;
    }
    if rows.delta != plan::KvDelta::default() {
        query(ADD_TO_TOTALS)
            .bind(namespace)
            .bind(name)
            .bind(rows.delta.keys)
            .bind(rows.delta.bytes)
            .execute(&mut **tx, "counting the store's keys")
            .await?;
    }
    Ok(())
}

/// Takes the store's row, bumping its revision, and creates `default`'s on its first write;
/// `None` when the store does not exist.
async fn take_store(conn: &mut impl Sql, store: &KvStoreId) -> Result<Option<i64>, StoreError> {
    if let Some(revision) = lock_store(conn, store).await? {
        return Ok(Some(revision));
    }
    if !store.is_default() {
        return Ok(None);
    }
    query(CREATE_DEFAULT_STORE)
        .bind(store.namespace.as_str())
        .bind(store.store.as_str())
        .execute(conn, "creating the default key-value store")
        .await?;
    lock_store(conn, store).await?.map(Some).ok_or_else(|| {
        StoreError::permanent(
            "creating the default key-value store",
            "its row is missing after the insert",
        )
    })
}

async fn lock_store(conn: &mut impl Sql, store: &KvStoreId) -> Result<Option<i64>, StoreError> {
    query(LOCK_STORE)
        .bind(store.namespace.as_str())
        .bind(store.store.as_str())
        .optional_scalar(conn, "taking the key-value store")
        .await
}

/// The size and revision of each of `keys` that is stored.
async fn stored_keys(
    conn: &mut impl Sql,
    store: &KvStoreId,
    keys: &BTreeSet<String>,
) -> Result<HashMap<String, StoredKey>, StoreError> {
    let keys: Vec<&String> = keys.iter().collect();
    let mut stored = HashMap::with_capacity(keys.len());
    for keys in keys.chunks(KEYS_PER_STATEMENT) {
        let mut read = query(STORED_KEYS)
            .bind(store.namespace.as_str())
            .bind(store.store.as_str());
        read.push(" IN ").push_list(keys.iter().copied());
        for row in read.fetch_all(conn, "reading stored keys").await? {
            let key = StoredKey {
                value_bytes: column(&row, 1)?,
                revision: column(&row, 2)?,
            };
            stored.insert(column(&row, 0)?, key);
        }
    }
    Ok(stored)
}

/// The values of each of `keys` that is stored (only counters read theirs).
async fn stored_values(
    conn: &mut impl Sql,
    store: &KvStoreId,
    keys: &BTreeSet<String>,
) -> Result<HashMap<String, Vec<u8>>, StoreError> {
    let keys: Vec<&String> = keys.iter().collect();
    let mut values = HashMap::with_capacity(keys.len());
    for keys in keys.chunks(KEYS_PER_STATEMENT) {
        let mut read = query(GET_MANY)
            .bind(store.namespace.as_str())
            .bind(store.store.as_str());
        read.push(" IN ").push_list(keys.iter().copied());
        for row in read.fetch_all(conn, "reading counters").await? {
            values.insert(column(&row, 0)?, column(&row, 1)?);
        }
    }
    Ok(values)
}
