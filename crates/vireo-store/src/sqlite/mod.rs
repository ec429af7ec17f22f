//! The SQLite backend: one file, WAL journal, one writer connection and a small pool of
//! readers. The roles are written once in `crate::roles`; here are the connections and
//! transactions they run on (a write begins `IMMEDIATE` on the one writer and announces its
//! change in process after the commit), error classification, and what SQLite does its own
//! way: SQL text (`dialect`), the padded multi-row statements of the record writer's batches
//! (`records`), the queue's cycle, synced when it accepts (`queue`), and key-value reads and
//! writes on the calling thread (`key_value`).

mod changes;
mod copy;
mod dialect;
mod key_value;
mod objects;
mod queue;
mod records;
mod rows;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::{Connection as _, Sqlite, Transaction};
use vireo_core::{Change, StoreError};

use crate::blobs::BlobStore;
use crate::changes::LocalFeed;
use crate::error::classify;
use crate::roles::{Dialect, SqlStore};
use crate::sql::{self, Driver};
use crate::stores::Stores;

/// How long a statement waits for a lock held by another connection (or process) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Readers never block each other or the writer in WAL mode, so a few cover concurrent API reads.
const READER_CONNECTIONS: u32 = 4;

const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

/// The directory beside the database file that holds component bytes, one file per sha256.
pub const COMPONENTS_DIR: &str = "components";

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./src/sqlite/migrations");

pub(crate) use copy::copy_side;
pub use objects::OBJECTS_DIR;

/// Opens (creating if missing) the database at `path`, brings its schema up to date, and
/// bundles it with the component files beside it and the feed every handle on the file shares.
pub(crate) async fn open(path: &Path) -> Result<Stores, StoreError> {
    let components_dir = path.parent().unwrap_or(Path::new(".")).join(COMPONENTS_DIR);
    let components = BlobStore::open(&components_dir).map_err(|e| {
        StoreError::permanent(
            format!(
                "opening the component directory {}",
                components_dir.display()
            ),
            e,
        )
    })?;
    let store = SqliteStore::open(path).await?;
    let changes = store.changes.clone();
    Ok(Stores::new(
        Arc::new(SqlStore::new(store)),
        Arc::new(components),
        changes,
    ))
}

#[derive(Debug, Clone)]
struct SqliteStore {
    /// Exactly one connection: writers queue here instead of racing for SQLite's write lock,
    /// which would otherwise fail with SQLITE_BUSY when a reading transaction upgrades.
    writer: SqlitePool,
    /// `query_only` connections, so a write sent here by mistake fails instead of contending.
    reader: SqlitePool,
    /// Every handle of this process on the file shares it; writes announce their changes here.
    changes: Arc<LocalFeed>,
    /// Where object bytes live.
    objects: std::path::PathBuf,
    /// The connections key-value reads and writes run on, on the calling thread.
    kv: Arc<key_value::KvConnections>,
}

impl SqliteStore {
    async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable in WAL mode except for the last commits before a power loss;
            // accepting an async invocation raises it to FULL for its own transaction.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let at = path.display();
        let writer = pool_options()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(backend(format!("opening database {at}")))?;
        // On a connection of the pool rather than the pool itself: `Migrator::run` over a pool
        // makes the future of every caller of `open` fail rustc's `Send` check.
        let mut conn = writer
            .acquire()
            .await
            .map_err(backend(format!("opening database {at}")))?;
        MIGRATOR
            .run_direct(&mut *conn)
            .await
            .map_err(|e| backend(format!("migrating database {at}"))(e.into()))?;
        drop(conn);
        let objects = objects::open_dir(path, &writer).await?;
        let reader = pool_options()
            .max_connections(READER_CONNECTIONS)
            .connect_with(options.pragma("query_only", "ON"))
            .await
            .map_err(backend(format!("opening readers of database {at}")))?;
        Ok(SqliteStore {
            writer,
            reader,
            changes: changes::feed_of(path),
            objects,
            kv: Arc::new(key_value::KvConnections::new(path)),
        })
    }
}

#[async_trait::async_trait]
impl Dialect for SqliteStore {
    type Db = Sqlite;

