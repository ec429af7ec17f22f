//! The SQLite implementation of [`Store`]: one file, WAL journal, one writer connection and a
//! small pool of readers.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Connection as _, Decode, QueryBuilder, Row, Sqlite, Transaction, Type};
use vireo_core::time::now_micros;
use vireo_core::{
    AliasName, FunctionInfo, InvocationId, InvocationQuery, InvocationRecord, InvocationStatus,
    LogLine, LogQuery, LogStream, Name, NewVersion, Retained, Retention, Store, StoreError,
    Trigger, UsageQuery, UsageRow, VersionInfo, VersionSelector, VersionSettings,
};

use crate::rows::{ROWS_PER_STATEMENT, push_padded_values};

/// How long a statement waits for a lock held by another connection (or process) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Readers never block each other or the writer in WAL mode, so a few cover concurrent API reads.
const READER_CONNECTIONS: u32 = 4;
const MAX_INVOCATIONS_PER_PAGE: u32 = 1000;
const MAX_LOG_LINES_PER_READ: u32 = 10_000;

/// Column lists shared by every query that feeds the row mappers below.
macro_rules! version_columns {
    () => {
        "namespace, function, version, component_sha256, component_size, settings, created_at_us"
    };
}
macro_rules! invocation_columns {
    () => {
        r#"id, namespace, function, version, "trigger", started_at_us, duration_us, status, http_status, cold, error, init_us, executions, memory_mib, billed_ms, mib_ms, request_bytes, response_bytes, cpu_us"#
    };
}
/// Keeps only rows (namespace in `column2`, function in `column3` of a VALUES list) whose
/// function still exists.
macro_rules! of_existing_functions {
    () => {
        "WHERE EXISTS (SELECT 1 FROM functions f WHERE f.namespace = v.column2 AND f.name = v.column3)"
    };
}

