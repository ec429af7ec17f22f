//! Key-value reads and writes on SQLite, run on the calling thread on connections of their own
//! instead of being handed to a sqlx connection's thread. A `get` or a `set` of a small value is
//! a few µs of SQLite's work; handing each statement to another thread and waking the caller
//! again cost tens of µs more (BENCHMARKS.md, "Key-value"), and a function's request waits for
//! every one of them.
//!
//! Writes are committed in groups on this module's writer connection, beside the sqlx writer
//! connection that makes every other write: SQLite's write lock orders the two. A write queues,
//! then takes the writer (an async mutex: no wait and no wake when nobody else writes) and
//! commits, in one `BEGIN IMMEDIATE` transaction, whatever has queued by then, its own and the
//! writes that queued while the previous holder committed; a write that a holder before it
//! committed finds its answer waiting. So a lone write costs one transaction on its own thread,
//! and concurrent ones share transactions as the batch writer's do.
//!
//! A holder that finds SQLite's write lock taken puts the writes back and sleeps as a task before
//! trying again ([`LOCK_RETRY`]): the transaction holding the lock may be a task of this very
//! runtime, which waiting on the runtime's threads would keep from committing. No holder awaits
//! while it holds the writer, so a cancelled caller never strands the others' writes. Reads see
//! every write committed before they start (WAL) and take no lock a transaction holds across
//! awaits, so a reader waits on its thread ([`wait_for_lock`]) only for another connection's
//! statement.
//!
//! The statements are the ones the other backends run, built in `roles::key_value`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql, TransactionBehavior};
use tokio::sync::oneshot;
use vireo_core::{KvStoreId, StoreError};

use super::{BUSY_TIMEOUT, SqliteStore};
use crate::plan::key_value::{KvWrite, KvWritten};
use crate::roles::key_value::writer::{
    Slot, StoreReads, apply, bytes_read, create_default, fail_batch, fail_namespace, fail_store,
    quota_of, quotas_read, store_lock, stored_keys, stored_values,
};
use crate::roles::key_value::{Entry, KvDialect, KvQueues, READ_ENTRY, store_check};
use crate::rows::{At, Columns, column};
use crate::sql::{Driver, Statement, Value};

#[async_trait::async_trait]
impl KvDialect for SqliteStore {
    async fn kv_get(
        &self,
        _queues: &KvQueues,
        store: &KvStoreId,
        key: &str,
    ) -> Result<Entry, StoreError> {
        self.kv.get(store, key)
    }

    async fn kv_write(
        &self,
        _queues: &KvQueues,
        store: &KvStoreId,
        write: KvWrite,
    ) -> Result<KvWritten, StoreError> {
        self.kv.write(store, write).await
    }
}

/// Reader connections kept between reads; more are opened while more read at once.
const KEPT_READERS: usize = 8;
/// How long a reader waits between looks at a lock another connection's statement holds.
const LOCK_POLL: Duration = Duration::from_micros(50);
/// How long a write sleeps before it tries again to take the write lock another transaction
/// holds (tokio's timer rounds it up to its millisecond).
const LOCK_RETRY: Duration = Duration::from_micros(500);

/// The connections key-value operations run on, opened on first use.
pub(super) struct KvConnections {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    /// Writes waiting for the writer's next holder, in the order they came.
    queued: Mutex<Vec<Queued>>,
    /// Numbers the queued writes, so a write that gives up can take itself back.
    next_write: AtomicU64,
    writer: tokio::sync::Mutex<Option<Connection>>,
}

impl std::fmt::Debug for KvConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvConnections")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// A write waiting to be committed, and where its answer goes.
struct Queued {
    id: u64,
    slot: Slot,
    reply: oneshot::Sender<Result<KvWritten, StoreError>>,
}

/// What a holder of the writer made of the queued writes.
enum Committed {
    /// Every queued write is answered.
    All,
    /// Another connection holds SQLite's write lock: the writes are queued again.
    Locked,
}

