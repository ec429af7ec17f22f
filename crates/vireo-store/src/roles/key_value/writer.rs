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
//!
//! The statements are built here once, for every backend: SQLite runs them on the calling
//! thread instead (`sqlite::key_value`), one write to a transaction.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use tokio::sync::mpsc;
use vireo_core::{KvStoreId, StoreError};

use super::task_queue::{Asked, TaskQueue};
use super::{GET_MANY, batch_failure};
use crate::codec;
use crate::plan::key_value::{self as plan, KvQuota, KvWrite, KvWritten, StoreBatch, StoredKey};
use crate::roles::{Dialect, Tx, commit};
use crate::rows::{Columns, column};
use crate::sql::{Sql, Statement, query};

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
pub(crate) struct Slot {
    store: KvStoreId,
    write: Option<KvWrite>,
    answer: Option<Answer>,
}

impl Slot {
    pub(crate) fn new(store: KvStoreId, write: KvWrite) -> Self {
        Self {
            store,
            write: Some(write),
            answer: None,
        }
    }

    pub(crate) fn store(&self) -> &KvStoreId {
        &self.store
    }

    /// What applying the write answered.
    pub(crate) fn answered(self) -> Answer {
        self.answer.unwrap_or_else(|| {
            Err(StoreError::permanent(
                "writing to a key-value store",
                "the batch ended without applying the write",
            ))
        })
    }

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
        .map(|pending| (Slot::new(pending.store, pending.request), pending.reply))
        .unzip();
    if let Err(error) = transaction(backend, &mut slots).await {
        fail_batch(&mut slots, error);
    }
    for (slot, reply) in slots.into_iter().zip(replies) {
        // A caller that stopped waiting has nothing to be told.
        let _ = reply.send(slot.answered());
    }
}

/// Answers every write of `slots`, whose transaction failed with `error`: nothing it held was
/// written. A write that failed on its own keeps its own reason.
pub(crate) fn fail_batch(slots: &mut [Slot], error: StoreError) {
    let error = Arc::new(error);
    for slot in slots {
        if !matches!(slot.answer, Some(Err(_))) {
            slot.answer = Some(Err(batch_failure("writing to a key-value store", &error)));
        }
    }
}

/// Whether two slots write to one namespace, for `chunk_by`.
fn same_namespace(a: &Slot, b: &Slot) -> bool {
    a.store.namespace == b.store.namespace
}

/// Whether two slots of one namespace write to one store, for `chunk_by`.
fn same_store(a: &Slot, b: &Slot) -> bool {
    a.store.store == b.store.store
}

/// Applies every write of `slots` (sorted by namespace and store) in one transaction.
async fn transaction<D: Dialect>(backend: &D, slots: &mut [Slot]) -> Result<(), StoreError> {
    let mut tx = backend.write().await?;
    for namespace in slots.chunk_by_mut(same_namespace) {
        let Some(mut quota) = namespace_quota::<D>(&mut tx, &namespace[0].store).await? else {
            fail_namespace(namespace);
            continue;
        };
        for store in namespace.chunk_by_mut(same_store) {
            write_store::<D>(&mut tx, store, &mut quota).await?;
        }
    }
    commit::<D>(tx).await
}

/// Fails every write of `slots`, whose namespace does not exist.
pub(crate) fn fail_namespace(slots: &mut [Slot]) {
    for slot in slots {
        slot.fail(StoreError::NamespaceNotFound(slot.store.namespace.clone()));
    }
}

/// The namespace's quota and what its stores hold, waiting for the namespace's other writers
/// where it has one; `None` when the namespace does not exist.
async fn namespace_quota<D: Dialect>(
    tx: &mut Tx<D>,
    store: &KvStoreId,
) -> Result<Option<KvQuota>, StoreError> {
    let quotas: Option<Option<String>> = quotas_read(store)
        .optional_scalar(&mut **tx, "reading namespace quotas")
        .await?;
    let Some(quotas) = quotas else {
        return Ok(None);
    };
    let mut quota = quota_of(quotas.as_deref(), 0)?;
    if quota.limit.is_some() {
        D::lock_namespace(tx, &store.namespace).await?;
        quota.held = bytes_read(store)
            .scalar(&mut **tx, "counting the namespace's key-value bytes")
            .await?;
    }
    Ok(Some(quota))
}

/// Reads the quotas of `store`'s namespace: one row, none when it does not exist.
pub(crate) fn quotas_read(store: &KvStoreId) -> Statement<'_> {
    query(NAMESPACE_QUOTAS).bind(store.namespace.as_str())
}

/// Reads what the stores of `store`'s namespace hold: one row.
pub(crate) fn bytes_read(store: &KvStoreId) -> Statement<'_> {
    query(NAMESPACE_BYTES).bind(store.namespace.as_str())
}

/// The namespace's quota from its `quotas` column and the bytes its stores hold.
pub(crate) fn quota_of(quotas: Option<&str>, bytes: i64) -> Result<KvQuota, StoreError> {
    let limit = codec::quotas(quotas)?.max_kv_bytes;
    let held = if limit.is_some() { bytes } else { 0 };
    Ok(KvQuota { limit, held })
}

/// Applies the writes of one store, all in `slots`.
async fn write_store<D: Dialect>(
    tx: &mut Tx<D>,
    slots: &mut [Slot],
    quota: &mut KvQuota,
) -> Result<(), StoreError> {
    let store = slots[0].store.clone();
    let Some(revision) = take_store(&mut **tx, &store).await? else {
        fail_store(slots);
        return Ok(());
    };
    let reads = StoreReads::of(slots);
    let mut stored = HashMap::new();
    for read in reads.keys {
        stored.extend(stored_keys(
            &read.fetch_all(&mut **tx, "reading stored keys").await?,
        )?);
    }
    let mut values = HashMap::new();
    for read in reads.values {
        values.extend(stored_values(
            &read.fetch_all(&mut **tx, "reading counters").await?,
        )?);
    }
    for write in apply(slots, revision, stored, values, quota) {
        write.execute(&mut **tx, "storing keys").await?;
    }
    Ok(())
}