macro_rules! log_columns {
    () => {
        "seq, invocation_id, namespace, function, version, at_us, stream, line"
    };
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// Exactly one connection: writers queue here instead of racing for SQLite's write lock,
    /// which would otherwise fail with SQLITE_BUSY when a reading transaction upgrades.
    pub(crate) writer: SqlitePool,
    /// `query_only` connections, so a write sent here by mistake fails instead of contending.
    pub(crate) reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `path` and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
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
            .map_err(|e| StoreError::Backend(format!("opening database {at}: {e}")))?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::Backend(format!("migrating database {at}: {e}")))?;
        let reader = pool_options()
            .max_connections(READER_CONNECTIONS)
            .connect_with(options.pragma("query_only", "ON"))
            .await
            .map_err(|e| StoreError::Backend(format!("opening readers of database {at}: {e}")))?;
        Ok(SqliteStore { writer, reader })
    }

    /// Closes every connection, letting SQLite checkpoint the WAL; call at shutdown.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// A read transaction, so existence checks and the data they guard see one snapshot.
    pub(crate) async fn read(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.reader
            .begin()
            .await
            .map_err(backend("starting a read"))
    }

    /// IMMEDIATE takes the write lock up front, so a transaction that reads before writing
    /// cannot fail on a lock upgrade if another process writes the file too.
    pub(crate) async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        self.writer
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(backend("starting a write"))
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
fn pool_options() -> SqlitePoolOptions {
    SqlitePoolOptions::new().before_acquire(|conn, _| {
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

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn namespace_exists(&self, namespace: &Name) -> Result<bool, StoreError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM namespaces WHERE name = ?1)")
            .bind(namespace.as_str())
            .fetch_one(&self.reader)
            .await
            .map_err(backend("checking namespace"))
    }

    async fn create_function(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<FunctionInfo, StoreError> {
        let mut tx = self.write().await?;
        check_namespace(&mut tx, namespace).await?;
        let created_at_us = now_micros();
        if !insert_function(&mut tx, namespace, function, created_at_us).await? {
            return Err(StoreError::FunctionExists {
                namespace: namespace.clone(),
                function: function.clone(),
            });
        }
        commit(tx).await?;
        Ok(FunctionInfo {
            namespace: namespace.clone(),
            name: function.clone(),
            created_at_us,
            latest_version: None,
            aliases: BTreeMap::new(),
        })
    }

    async fn get_function(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<FunctionInfo, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut tx, namespace, function).await?;
        let info = function_infos(&mut tx, namespace, Some(function))
            .await?
            .pop();
        info.ok_or_else(|| StoreError::FunctionNotFound {
            namespace: namespace.clone(),
            function: function.clone(),
        })
    }

    async fn list_functions(&self, namespace: &Name) -> Result<Vec<FunctionInfo>, StoreError> {
        let mut tx = self.read().await?;
        check_namespace(&mut tx, namespace).await?;
        function_infos(&mut tx, namespace, None).await
    }

    async fn delete_function(&self, namespace: &Name, function: &Name) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut tx, namespace, function).await?;
        // Versions and aliases go by cascade; records and logs have no foreign key.
        for sql in [
            "DELETE FROM logs WHERE namespace = ?1 AND function = ?2",
            "DELETE FROM invocations WHERE namespace = ?1 AND function = ?2",
            "DELETE FROM functions WHERE namespace = ?1 AND name = ?2",
        ] {
            sqlx::query(sql)
                .bind(namespace.as_str())
                .bind(function.as_str())
                .execute(&mut *tx)
                .await
                .map_err(backend("deleting function"))?;
        }
        commit(tx).await
    }

    async fn add_version(
        &self,
        namespace: &Name,
        function: &Name,
        version: NewVersion,
    ) -> Result<VersionInfo, StoreError> {
        let settings = serde_json::to_string(&version.settings)
            .map_err(|e| StoreError::Backend(format!("encoding version settings: {e}")))?;
        let mut tx = self.write().await?;
        check_namespace(&mut tx, namespace).await?;
        let created_at_us = now_micros();
        insert_function(&mut tx, namespace, function, created_at_us).await?;
        let next: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM versions WHERE namespace = ?1 AND function = ?2",
        )
        .bind(namespace.as_str())
        .bind(function.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(backend("numbering version"))?;
        let number = u32::try_from(next).map_err(|_| {
            StoreError::Backend(format!(
                "function {namespace}/{function} has run out of version numbers"
            ))
        })?;
        sqlx::query(concat!(
            "INSERT INTO versions (",
            version_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
        ))
        .bind(namespace.as_str())
        .bind(function.as_str())
        .bind(number)
        .bind(&version.component_sha256)
        .bind(saturating_i64(version.component_size))
        .bind(settings)
        .bind(created_at_us)
        .execute(&mut *tx)
        .await
        .map_err(backend("adding version"))?;
        commit(tx).await?;
        Ok(VersionInfo {
            namespace: namespace.clone(),
            function: function.clone(),
            version: number,
            component_sha256: version.component_sha256,
            component_size: version.component_size,
            settings: version.settings,
            created_at_us,
        })
    }

    async fn list_versions(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<Vec<VersionInfo>, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut tx, namespace, function).await?;
        let rows = sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            " FROM versions WHERE namespace = ?1 AND function = ?2 ORDER BY version"
        ))
        .bind(namespace.as_str())
        .bind(function.as_str())
        .fetch_all(&mut *tx)
        .await
        .map_err(backend("listing versions"))?;
        rows.iter().map(version_from_row).collect()
    }

    async fn resolve_version(
        &self,
        namespace: &Name,
        function: &Name,
        selector: &VersionSelector,
    ) -> Result<VersionInfo, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut tx, namespace, function).await?;
        let number = match selector {
            VersionSelector::Number(number) => *number,
            VersionSelector::Alias(alias) => {
                let found: Option<u32> = if alias.is_latest() {
                    sqlx::query_scalar("SELECT MAX(version) FROM versions WHERE namespace = ?1 AND function = ?2")
                        .bind(namespace.as_str())
                        .bind(function.as_str())
                        .fetch_one(&mut *tx)
                        .await
                } else {
                    sqlx::query_scalar(
                        "SELECT version FROM aliases WHERE namespace = ?1 AND function = ?2 AND alias = ?3",
                    )
                    .bind(namespace.as_str())
                    .bind(function.as_str())
                    .bind(alias.as_str())
                    .fetch_optional(&mut *tx)
                    .await
                }
                .map_err(backend("resolving alias"))?;
                // `latest` too is missing until the first version is added.
                found.ok_or_else(|| StoreError::AliasNotFound {
                    namespace: namespace.clone(),
                    function: function.clone(),
                    alias: alias.clone(),
                })?
            }
        };
        let row = sqlx::query(concat!(
            "SELECT ",
            version_columns!(),
            " FROM versions WHERE namespace = ?1 AND function = ?2 AND version = ?3"
        ))
        .bind(namespace.as_str())
        .bind(function.as_str())
        .bind(number)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend("reading version"))?;
        match row {
            Some(row) => version_from_row(&row),
            None => Err(StoreError::VersionNotFound {
                namespace: namespace.clone(),
                function: function.clone(),
                version: number,
            }),
        }
    }

    async fn component_hashes(&self) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT DISTINCT component_sha256 FROM versions ORDER BY component_sha256",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(backend("listing component hashes"))
    }

    async fn set_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
        version: u32,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut tx, namespace, function).await?;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM versions WHERE namespace = ?1 AND function = ?2 AND version = ?3)",
        )
        .bind(namespace.as_str())
        .bind(function.as_str())
        .bind(version)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend("checking version"))?;
        if !exists {
            return Err(StoreError::VersionNotFound {
                namespace: namespace.clone(),
                function: function.clone(),
                version,
            });
        }
        sqlx::query(
            "INSERT INTO aliases (namespace, function, alias, version) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (namespace, function, alias) DO UPDATE SET version = excluded.version",
        )
        .bind(namespace.as_str())
        .bind(function.as_str())
        .bind(alias.as_str())
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(backend("setting alias"))?;
        commit(tx).await
    }

    async fn delete_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
    ) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut tx, namespace, function).await?;
        let deleted = sqlx::query(
            "DELETE FROM aliases WHERE namespace = ?1 AND function = ?2 AND alias = ?3",
        )
        .bind(namespace.as_str())
        .bind(function.as_str())
        .bind(alias.as_str())
        .execute(&mut *tx)
        .await
        .map_err(backend("deleting alias"))?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::AliasNotFound {
                namespace: namespace.clone(),
                function: function.clone(),
                alias: alias.clone(),
            });
        }
        commit(tx).await
    }

    /// Rows of functions deleted while their invocations were still queued are skipped, so a
    /// late batch cannot resurrect records of a deleted (or re-created) function. A repeated id
    /// replaces the earlier record's outcome and adds to its metering (a retried attempt).
    async fn record_invocations(
        &self,
        records: &[InvocationRecord],
        logs: &[LogLine],
    ) -> Result<(), StoreError> {
        // One multi-row statement per chunk: each statement is a round trip to the SQLite
        // worker thread, and per-row statements made those hand-offs the invocation path's
        // largest cost under load.
        let mut tx = self.write().await?;
        for chunk in records.chunks(ROWS_PER_STATEMENT) {
            let mut insert = QueryBuilder::<Sqlite>::new(concat!(
                "INSERT INTO invocations (",
                invocation_columns!(),
                ") SELECT * FROM ("
            ));
            push_padded_values(&mut insert, chunk, 19, |mut row, record| {
                row.push_bind(record.id.as_str())
                    .push_bind(record.namespace.as_str())
                    .push_bind(record.function.as_str())
                    .push_bind(record.version)
                    .push_bind(record.trigger.as_str())
                    .push_bind(record.started_at_us)
                    .push_bind(saturating_i64(record.duration_us))
                    .push_bind(record.status.as_str())
                    .push_bind(record.http_status)
                    .push_bind(record.cold)
                    .push_bind(record.error.as_deref())
                    .push_bind(saturating_i64(record.init_us))
                    .push_bind(record.executions)
                    .push_bind(record.memory_mib)
                    .push_bind(saturating_i64(record.billed_ms))
                    .push_bind(saturating_i64(
                        record
                            .billed_ms
                            .saturating_mul(u64::from(record.memory_mib)),
                    ))
                    .push_bind(saturating_i64(record.request_bytes))
                    .push_bind(saturating_i64(record.response_bytes))
                    .push_bind(saturating_i64(record.cpu_us));
            });
            insert.push(concat!(
                ") AS v ",
                of_existing_functions!(),
                // A retried async invocation records each attempt under its id: the last one's
                // outcome stays, and the metering adds up.
                " ON CONFLICT (id) DO UPDATE SET version = excluded.version, started_at_us = excluded.started_at_us, duration_us = excluded.duration_us, status = excluded.status, http_status = excluded.http_status, cold = excluded.cold, error = excluded.error, init_us = excluded.init_us, memory_mib = excluded.memory_mib, executions = invocations.executions + excluded.executions, billed_ms = invocations.billed_ms + excluded.billed_ms, mib_ms = invocations.mib_ms + excluded.mib_ms, request_bytes = invocations.request_bytes + excluded.request_bytes, response_bytes = invocations.response_bytes + excluded.response_bytes, cpu_us = invocations.cpu_us + excluded.cpu_us"
            ));
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(backend("recording invocations"))?;
        }
        for chunk in logs.chunks(ROWS_PER_STATEMENT) {
            // `seq` is left to SQLite: it orders lines across all writers.
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO logs (invocation_id, namespace, function, version, at_us, stream, line) SELECT * FROM (",
            );
            push_padded_values(&mut insert, chunk, 7, |mut row, log| {
                row.push_bind(log.invocation_id.as_str())
                    .push_bind(log.namespace.as_str())
                    .push_bind(log.function.as_str())
                    .push_bind(log.version)
                    .push_bind(log.at_us)
                    .push_bind(log.stream.as_str())
                    .push_bind(&log.line);
            });
            insert.push(concat!(") AS v ", of_existing_functions!()));
            insert
                .build()
                .execute(&mut *tx)
                .await
                .map_err(backend("recording log lines"))?;
        }
        commit(tx).await
    }

    async fn get_invocation(
        &self,
        id: &InvocationId,
    ) -> Result<Option<InvocationRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            invocation_columns!(),
            " FROM invocations WHERE id = ?1"
        ))
        .bind(id.as_str())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend("reading invocation"))?;
        row.as_ref().map(invocation_from_row).transpose()
    }

    async fn list_invocations(
        &self,
        query: &InvocationQuery,
    ) -> Result<Vec<InvocationRecord>, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut tx, &query.namespace, &query.function).await?;
        // Filters are appended only when present so each shape gets a plan that uses the index.
        let mut sql = QueryBuilder::new(concat!(
            "SELECT ",
            invocation_columns!(),
            " FROM invocations WHERE namespace = "
        ));
        sql.push_bind(query.namespace.as_str());
        sql.push(" AND function = ")
            .push_bind(query.function.as_str());
        if let Some(before) = &query.before {
            sql.push(" AND id < ").push_bind(before.as_str());
        }
        sql.push(" ORDER BY id DESC LIMIT ")
            .push_bind(query.limit.min(MAX_INVOCATIONS_PER_PAGE));
        let rows = sql
            .build()
            .fetch_all(&mut *tx)
            .await
            .map_err(backend("listing invocations"))?;
        rows.iter().map(invocation_from_row).collect()
    }

    async fn read_logs(&self, query: &LogQuery) -> Result<Vec<LogLine>, StoreError> {
        let mut tx = self.read().await?;
        check_function(&mut tx, &query.namespace, &query.function).await?;
        let mut sql = QueryBuilder::new(concat!("SELECT ", log_columns!(), " FROM logs"));
        if query.invocation.is_some() {
            // Without statistics SQLite prefers the (namespace, function) index and would walk
            // every line of the function to find one invocation's.
            sql.push(" INDEXED BY logs_by_invocation");
        }
        sql.push(" WHERE namespace = ")
            .push_bind(query.namespace.as_str());
        sql.push(" AND function = ")
            .push_bind(query.function.as_str());
        if let Some(invocation) = &query.invocation {
            sql.push(" AND invocation_id = ")
                .push_bind(invocation.as_str());
        }
        if let Some(since_us) = query.since_us {
            sql.push(" AND at_us >= ").push_bind(since_us);
        }
        if let Some(after_seq) = query.after_seq {
            sql.push(" AND seq > ").push_bind(after_seq);
        }
        sql.push(" ORDER BY seq LIMIT ")
            .push_bind(query.limit.min(MAX_LOG_LINES_PER_READ));
        let rows = sql
            .build()
            .fetch_all(&mut *tx)
            .await
            .map_err(backend("reading logs"))?;
        rows.iter().map(log_from_row).collect()
    }

    async fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageRow>, StoreError> {
        crate::usage::sum(&self.reader, query).await
    }

    async fn apply_retention(&self, rules: &Retention) -> Result<Retained, StoreError> {
        crate::retention::apply(&self.writer, rules).await
    }
}