impl KvConnections {
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_path_buf(),
            readers: Mutex::new(Vec::new()),
            queued: Mutex::new(Vec::new()),
            next_write: AtomicU64::new(0),
            writer: tokio::sync::Mutex::new(None),
        }
    }

    /// The key's value and the revision that wrote it; `None` when the key is not stored, an
    /// error when its store does not exist.
    pub(super) fn get(&self, store: &KvStoreId, key: &str) -> Result<Entry, StoreError> {
        let context = "reading a key-value store";
        let conn = match lock(&self.readers).pop() {
            Some(conn) => conn,
            None => connect(&self.path, true).map_err(failed(context))?,
        };
        let entry = read_entry(&conn, store, key);
        // A connection that failed is not kept: the next read opens a fresh one.
        if entry.is_ok() {
            let mut readers = lock(&self.readers);
            if readers.len() < KEPT_READERS {
                readers.push(conn);
            }
        }
        entry
    }

    /// Applies `write` to `store`, in a transaction it may share with writes queued beside it.
    async fn write(&self, store: &KvStoreId, write: KvWrite) -> Result<KvWritten, StoreError> {
        let id = self.next_write.fetch_add(1, Ordering::Relaxed);
        let (reply, mut answer) = oneshot::channel();
        lock(&self.queued).push(Queued {
            id,
            slot: Slot::new(store.clone(), write),
            reply,
        });
        let deadline = Instant::now() + BUSY_TIMEOUT;
        loop {
            let mut writer = self.writer.lock().await;
            if let Ok(answered) = answer.try_recv() {
                return answered;
            }
            match self.commit_queued(&mut writer) {
                Committed::All => {}
                Committed::Locked if Instant::now() < deadline => {
                    drop(writer);
                    tokio::time::sleep(LOCK_RETRY).await;
                }
                Committed::Locked => {
                    // Taken back unless a holder has it, whose answer is then the write's.
                    let mut queued = lock(&self.queued);
                    let before = queued.len();
                    queued.retain(|write| write.id != id);
                    if queued.len() < before {
                        return Err(StoreError::unavailable(
                            "writing to a key-value store",
                            "the database stayed locked by another writer",
                        ));
                    }
                }
            }
        }
    }

    /// Commits every queued write in one transaction on the writer, and answers each.
    fn commit_queued(&self, writer: &mut Option<Connection>) -> Committed {
        let queued = std::mem::take(&mut *lock(&self.queued));
        if queued.is_empty() {
            return Committed::All;
        }
        let (mut slots, rest): (Vec<Slot>, Vec<_>) = queued
            .into_iter()
            .map(|write| (write.slot, (write.id, write.reply)))
            .unzip();
        let done = match writer {
            Some(conn) => attempt(conn, &mut slots),
            None => connect(&self.path, false)
                .map_err(|error| Failed::Database(failed("opening the key-value writer")(error)))
                .and_then(|conn| attempt(writer.insert(conn), &mut slots)),
        };
        match done {
            Ok(()) => {}
            Err(Failed::Locked) => {
                // Back in front of any that came meanwhile, in their order.
                let mut queued = lock(&self.queued);
                let again = slots
                    .into_iter()
                    .zip(rest)
                    .map(|(slot, (id, reply))| Queued { id, slot, reply });
                queued.splice(0..0, again);
                return Committed::Locked;
            }
            Err(Failed::Database(error)) => {
                // Whatever state SQLite left it in, the next batch starts on a fresh connection.
                *writer = None;
                fail_batch(&mut slots, error);
            }
        }
        for (slot, (_, reply)) in slots.into_iter().zip(rest) {
            // A caller that stopped waiting has nothing to be told.
            let _ = reply.send(slot.answered());
        }
        Committed::All
    }

    /// Caps the database at `pages` pages for this module's writer, to test a full disk.
    #[cfg(test)]
    pub(super) async fn cap_pages(&self, pages: i64) {
        let mut writer = self.writer.lock().await;
        let conn = writer.get_or_insert_with(|| connect(&self.path, false).unwrap());
        conn.pragma_update(None, "max_page_count", pages).unwrap();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // What a panicking holder left is still connections: each use checks its own.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A connection to the database at `path` with the settings of the store's own (WAL is the
/// file's, set when the store opened it). A reader is `query_only` and waits for locks; the
/// writer is told at once that the write lock is taken.
fn connect(path: &Path, reader: bool) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    if reader {
        conn.busy_handler(Some(wait_for_lock))?;
        conn.pragma_update(None, "query_only", true)?;
    } else {
        conn.busy_timeout(Duration::ZERO)?;
    }
    Ok(conn)
}

/// Why a batch's transaction did not commit.
enum Failed {
    /// Another connection holds the write lock: nothing was done.
    Locked,
    Database(StoreError),
}