    async fn reader(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        sql::acquire(&self.reader, "acquiring a reader").await
    }

    async fn writer(&self) -> Result<PoolConnection<Sqlite>, StoreError> {
        sql::acquire(&self.writer, "acquiring the writer").await
    }

    async fn read(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        sql::begin(&self.reader, "starting a read").await
    }

    /// IMMEDIATE takes the write lock up front, so a transaction that reads before writing
    /// cannot fail on a lock upgrade if another process writes the file too.
    async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer
            .begin_with(BEGIN_WRITE)
            .await
            .map_err(backend("starting a write"))
    }

    /// Commits, then tells every handle on the file what the write changed.
    async fn commit_change(
        &self,
        tx: Transaction<'static, Sqlite>,
        change: Change,
    ) -> Result<(), StoreError> {
        sql::commit(tx).await?;
        self.changes.announce(change);
        Ok(())
    }

    /// Closing lets SQLite checkpoint the WAL.
    async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// SQLite's result codes for conditions that pass: another connection's lock (BUSY, LOCKED,
/// and PROTOCOL for a WAL lock race), memory, I/O and a full disk. The extended codes carry
/// the primary code in their low byte.
impl Driver for Sqlite {
    fn is_transient(code: &str) -> bool {
        const BUSY: i32 = 5;
        const LOCKED: i32 = 6;
        const NOMEM: i32 = 7;
        const IOERR: i32 = 10;
        const FULL: i32 = 13;
        const PROTOCOL: i32 = 15;
        code.parse::<i32>().is_ok_and(|code| {
            matches!(code & 0xff, BUSY | LOCKED | NOMEM | IOERR | FULL | PROTOCOL)
        })
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}

/// Pools whose connections are handed out only outside a transaction.
///
/// A transaction dropped unfinished (an error, a failed commit, a cancelled caller) queues a
/// ROLLBACK. When SQLite has already ended the transaction itself, as it does when a write
/// fails with SQLITE_FULL or SQLITE_IOERR, that ROLLBACK fails and sqlx keeps counting the
/// transaction as open: every later `BEGIN` on the connection would fail with "non-zero
/// transaction depth" until a restart. Such a connection is closed here instead of being
/// reused, and the pool opens a fresh one. The check reads a counter; sqlx's own ping on
/// release has already waited for the queued ROLLBACK.
///
/// sqlx's ping before each acquire is off: it guards against a peer that hung up, which an
/// in-process database cannot do, and it cost every statement outside a transaction a second
/// round trip to the connection's thread.
fn pool_options() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, _| {
            Box::pin(async move {
                let clean = !conn.is_in_transaction();
                if !clean {
                    tracing::debug!(
                        "replacing a database connection whose last transaction did not end cleanly"
                    );
                }
                Ok(clean)
            })
        })
}