/// Functions of a namespace (or just `only`) with `latest` and their stored aliases, by name.
async fn function_infos(
    conn: &mut SqliteConnection,
    namespace: &Name,
    only: Option<&Name>,
) -> Result<Vec<FunctionInfo>, StoreError> {
    let mut functions = QueryBuilder::new(
        "SELECT namespace, name, created_at_us,
                (SELECT MAX(version) FROM versions v WHERE v.namespace = f.namespace AND v.function = f.name)
                    AS latest_version
         FROM functions f WHERE namespace = ",
    );
    functions.push_bind(namespace.as_str());
    let mut aliases =
        QueryBuilder::new("SELECT function, alias, version FROM aliases WHERE namespace = ");
    aliases.push_bind(namespace.as_str());
    if let Some(function) = only {
        functions.push(" AND name = ").push_bind(function.as_str());
        aliases
            .push(" AND function = ")
            .push_bind(function.as_str());
    }
    let function_rows = functions
        .build()
        .fetch_all(&mut *conn)
        .await
        .map_err(backend("listing functions"))?;
    let mut infos = BTreeMap::new();
    for row in &function_rows {
        let info = function_from_row(row)?;
        infos.insert(info.name.clone(), info);
    }
    let alias_rows = aliases
        .build()
        .fetch_all(&mut *conn)
        .await
        .map_err(backend("listing aliases"))?;
    for row in &alias_rows {
        let function = name_column(row, "function")?;
        // The alias rows are read in the same transaction, so their function is always there.
        if let Some(info) = infos.get_mut(&function) {
            info.aliases
                .insert(column(row, "alias")?, column(row, "version")?);
        }
    }
    Ok(infos.into_values().collect())
}

