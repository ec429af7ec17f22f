//! Key reads in batches, on a connection of their own. Every `get` of one store handle goes to
//! one reader task, which keeps a reader connection and answers whatever queued with one
//! statement per store. A read costs a share of one round trip to the database instead of its
//! own acquire, statement and release, which is most of what a function's `get` took.
//!
//! Each statement reads the database as it is when the statement starts, so a read sees every
//! write committed before it was queued.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use tokio::sync::mpsc;
use vireo_core::{KvStoreId, StoreError};

use super::batch_failure;
use super::task_queue::{Asked, TaskQueue};
use crate::roles::Dialect;
use crate::rows::column;
use crate::sql::query;

/// The most reads one batch takes.
const MAX_BATCH: usize = 256;
/// How long the reader keeps its connection without a read to do.
const KEEP_IDLE: std::time::Duration = std::time::Duration::from_secs(1);
/// Keys per statement, far below every backend's limit on parameters.
const KEYS_PER_STATEMENT: usize = 500;

/// Followed by ` IN ` and the keys.
const READ_KEYS: &str = "SELECT key, value, revision FROM kv_entries
    WHERE namespace = $1 AND store = $2 AND key";

/// A stored key's value and the revision that wrote it; `None` when the key is not stored.
pub(crate) type Entry = Option<(Vec<u8>, i64)>;

/// A read handed to the reader: the key, and where its entry goes.
type Pending = Asked<String, Entry>;

/// The queue to a store handle's reader task, started by the first read.
#[derive(Debug, Default)]
pub(crate) struct KvReader(TaskQueue<String, Entry>);

impl KvReader {
    /// The key's value and revision as the database has them once the read's batch runs.
    pub(super) async fn read<D: Dialect>(
        &self,
        backend: &D,
        store: &KvStoreId,
        key: &str,
    ) -> Result<Entry, StoreError> {
        let start = |queue| run(backend.clone(), queue);
        let key = key.to_string();
        (self.0)
            .ask(start, store, key, "reading a key-value store")
            .await
    }
}

/// The reader task: a batch of whatever has queued, read, answered; until every handle on the
/// queue is gone. The connection is kept between batches, given back to the pool once no read
/// came for [`KEEP_IDLE`], and replaced after a failure.
async fn run<D: Dialect>(backend: D, mut queue: mpsc::Receiver<Pending>) {
    let mut connection: Option<PoolConnection<D::Db>> = None;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if connection.is_some() {
            let next = tokio::time::timeout(KEEP_IDLE, queue.recv_many(&mut batch, MAX_BATCH));
            match next.await {
                Ok(0) => return,
                Ok(_) => {}
                Err(_idle) => {
                    connection = None;
                    continue;
                }
            }
        } else if queue.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        batch.sort_by(|a, b| {
            (&a.store.namespace, &a.store.store).cmp(&(&b.store.namespace, &b.store.store))
        });
        let conn = match connection.take() {
            Some(conn) => Ok(conn),
            None => backend.reader().await,
        };
        let mut conn = match conn {
            Ok(conn) => conn,
            Err(error) => {
                answer_all(std::mem::take(&mut batch), error);
                continue;
            }
        };
        let mut pending = std::mem::take(&mut batch);
        let mut failed = false;
        while !pending.is_empty() {
            let rest = split_off_store(&mut pending);
            match read_store::<D>(&mut conn, &pending).await {
                Ok(found) => {
                    for read in pending.drain(..) {
                        // A caller that stopped waiting has nothing to be told.
                        let _ = read.reply.send(Ok(found.get(&read.request).cloned()));
                    }
                }
                Err(error) => {
                    failed = true;
                    answer_all(std::mem::take(&mut pending), error);
                }
            }
            pending = rest;
        }
        if !failed {
            connection = Some(conn);
        }
    }
}

/// Leaves the reads of the first store in `pending` and returns the others.
fn split_off_store(pending: &mut Vec<Pending>) -> Vec<Pending> {
    let first = &pending[0].store;
    let end = pending
        .iter()
        .position(|read| read.store != *first)
        .unwrap_or(pending.len());
    pending.split_off(end)
}

/// The stored entries of the keys `reads` (all of one store) name.
async fn read_store<D: Dialect>(
    conn: &mut PoolConnection<D::Db>,
    reads: &[Pending],
) -> Result<HashMap<String, (Vec<u8>, i64)>, StoreError> {
    let store = &reads[0].store;
    let mut keys: Vec<&str> = reads.iter().map(|read| read.request.as_str()).collect();
    keys.sort_unstable();
    keys.dedup();
    let mut found = HashMap::with_capacity(keys.len());
    for keys in keys.chunks(KEYS_PER_STATEMENT) {
        let mut read = query(READ_KEYS)
            .bind(store.namespace.as_str())
            .bind(store.store.as_str());
        read.push(" IN ").push_list(keys.iter().copied());
        for row in read.fetch_all(&mut **conn, "reading keys").await? {
            let entry = (column(&row, "value")?, column(&row, "revision")?);
            found.insert(column(&row, "key")?, entry);
        }
    }
    Ok(found)
}

/// Tells every read in `reads` that its batch failed.
fn answer_all(reads: Vec<Pending>, error: StoreError) {
    let error = Arc::new(error);
    for read in reads {
        let _ = read
            .reply
            .send(Err(batch_failure("reading a key-value store", &error)));
    }
}