/// Applies the writes of `slots` in one transaction on `conn`, a store at a time.
fn attempt(conn: &mut Connection, slots: &mut [Slot]) -> Result<(), Failed> {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) if is_busy(&error) => return Err(Failed::Locked),
        Err(error) => {
            return Err(Failed::Database(failed("starting a key-value write")(
                error,
            )));
        }
    };
    // By store; stable, so each store's writes keep the order they came in.
    slots.sort_by(|a, b| {
        let (a, b) = (a.store(), b.store());
        (&a.namespace, &a.store).cmp(&(&b.namespace, &b.store))
    });
    for store in slots.chunk_by_mut(|a, b| a.store() == b.store()) {
        write_store(&tx, store).map_err(Failed::Database)?;
    }
    tx.commit()
        .map_err(|error| Failed::Database(failed("committing a key-value write")(error)))
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy)
    )
}

/// SQLite's busy handler: waits [`LOCK_POLL`] and looks again, for up to [`BUSY_TIMEOUT`].
/// SQLite's own sleeps at least a millisecond, far longer than the other writer's transactions.
fn wait_for_lock(attempts: i32) -> bool {
    let waited = LOCK_POLL * u32::try_from(attempts).unwrap_or(u32::MAX);
    if waited >= BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(LOCK_POLL);
    true
}

fn read_entry(conn: &Connection, store: &KvStoreId, key: &str) -> Result<Entry, StoreError> {
    let context = "reading a key-value store";
    let read = crate::sql::query(READ_ENTRY)
        .bind(store.namespace.as_str())
        .bind(store.store.as_str())
        .bind(key);
    if let Some(row) = fetch_all(conn, &read, context)?.first() {
        return Ok(Some((column(row, 0)?, column(row, 1)?)));
    }
    let check = store_check(store);
    let found = fetch_all(conn, &check, context)?;
    let row = found
        .first()
        .ok_or_else(|| StoreError::permanent(context, "checking the store returned no row"))?;
    crate::plan::key_value::kv_store_found(store, column(row, 0)?, column(row, 1)?)?;
    Ok(None)
}

/// The namespace's quota checked, the store's row taken, what the writes need read, and the
/// rows they change written.
fn write_store(conn: &Connection, slots: &mut [Slot]) -> Result<(), StoreError> {
    let store = slots[0].store().clone();
    let Some(quotas) = first_row(conn, &quotas_read(&store), "reading namespace quotas")? else {
        fail_namespace(slots);
        return Ok(());
    };
    let quotas: Option<String> = column(&quotas, 0)?;
    let mut quota = quota_of(quotas.as_deref(), 0)?;
    if quota.limit.is_some() {
        let bytes = first_row(conn, &bytes_read(&store), "counting key-value bytes")?;
        quota.held = bytes.map(|row| column(&row, 0)).transpose()?.unwrap_or(0);
    }
    let Some(revision) = take_store(conn, &store)? else {
        fail_store(slots);
        return Ok(());
    };
    let reads = StoreReads::of(slots);
    let mut stored = HashMap::new();
    for read in &reads.keys {
        stored.extend(stored_keys(&fetch_all(conn, read, "reading stored keys")?)?);
    }
    let mut values = HashMap::new();
    for read in &reads.values {
        values.extend(stored_values(&fetch_all(conn, read, "reading counters")?)?);
    }
    drop(reads);
    for write in apply(slots, revision, stored, values, &mut quota) {
        execute(conn, &write, "storing keys")?;
    }
    Ok(())
}

/// Takes the store's row, bumping its revision, and creates `default`'s on its first write;
/// `None` when the store does not exist.
fn take_store(conn: &Connection, store: &KvStoreId) -> Result<Option<i64>, StoreError> {
    let context = "taking the key-value store";
    let revision = |conn| {
        first_row(conn, &store_lock(store), context)?
            .map(|row| column(&row, 0))
            .transpose()
    };
    match revision(conn)? {
        Some(taken) => Ok(Some(taken)),
        None if store.is_default() => {
            execute(conn, &create_default(store), "creating the default store")?;
            revision(conn)
        }
        None => Ok(None),
    }
}

/// A row as SQLite returned it.
#[derive(Debug)]
struct Row {
    names: std::sync::Arc<[String]>,
    values: Vec<SqlValue>,
}

impl Row {
    fn at(&self, at: At<'_>) -> Result<&SqlValue, StoreError> {
        let position = match at {
            At::Position(position) => Some(position),
            At::Name(name) => self.names.iter().position(|column| column == name),
        };
        position
            .and_then(|position| self.values.get(position))
            .ok_or_else(|| StoreError::permanent(format!("reading column {at}"), "no such column"))
    }
}

/// The column read as `what`, `None` for NULL.
fn typed<T>(
    row: &Row,
    at: At<'_>,
    what: &str,
    read: impl FnOnce(&SqlValue) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    match row.at(at)? {
        SqlValue::Null => Ok(None),
        value => read(value).map(Some).ok_or_else(|| {
            StoreError::permanent(format!("reading column {at}"), format!("not {what}"))
        }),
    }
}