/// Adds the function unless it exists, within the namespace's `max_functions` quota; true when
/// it was added.
async fn insert_function(
    conn: &mut SqliteConnection,
    namespace: &Name,
    function: &Name,
    created_at_us: i64,
) -> Result<bool, StoreError> {
    let (exists, count, quota): (bool, i64, Option<i64>) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM functions WHERE namespace = ?1 AND name = ?2),
                (SELECT COUNT(*) FROM functions WHERE namespace = ?1),
                (SELECT json_extract(quotas, '$.max_functions') FROM namespaces WHERE name = ?1)",
    )
    .bind(namespace.as_str())
    .bind(function.as_str())
    .fetch_one(&mut *conn)
    .await
    .map_err(backend("checking the function quota"))?;
    if exists {
        return Ok(false);
    }
    if let Some(quota) = quota.filter(|quota| count >= *quota) {
        return Err(StoreError::QuotaExceeded(format!(
            "namespace {namespace} already holds {count} functions, its max_functions quota is {quota}"
        )));
    }
    sqlx::query("INSERT INTO functions (namespace, name, created_at_us) VALUES (?1, ?2, ?3)")
        .bind(namespace.as_str())
        .bind(function.as_str())
        .bind(created_at_us)
        .execute(&mut *conn)
        .await
        .map_err(backend("creating function"))?;
    Ok(true)
}