/// Classifies a failure of `context`.
fn backend(
    context: impl Into<std::borrow::Cow<'static, str>>,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| classify(context, error, Sqlite::is_transient)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store on a fresh file; keep the directory as long as the store.
    async fn temp_store() -> (tempfile::TempDir, SqlStore<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("vireo.db"))
            .await
            .unwrap();
        (dir, SqlStore::new(store))
    }

    #[tokio::test]
    async fn connections_use_wal_foreign_keys_normal_sync_and_read_only_readers() {
        let (_dir, store) = temp_store().await;
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&store.reader)
            .await
            .unwrap();
        assert_eq!(journal, "wal");
        for pool in [&store.writer, &store.reader] {
            let foreign_keys: bool = sqlx::query_scalar("PRAGMA foreign_keys")
                .fetch_one(pool)
                .await
                .unwrap();
            assert!(foreign_keys);
            let busy_ms: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(busy_ms, 5000);
        }
        // NORMAL (1); only the enqueue transaction raises it, and it is back afterwards.
        vireo_core::Queue::enqueue(&store, &[], u64::MAX)
            .await
            .unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        assert_eq!(synchronous, 1);
        let write = sqlx::query("INSERT INTO namespaces (name, created_at_us) VALUES ('x', 0)")
            .execute(&store.reader)
            .await;
        assert!(write.is_err(), "readers must refuse writes");
    }

    #[tokio::test]
    async fn sqlite_failures_are_classified_by_what_retrying_can_do() {
        let (_dir, store) = temp_store().await;
        let run = |sql: &'static str| {
            let writer = store.writer.clone();
            async move {
                sqlx::query(sql)
                    .execute(&writer)
                    .await
                    .map_err(backend("testing"))
                    .unwrap_err()
                    .class()
            }
        };
        assert_eq!(
            run("INSERT INTO namespaces (name, created_at_us) VALUES ('default', 0)").await,
            vireo_core::ErrorClass::Conflict,
            "a unique key another write took"
        );
        assert_eq!(
            run("INSERT INTO versions (namespace, function, version, component_sha256, component_size, settings, created_at_us) VALUES ('default', 'gone', 1, 'a', 1, '{}', 0)").await,
            vireo_core::ErrorClass::Conflict,
            "a row another write removed"
        );
        assert_eq!(
            run("SELECT * FROM no_such_table").await,
            vireo_core::ErrorClass::Unavailable { retryable: false }
        );
        for transient in ["5", "517", "6", "10", "3338", "13"] {
            assert!(Sqlite::is_transient(transient), "{transient}");
        }
        for permanent in ["1", "11", "19", "2067", "26", "not a code"] {
            assert!(!Sqlite::is_transient(permanent), "{permanent}");
        }
    }

    /// Makes the database "full" for the writer connection: SQLite then fails writes with
    /// SQLITE_FULL, as on a full disk, and rolls back their whole transaction by itself.
    async fn cap_database_size(store: &SqliteStore) {
        let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
            .fetch_one(&store.writer)
            .await
            .unwrap();
        sqlx::query(&format!("PRAGMA max_page_count = {}", pages + 2))
            .execute(&store.writer)
            .await
            .unwrap();
        store.kv.cap_pages(pages + 2).await;
    }

    #[tokio::test]
    async fn a_write_sqlite_rolled_back_on_a_full_database_does_not_wedge_the_writer() {
        use vireo_core::{
            Catalog as _, Name, QueueAdmin as _, SealedSecret, SecretName, SecretStore as _,
        };

        let (_dir, store) = temp_store().await;
        let namespace = Name::default_namespace();
        let secret = SecretName::parse("BIG").unwrap();
        // One row that needs more pages than are left: with no statement journal to undo just
        // the statement, SQLite rolls the whole transaction back, as a full disk does at commit.
        let too_big = SealedSecret {
            nonce: vec![0; 24],
            ciphertext: vec![0; 256 * 1024],
        };
        for round in 0..3 {
            cap_database_size(&store).await;
            let full = store
                .put_secret(&namespace, &secret, &too_big, 1)
                .await
                .unwrap_err();
            assert!(full.to_string().contains("full"), "round {round}: {full}");
            assert_eq!(
                full.class(),
                vireo_core::ErrorClass::Unavailable { retryable: true },
                "a full disk may have room later"
            );
            // Both ways of starting a write get a clean connection and commit.
            let function = Name::parse("test", &format!("f{round}")).unwrap();
            store
                .create_function(&namespace, &function, 1)
                .await
                .unwrap_or_else(|e| panic!("round {round}: the writer stayed wedged: {e}"));
            store
                .redrive(&namespace, &function, None, 1)
                .await
                .unwrap_or_else(|e| panic!("round {round}: the writer stayed wedged: {e}"));
            vireo_core::Queue::enqueue(&store, &[], u64::MAX)
                .await
                .unwrap_or_else(|e| panic!("round {round}: the queue stayed wedged: {e}"));
        }
        let sealed = store
            .sealed_secrets(&namespace, &[secret].into())
            .await
            .unwrap();
        assert!(sealed.is_empty(), "the failed writes left nothing behind");
    }

    /// A key-value write runs on the calling thread on a connection of its own: one that fails
    /// midway leaves nothing behind, and the next write gets a fresh connection.
    #[tokio::test]
    async fn a_key_value_batch_that_fails_midway_is_rolled_back_and_the_writer_goes_on() {
        use vireo_core::{KeyValueStore as _, KvStoreId, Name};

        let (_dir, store) = temp_store().await;
        let kv = KvStoreId {
            namespace: Name::default_namespace(),
            store: Name::default_kv_store(),
        };
        store.set(&kv, "kept", b"1").await.unwrap();
        cap_database_size(&store).await;
        let entries = [
            ("small".to_string(), b"2".to_vec()),
            ("big".to_string(), vec![7; 256 * 1024]),
        ];
        let full = store.set_many(&kv, &entries).await.unwrap_err();
        assert!(full.to_string().contains("full"), "{full}");
        // The next batch gets a clean connection, sees none of the failed one and commits.
        store.set(&kv, "after", b"3").await.unwrap();
        let asked = ["kept", "small", "big", "after"].map(String::from);
        assert_eq!(
            store.get_many(&kv, &asked).await.unwrap(),
            [Some(b"1".to_vec()), None, None, Some(b"3".to_vec())]
        );
        let stores = store.list_stores(&kv.namespace).await.unwrap();
        assert_eq!((stores[0].keys, stores[0].bytes), (2, 11), "kept and after");
    }

    /// On a runtime of one thread, a key-value write that finds the write lock held by a
    /// transaction of a task on that thread waits as a task: waiting on the thread would keep
    /// the transaction from ever committing.
    #[tokio::test(flavor = "current_thread")]
    async fn a_key_value_write_waits_as_a_task_for_a_transaction_holding_the_lock() {
        use vireo_core::{KeyValueStore as _, KvStoreId, Name};

        let (_dir, store) = temp_store().await;
        let store = Arc::new(store);
        let kv = KvStoreId {
            namespace: Name::default_namespace(),
            store: Name::default_kv_store(),
        };
        let mut held = store.write().await.unwrap();
        sqlx::query("UPDATE namespaces SET quotas = quotas WHERE name = 'default'")
            .execute(&mut *held)
            .await
            .unwrap();
        let writing = tokio::spawn({
            let (store, kv) = (store.clone(), kv.clone());
            async move { store.set(&kv, "key", b"value").await }
        });
        // The write tries, finds the lock taken and sleeps; the transaction goes on meanwhile.
        // Had it waited on the thread, this task would be back only when its wait gave up.
        let away = std::time::Instant::now();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(away.elapsed() < BUSY_TIMEOUT / 2, "{:?}", away.elapsed());
        assert!(!writing.is_finished(), "the write waits for the lock");
        sql::commit(held).await.unwrap();
        writing.await.unwrap().unwrap();
        assert_eq!(
            store.get(&kv, "key").await.unwrap(),
            Some(b"value".to_vec())
        );
    }

    #[tokio::test]
    async fn a_read_transaction_sqlite_ended_by_itself_leaves_no_stale_reader() {
        let (_dir, store) = temp_store().await;
        async fn namespaces(tx: &mut Transaction<'static, Sqlite>) -> i64 {
            sqlx::query_scalar("SELECT COUNT(*) FROM namespaces")
                .fetch_one(&mut **tx)
                .await
                .unwrap()
        }
        // Every reader at once, so each connection gets the treatment.
        let mut ended = Vec::new();
        for _ in 0..READER_CONNECTIONS {
            let mut tx = store.read().await.unwrap();
            // What SQLite does on its own after some I/O errors: the transaction is over, but
            // sqlx still counts it open and its rollback on drop fails.
            sqlx::query("ROLLBACK").execute(&mut *tx).await.unwrap();
            ended.push(tx);
        }
        drop(ended);
        let (mut before, mut reading) = (Vec::new(), Vec::new());
        for _ in 0..READER_CONNECTIONS {
            let mut tx = store.read().await.unwrap();
            before.push(namespaces(&mut tx).await);
            reading.push(tx);
        }
        drop(reading);
        vireo_core::TenantStore::create_namespace(
            &store,
            &vireo_core::Name::parse("test", "later").unwrap(),
            &vireo_core::NamespaceQuotas::default(),
            1,
        )
        .await
        .unwrap();
        let mut open = Vec::new();
        for seen_before in before {
            let mut tx = store.read().await.unwrap();
            assert_eq!(
                namespaces(&mut tx).await,
                seen_before + 1,
                "a reader kept an old snapshot"
            );
            open.push(tx);
        }
    }
}