/// Fails every write of `slots`, whose store does not exist.
pub(crate) fn fail_store(slots: &mut [Slot]) {
    for slot in slots {
        slot.fail(StoreError::KvStoreNotFound {
            namespace: slot.store.namespace.clone(),
            store: slot.store.store.clone(),
        });
    }
}

/// What the writes of one store's slots need read: the size and revision of each key they
/// name (rows for [`stored_keys`]) and the value of each counter (rows for [`stored_values`]).
pub(crate) struct StoreReads<'a> {
    pub(crate) keys: Vec<Statement<'a>>,
    pub(crate) values: Vec<Statement<'a>>,
}

impl<'a> StoreReads<'a> {
    pub(crate) fn of(slots: &'a [Slot]) -> Self {
        let store = store_of(slots);
        let writes = slots.iter().filter_map(|slot| slot.write.as_ref());
        let keys: BTreeSet<&str> = writes.clone().flat_map(KvWrite::keys).collect();
        let counters: BTreeSet<&str> = writes.filter_map(KvWrite::reads_value).collect();
        Self {
            keys: in_chunks(STORED_KEYS, store, keys),
            values: in_chunks(GET_MANY, store, counters),
        }
    }
}

/// `sql`, followed by ` IN ` and a chunk of `keys`, for each chunk; none for no keys.
fn in_chunks<'a>(
    sql: &'static str,
    store: &'a KvStoreId,
    keys: BTreeSet<&'a str>,
) -> Vec<Statement<'a>> {
    let keys: Vec<&str> = keys.into_iter().collect();
    keys.chunks(KEYS_PER_STATEMENT)
        .map(|keys| {
            let mut read = query(sql)
                .bind(store.namespace.as_str())
                .bind(store.store.as_str());
            read.push(" IN ").push_list(keys.iter().copied());
            read
        })
        .collect()
}

/// The size and revision of each stored key a [`StoreReads::keys`] statement returned.
pub(crate) fn stored_keys(rows: &[impl Columns]) -> Result<HashMap<String, StoredKey>, StoreError> {
    rows.iter()
        .map(|row| {
            let key = StoredKey {
                value_bytes: column(row, 1)?,
                revision: column(row, 2)?,
            };
            Ok((column(row, 0)?, key))
        })
        .collect()
}

/// The value of each stored counter a [`StoreReads::values`] statement returned.
pub(crate) fn stored_values(rows: &[impl Columns]) -> Result<HashMap<String, Vec<u8>>, StoreError> {
    rows.iter()
        .map(|row| Ok((column(row, 0)?, column(row, 1)?)))
        .collect()
}

/// Applies the writes of one store's `slots` to what it held, answering each, and returns the
/// statements that store what they changed.
pub(crate) fn apply(
    slots: &mut [Slot],
    revision: i64,
    stored: HashMap<String, StoredKey>,
    values: HashMap<String, Vec<u8>>,
    quota: &mut KvQuota,
) -> Vec<Statement<'static>> {
    let store = slots[0].store.clone();
    let mut batch = StoreBatch::new(store.clone(), revision, stored, values);
    for slot in slots.iter_mut() {
        if let Some(write) = slot.write.take() {
            slot.answer = Some(batch.apply(write, quota));
        }
    }
    let rows = batch.finish();
    let (namespace, name) = (store.namespace.to_string(), store.store.to_string());
    let mut writes = Vec::new();
    let mut puts = rows.puts.into_iter().peekable();
    while puts.peek().is_some() {
        let mut put = query(PUT);
        for (index, (key, value)) in puts.by_ref().take(KEYS_PER_STATEMENT).enumerate() {
            put.push(if index == 0 { "(" } else { ", (" })
                .push_bind(namespace.clone())
                .push(", ")
                .push_bind(name.clone())
                .push(", ")
                .push_bind(key)
                .push(", ")
                .push_bind(value)
                .push(", ")
                .push_bind(rows.revision)
                .push(")");
        }
        put.push(PUT_CONFLICT);
        writes.push(put);
    }
    for deletes in rows.deletes.chunks(KEYS_PER_STATEMENT) {
        let mut delete = query(DELETE).bind(namespace.clone()).bind(name.clone());
        delete.push(" IN ").push_list(deletes.iter().cloned());
        writes.push(delete);
    }
    if rows.delta != plan::KvDelta::default() {
        writes.push(
            query(ADD_TO_TOTALS)
                .bind(namespace)
                .bind(name)
                .bind(rows.delta.keys)
                .bind(rows.delta.bytes),
        );
    }
    writes
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
    create_default(store)
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
    store_lock(store)
        .optional_scalar(conn, "taking the key-value store")
        .await
}

/// Creates the row of `default`, unless it exists or its namespace does not.
pub(crate) fn create_default(store: &KvStoreId) -> Statement<'_> {
    query(CREATE_DEFAULT_STORE)
        .bind(store.namespace.as_str())
        .bind(store.store.as_str())
}

/// Takes the store's row, bumping its revision: one row with the new revision, none when the
/// store does not exist.
pub(crate) fn store_lock(store: &KvStoreId) -> Statement<'_> {
    query(LOCK_STORE)
        .bind(store.namespace.as_str())
        .bind(store.store.as_str())
}

/// The store the slots of a [`same_store`] group write to.
fn store_of(slots: &[Slot]) -> &KvStoreId {
    &slots[0].store
}