/// `NamespaceNotFound` unless the namespace exists.
pub(crate) async fn check_namespace(
    conn: &mut SqliteConnection,
    namespace: &Name,
) -> Result<(), StoreError> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM namespaces WHERE name = ?1)")
            .bind(namespace.as_str())
            .fetch_one(conn)
            .await
            .map_err(backend("checking namespace"))?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NamespaceNotFound(namespace.clone()))
    }
}

/// `NamespaceNotFound` or `FunctionNotFound`, whichever is precise; one query, one snapshot.
pub(crate) async fn check_function(
    conn: &mut SqliteConnection,
    namespace: &Name,
    function: &Name,
) -> Result<(), StoreError> {
    let (namespace_exists, function_exists): (bool, bool) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM namespaces WHERE name = ?1),
                EXISTS (SELECT 1 FROM functions WHERE namespace = ?1 AND name = ?2)",
    )
    .bind(namespace.as_str())
    .bind(function.as_str())
    .fetch_one(conn)
    .await
    .map_err(backend("checking function"))?;
    match (namespace_exists, function_exists) {
        (false, _) => Err(StoreError::NamespaceNotFound(namespace.clone())),
        (true, false) => Err(StoreError::FunctionNotFound {
            namespace: namespace.clone(),
            function: function.clone(),
        }),
        (true, true) => Ok(()),
    }
}

pub(crate) async fn commit(tx: Transaction<'static, Sqlite>) -> Result<(), StoreError> {
    tx.commit().await.map_err(backend("committing"))
}

