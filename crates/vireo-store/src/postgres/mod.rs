//! The PostgreSQL backend: any number of nodes on one database, one connection pool per node.
//! The roles are written once in `crate::roles`; here are the pool and transactions they run
//! on (a write records its change in the change log in its own transaction), error
//! classification, the change log (`changes`), and what PostgreSQL does its own way: SQL text
//! (`dialect`), a batch's columns bound as arrays (`records`, `queue`) and the locks below.
//!
//! Nodes coordinate only through the database: row locks where two writes must not interleave
//! (a claim skips rows another node locked; a namespace's quota checks wait for each other),
//! compare-and-set where a write must happen once (a schedule's slot, a settlement under the
//! lease that started it), and the change log for what nodes copy into memory.

mod changes;
mod components;
mod copy;
mod dialect;
mod objects;
mod queue;
mod records;
mod rows;

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Connection as _, Postgres, Transaction};
use vireo_core::{Change, Name, StoreError};

use crate::error::classify;
use crate::roles::{Dialect, SqlStore};
use crate::sql::{self, Driver, query};
use crate::stores::{PostgresConfig, Stores};

/// How long a caller waits for a free connection before the store counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serialises the writes that count a namespace's contents against its quotas, across nodes.
/// NO KEY UPDATE leaves rows that refer to the namespace free to be inserted meanwhile.
const LOCK_NAMESPACE: &str = "SELECT 1 FROM namespaces WHERE name = $1 FOR NO KEY UPDATE";

/// Serialises the writes that decide by the host claims, across nodes: two overlapping claims
/// (or a route and the release of its host) would otherwise both pass each one's check.
const ADVISORY_LOCK: &str = "SELECT pg_advisory_xact_lock($1)";
const HOST_CLAIMS_LOCK: i64 = 0x7669_7265_6f48_6f73; // "vireoHos"
const NODE_SLOTS_LOCK: i64 = 0x7669_7265_6f53_6c6f; // "vireoSlo"

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./src/postgres/migrations");

pub(crate) use copy::copy_side;

/// Connects to the database `config` names, brings its schema up to date (once, however many
/// nodes start at the same time), and starts following its change log.
pub(crate) async fn open(config: &PostgresConfig) -> Result<Stores, StoreError> {
    let store = Arc::new(SqlStore::new(PgStore::open(config).await?));
    let changes = changes::PgFeed::follow(store.pool.clone()).await?;
    Ok(Stores::new(store.clone(), store, Arc::new(changes)))
}

#[derive(Debug, Clone)]
struct PgStore {
    pool: PgPool,
}