impl Columns for Row {
    fn integer(&self, at: At<'_>) -> Result<Option<i64>, StoreError> {
        typed(self, at, "an integer", |value| match value {
            SqlValue::Integer(integer) => Some(*integer),
            _ => None,
        })
    }

    fn text(&self, at: At<'_>) -> Result<Option<String>, StoreError> {
        typed(self, at, "text", |value| match value {
            SqlValue::Text(text) => Some(text.clone()),
            _ => None,
        })
    }

    fn bytes(&self, at: At<'_>) -> Result<Option<Vec<u8>>, StoreError> {
        typed(self, at, "bytes", |value| match value {
            SqlValue::Blob(bytes) => Some(bytes.clone()),
            // A zero-length value binds as an empty blob, which SQLite may keep as text.
            SqlValue::Text(text) => Some(text.clone().into_bytes()),
            _ => None,
        })
    }

    fn boolean(&self, at: At<'_>) -> Result<Option<bool>, StoreError> {
        Ok(self.integer(at)?.map(|integer| integer != 0))
    }
}

/// A bound value as SQLite takes it.
struct Bound<'v, 'a>(&'v Value<'a>);

impl ToSql for Bound<'_, '_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Integer(Some(integer)) => ToSqlOutput::from(*integer),
            Value::Text(Some(text)) => ToSqlOutput::Borrowed(ValueRef::Text(text.as_bytes())),
            Value::Bytes(Some(bytes)) => ToSqlOutput::Borrowed(ValueRef::Blob(bytes)),
            Value::Boolean(Some(boolean)) => ToSqlOutput::from(*boolean),
            Value::Integer(None)
            | Value::Text(None)
            | Value::Bytes(None)
            | Value::Boolean(None) => ToSqlOutput::Owned(SqlValue::Null),
        })
    }
}

/// `statement` prepared (once per connection) with its values bound to `$1`, `$2`… by name:
/// a parameter may appear before a lower-numbered one in the text.
fn prepare<'c>(
    conn: &'c Connection,
    statement: &Statement<'_>,
) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut prepared = conn.prepare_cached(statement.text())?;
    for (at, value) in statement.values().iter().enumerate() {
        let name = format!("${}", at + 1);
        let index = prepared
            .parameter_index(&name)?
            .ok_or(rusqlite::Error::InvalidParameterName(name))?;
        prepared.raw_bind_parameter(index, Bound(value))?;
    }
    Ok(prepared)
}

fn fetch_all(
    conn: &Connection,
    statement: &Statement<'_>,
    context: &'static str,
) -> Result<Vec<Row>, StoreError> {
    let run = || {
        let mut prepared = prepare(conn, statement)?;
        let names: std::sync::Arc<[String]> = prepared
            .column_names()
            .into_iter()
            .map(String::from)
            .collect();
        let width = names.len();
        let mut rows = prepared.raw_query();
        let mut all = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..width)
                .map(|at| row.get::<_, SqlValue>(at))
                .collect::<rusqlite::Result<_>>()?;
            all.push(Row {
                names: names.clone(),
                values,
            });
        }
        Ok(all)
    };
    run().map_err(failed(context))
}

fn first_row(
    conn: &Connection,
    statement: &Statement<'_>,
    context: &'static str,
) -> Result<Option<Row>, StoreError> {
    Ok(fetch_all(conn, statement, context)?.into_iter().next())
}

fn execute(
    conn: &Connection,
    statement: &Statement<'_>,
    context: &'static str,
) -> Result<(), StoreError> {
    prepare(conn, statement)
        .and_then(|mut prepared| prepared.raw_execute())
        .map(drop)
        .map_err(failed(context))
}

/// Classifies a failure of `context` as the sqlx backend's are: another connection's lock, a
/// full disk, I/O pass; a constraint is a conflict; the rest fails the same way again.
fn failed(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |error| {
        let code = match &error {
            rusqlite::Error::SqliteFailure(failure, _) => Some(failure.extended_code),
            _ => None,
        };
        if code.is_some_and(|code| code & 0xff == rusqlite::ffi::SQLITE_CONSTRAINT) {
            return StoreError::Conflict {
                context: context.into(),
                source: Box::new(error),
            };
        }
        let retryable = code.is_some_and(|code| sqlx::Sqlite::is_transient(&code.to_string()));
        StoreError::Unavailable {
            context: context.into(),
            retryable,
            source: Box::new(error),
        }
    }
}