fn function_from_row(row: &SqliteRow) -> Result<FunctionInfo, StoreError> {
    let latest_version: Option<u32> = column(row, "latest_version")?;
    let aliases = latest_version
        .map(|latest| (AliasName::LATEST.to_string(), latest))
        .into_iter()
        .collect();
    Ok(FunctionInfo {
        namespace: name_column(row, "namespace")?,
        name: name_column(row, "name")?,
        created_at_us: column(row, "created_at_us")?,
        latest_version,
        aliases,
    })
}

fn version_from_row(row: &SqliteRow) -> Result<VersionInfo, StoreError> {
    let settings: String = column(row, "settings")?;
    let settings: VersionSettings = serde_json::from_str(&settings)
        .map_err(|e| StoreError::Backend(format!("stored version settings are unreadable: {e}")))?;
    Ok(VersionInfo {
        namespace: name_column(row, "namespace")?,
        function: name_column(row, "function")?,
        version: column(row, "version")?,
        component_sha256: column(row, "component_sha256")?,
        component_size: column(row, "component_size")?,
        settings,
        created_at_us: column(row, "created_at_us")?,
    })
}

fn invocation_from_row(row: &SqliteRow) -> Result<InvocationRecord, StoreError> {
    Ok(InvocationRecord {
        id: parsed_column(row, "id", InvocationId::parse)?,
        namespace: name_column(row, "namespace")?,
        function: name_column(row, "function")?,
        version: column(row, "version")?,
        trigger: parsed_column(row, "trigger", Trigger::parse)?,
        started_at_us: column(row, "started_at_us")?,
        duration_us: column(row, "duration_us")?,
        status: parsed_column(row, "status", InvocationStatus::parse)?,
        http_status: column(row, "http_status")?,
        cold: column(row, "cold")?,
        error: column(row, "error")?,
        init_us: column(row, "init_us")?,
        cpu_us: column(row, "cpu_us")?,
        executions: column(row, "executions")?,
        memory_mib: column(row, "memory_mib")?,
        billed_ms: column(row, "billed_ms")?,
        request_bytes: column(row, "request_bytes")?,
        response_bytes: column(row, "response_bytes")?,
    })
}

fn log_from_row(row: &SqliteRow) -> Result<LogLine, StoreError> {
    Ok(LogLine {
        seq: column(row, "seq")?,
        invocation_id: parsed_column(row, "invocation_id", InvocationId::parse)?,
        namespace: name_column(row, "namespace")?,
        function: name_column(row, "function")?,
        version: column(row, "version")?,
        at_us: column(row, "at_us")?,
        stream: parsed_column(row, "stream", LogStream::parse)?,
        line: column(row, "line")?,
    })
}

pub(crate) fn column<'r, T: Decode<'r, Sqlite> + Type<Sqlite>>(
    row: &'r SqliteRow,
    name: &str,
) -> Result<T, StoreError> {
    row.try_get(name)
        .map_err(|e| StoreError::Backend(format!("reading column {name}: {e}")))
}

pub(crate) fn parsed_column<T>(
    row: &SqliteRow,
    name: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, StoreError> {
    let value: &str = column(row, name)?;
    parse(value).ok_or_else(|| {
        StoreError::Backend(format!("column {name} holds an unexpected value {value:?}"))
    })
}

pub(crate) fn name_column(row: &SqliteRow, name: &str) -> Result<Name, StoreError> {
    parsed_column(row, name, |value| Name::parse("stored", value).ok())
}

pub(crate) fn backend(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| StoreError::Backend(format!("{context}: {error}"))
}

/// SQLite integers are signed; a u64 beyond i64::MAX (292,000 years in µs) cannot occur in
/// practice, and saturating keeps a record batch from failing forever over one absurd value.
pub(crate) fn saturating_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store on a fresh file; keep the directory as long as the store.
    async fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("vireo.db"))
            .await
            .unwrap();
        (dir, store)
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
    }

    #[tokio::test]
    async fn a_write_sqlite_rolled_back_on_a_full_database_does_not_wedge_the_writer() {
        use vireo_core::{Queue as _, SealedSecret, SecretName, SecretStore as _};

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
            // Both ways of starting a write get a clean connection and commit.
            let function = Name::parse("test", &format!("f{round}")).unwrap();
            store
                .create_function(&namespace, &function)
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
        vireo_core::Tenancy::create_namespace(
            &store,
            &Name::parse("test", "later").unwrap(),
            &vireo_core::NamespaceQuotas::default(),
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