impl PgStore {
    async fn open(config: &PostgresConfig) -> Result<PgStore, StoreError> {
        let at = redacted(&config.url);
        if config.max_connections < PostgresConfig::MIN_CONNECTIONS {
            return Err(StoreError::permanent(
                format!("opening database {at}"),
                format!(
                    "a pool of {} connections is too small: the change log's listener holds one, the key-value reader keeps one, and the rest of the work needs at least one more",
                    config.max_connections
                ),
            ));
        }
        let options = PgConnectOptions::from_str(&config.url)
            .map_err(|e| StoreError::permanent(format!("reading the database URL {at}"), e))?
            .options([(
                "statement_timeout",
                config.statement_timeout.as_millis().to_string(),
            )]);
        // A connection of its own, closed afterwards: a database that is down fails here at
        // once with the driver's reason (the pool would retry until its timeout and say only
        // that it timed out), and the migrator's session lock goes with the connection even
        // if a migration fails.
        let mut conn = PgConnection::connect_with(&options)
            .await
            .map_err(backend(format!("connecting to database {at}")))?;
        // sqlx's PostgreSQL migrator holds an advisory lock while it checks and applies
        // migrations, so nodes starting together migrate one after the other.
        MIGRATOR
            .run_direct(&mut conn)
            .await
            .map_err(|e| backend(format!("migrating database {at}"))(e.into()))?;
        conn.close()
            .await
            .map_err(backend(format!("closing the migration connection to {at}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(backend(format!("connecting to database {at}")))?;
        Ok(PgStore { pool })
    }
}

#[async_trait::async_trait]
impl Dialect for PgStore {
    type Db = Postgres;

    async fn reader(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        sql::acquire(&self.pool, "acquiring a connection").await
    }

    async fn writer(&self) -> Result<PoolConnection<Postgres>, StoreError> {
        self.reader().await
    }

    /// PostgreSQL's default READ COMMITTED, with row locks where it matters.
    async fn read(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        sql::begin(&self.pool, "starting a transaction").await
    }

    async fn write(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.read().await
    }

    /// Records what the transaction changes in the change log, then commits both together.
    async fn commit_change(
        &self,
        mut tx: Transaction<'static, Postgres>,
        change: Change,
    ) -> Result<(), StoreError> {
        changes::record(&mut tx, &change).await?;
        sql::commit(tx).await
    }

    async fn lock_namespace(conn: &mut PgConnection, namespace: &Name) -> Result<(), StoreError> {
        query(LOCK_NAMESPACE)
            .bind(namespace.as_str())
            .execute(conn, "locking namespace")
            .await?;
        Ok(())
    }

    async fn lock_host_claims(conn: &mut PgConnection) -> Result<(), StoreError> {
        advisory_lock(conn, HOST_CLAIMS_LOCK, "locking host claims").await
    }

    async fn lock_node_slots(conn: &mut PgConnection) -> Result<(), StoreError> {
        advisory_lock(conn, NODE_SLOTS_LOCK, "locking node slots").await
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

/// Takes the transaction-scoped advisory lock `key`.
async fn advisory_lock(
    conn: &mut PgConnection,
    key: i64,
    context: &'static str,
) -> Result<(), StoreError> {
    query(ADVISORY_LOCK)
        .bind(key)
        .execute(conn, context)
        .await?;
    Ok(())
}

/// SQLSTATEs of conditions that pass: the connection (class 08), a serialization failure or a
/// deadlock (40001, 40P01), insufficient resources (class 53: disk, memory, connections), the
/// server shutting down or restarting (57P01-57P03), and a statement cancelled by its timeout
/// (57014, a busy database).
impl Driver for Postgres {
    fn is_transient(code: &str) -> bool {
        code.starts_with("08")
            || code.starts_with("53")
            || matches!(
                code,
                "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "57014"
            )
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }
}

/// Classifies a failure of `context`.
fn backend(
    context: impl Into<std::borrow::Cow<'static, str>>,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| classify(context, error, Postgres::is_transient)
}

/// `url` without its password, for messages and logs. The user information is taken to end at
/// the last `@`, so a password holding `/`, `?` or `@` is hidden whole; an `@` later in the
/// URL hides more than it needs to, never less.
pub fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some(at) = rest.rfind('@') else {
        return url.to_string();
    };
    match rest[..at].split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        None => url.to_string(),
    }
}

/// A store on a fresh database of the test binary's PostgreSQL server.
#[cfg(test)]
async fn test_store(statement_timeout: Duration) -> PgStore {
    let url = vireo_testsvc::Postgres::shared()
        .create_database()
        .unwrap_or_else(|e| panic!("creating a test database: {e}"));
    PgStore::open(&PostgresConfig {
        statement_timeout,
        ..PostgresConfig::new(url)
    })
    .await
    .unwrap()
}

#[cfg(test)]
mod tests {
    use vireo_core::ErrorClass;

    use super::*;

    #[tokio::test]
    async fn postgres_failures_are_classified_by_what_retrying_can_do() {
        let store = test_store(Duration::from_millis(200)).await;
        let run = |sql: &'static str| {
            let pool = store.pool.clone();
            async move {
                sqlx::query(sql)
                    .execute(&pool)
                    .await
                    .map_err(backend("testing"))
                    .unwrap_err()
                    .class()
            }
        };
        assert_eq!(
            run("INSERT INTO namespaces (name, created_at_us) VALUES ('default', 0)").await,
            ErrorClass::Conflict,
            "a unique key another write took"
        );
        assert_eq!(
            run("INSERT INTO versions (namespace, function, version, component_sha256, component_size, settings, created_at_us) VALUES ('default', 'gone', 1, 'a', 1, '{}', 0)").await,
            ErrorClass::Conflict,
            "a row another write removed"
        );
        assert_eq!(
            run("SELECT * FROM no_such_table").await,
            ErrorClass::Unavailable { retryable: false }
        );
        assert_eq!(
            run("SELECT pg_sleep(5)").await,
            ErrorClass::Unavailable { retryable: true },
            "a statement past its timeout: the database is busy"
        );
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        assert_eq!(
            redacted("postgres://vireo:s3cr@t@db.internal:5432/vireo?sslmode=disable"),
            "postgres://vireo:***@db.internal:5432/vireo?sslmode=disable"
        );
        assert_eq!(
            redacted("postgres://vireo@db.internal/vireo"),
            "postgres://vireo@db.internal/vireo"
        );
        assert_eq!(redacted("postgres://db/x"), "postgres://db/x");
        assert_eq!(
            redacted("postgres://vireo:a/b?c@d@db/x"),
            "postgres://vireo:***@db/x"
        );
        assert_eq!(
            redacted("postgres://vireo:secret@db/x?application_name=a@b"),
            "postgres://vireo:***@b",
            "more hidden, nothing shown"
        );
    }

    #[test]
    fn passing_conditions_are_retryable_and_the_rest_are_not() {
        for transient in [
            "08006", "08001", "40001", "40P01", "53100", "53300", "57P01", "57014",
        ] {
            assert!(Postgres::is_transient(transient), "{transient}");
        }
        for permanent in ["23505", "42P01", "22001", "57P04", "XX000"] {
            assert!(!Postgres::is_transient(permanent), "{permanent}");
        }
    }
}
