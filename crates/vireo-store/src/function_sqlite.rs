//! Functions' SQLite databases: one file per database under `sqlite/<namespace>/` in the data
//! directory, with a few pooled connections each. Guests' SQL is hostile, so every connection
//! is held to its file: no `ATTACH` (nor `VACUUM INTO`, which attaches), no pragma that could
//! move it past its size or out of its journal, strings and blobs of bounded length, and a
//! progress handler that interrupts a statement at its deadline or when its caller gave up.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::limits::Limit;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vireo_core::{
    Name, SqlBounds, SqlConnection, SqlFailure, SqlRows, SqlValue, SqliteDatabaseInfo,
    SqliteDatabases, SqliteLimits, StoreError,
};

/// The directory under the data directory that holds them.
pub const SQLITE_DIR: &str = "sqlite";

/// The longest text or blob one value may be: what SQLite may build in memory for one.
const MAX_VALUE_BYTES: i32 = 32 << 20;

/// VM instructions between two checks of a statement's deadline.
const PROGRESS_STEPS: i32 = 10_000;

/// Pragmas a guest may run: ones that only read, and two that change only its own session or
/// an integer the application owns.
const READ_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
    "page_count",
    "page_size",
    "freelist_count",
    "data_version",
    "schema_version",
    "foreign_keys",
    "user_version",
];
const WRITE_PRAGMAS: &[&str] = &["foreign_keys", "user_version"];

/// Every namespace's databases on this node.
pub struct FunctionDatabases {
    root: PathBuf,
    limits: SqliteLimits,
    /// The databases connected to since they were last created or deleted.
    pools: Mutex<HashMap<(Name, Name), Arc<Pool>>>,
}

/// One database's idle connections, and the slots that bound how many are lent at once.
struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    slots: Arc<Semaphore>,
    /// Set when the database is deleted: its connections are closed, not kept.
    deleted: AtomicBool,
}

impl FunctionDatabases {
    /// The databases under `data_dir/sqlite`.
    pub fn new(data_dir: &Path, limits: SqliteLimits) -> Self {
        Self {
            root: data_dir.join(SQLITE_DIR),
            limits,
            pools: Mutex::default(),
        }
    }

    fn path(&self, namespace: &Name, name: &Name) -> PathBuf {
        self.root
            .join(namespace.as_str())
            .join(format!("{name}.db"))
    }

    fn pool(&self, namespace: &Name, name: &Name) -> Arc<Pool> {
        let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
        pools
            .entry((namespace.clone(), name.clone()))
            .or_insert_with(|| {
                Arc::new(Pool {
                    path: self.path(namespace, name),
                    idle: Mutex::default(),
                    slots: Arc::new(Semaphore::new(self.limits.pool_size.max(1))),
                    deleted: AtomicBool::new(false),
                })
            })
            .clone()
    }

    /// Closes the database's connections for good: they are not lent again.
    fn retire(&self, namespace: &Name, name: &Name) {
        let retired = self
            .pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(namespace.clone(), name.clone()));
        if let Some(pool) = retired {
            pool.deleted.store(true, Ordering::Release);
            pool.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    fn listed(&self, namespace: &Name) -> Result<Vec<SqliteDatabaseInfo>, StoreError> {
        let directory = self.root.join(namespace.as_str());
        let mut listed = vec![SqliteDatabaseInfo {
            name: Name::default_kv_store(),
            bytes: database_bytes(&directory.join("default.db")),
        }];
        let entries = match std::fs::read_dir(&directory) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(listed),
            Err(e) => return Err(StoreError::unavailable("listing SQLite databases", e)),
        };
        for entry in entries {
            let entry =
                entry.map_err(|e| StoreError::unavailable("listing SQLite databases", e))?;
            let file = entry.file_name();
            let Some(stem) = file.to_str().and_then(|f| f.strip_suffix(".db")) else {
                continue;
            };
            match Name::parse("database", stem) {
                Ok(name) if name != Name::default_kv_store() => listed.push(SqliteDatabaseInfo {
                    bytes: database_bytes(&entry.path()),
                    name,
                }),
                _ => {}
            }
        }
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(listed)
    }

    fn open_settings(&self) -> OpenSettings {
        OpenSettings {
            max_pages: self.limits.max_database_mib.saturating_mul(256),
            busy_timeout: Duration::from_millis(self.limits.busy_timeout_ms),
        }
    }
}

/// The size of a database's files, 0 when it has none.
fn database_bytes(path: &Path) -> u64 {
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
    size(path) + size(&wal_path(path))
}

fn wal_path(path: &Path) -> PathBuf {
    sibling(path, "-wal")
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Removes a database's files; ones already gone are fine.
fn remove_files(path: &Path) -> std::io::Result<()> {
    for file in [path.to_path_buf(), wal_path(path), sibling(path, "-shm")] {
        match std::fs::remove_file(&file) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// How each connection is opened.
#[derive(Clone, Copy)]
struct OpenSettings {
    max_pages: u64,
    busy_timeout: Duration,
}

/// A connection to `path` held to its file; `create` makes a missing file (and its directory),
/// otherwise a missing file is `None`.
fn open(path: &Path, create: bool, settings: OpenSettings) -> rusqlite::Result<Option<Connection>> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        }
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    } else if !path.exists() {
        return Ok(None);
    }
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(settings.busy_timeout)?;
    connection.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
    connection.pragma_update_and_check(None, "max_page_count", settings.max_pages, |_| Ok(()))?;
    connection.set_limit(Limit::SQLITE_LIMIT_ATTACHED, 0);
    connection.set_limit(Limit::SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES);
    connection.authorizer(Some(authorize));
    Ok(Some(connection))
}

/// What a statement may do: anything inside its own database, but no attaching another file
/// and only the pragmas that cannot change where or how much it stores.
fn authorize(context: AuthContext<'_>) -> Authorization {
    match context.action {
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Authorization::Deny,
        AuthAction::Pragma {
            pragma_name,
            pragma_value,
        } => {
            let name = pragma_name.to_ascii_lowercase();
            let allowed = match pragma_value {
                None => READ_PRAGMAS.contains(&name.as_str()),
                Some(_) => WRITE_PRAGMAS.contains(&name.as_str()),
            };
            if allowed {
                Authorization::Allow
            } else {
                Authorization::Deny
            }
        }
        _ => Authorization::Allow,
    }
}

fn io_failure(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |e| StoreError::unavailable(doing, e)
}

async fn blocking<T: Send + 'static>(
    doing: &'static str,
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| StoreError::unavailable(doing, e))?
}

#[async_trait::async_trait]
impl SqliteDatabases for FunctionDatabases {
    async fn list(&self, namespace: &Name) -> Result<Vec<SqliteDatabaseInfo>, StoreError> {
        self.listed(namespace)
    }

    async fn create(
        &self,
        namespace: &Name,
        name: &Name,
    ) -> Result<SqliteDatabaseInfo, StoreError> {
        let listed = self.listed(namespace)?;
        if listed.iter().any(|database| database.name == *name) {
            return Err(StoreError::SqliteDatabaseExists {
                namespace: namespace.clone(),
                database: name.clone(),
            });
        }
        let max = self.limits.max_databases_per_namespace;
        if listed.len() >= max {
            return Err(StoreError::QuotaExceeded(format!(
                "namespace {namespace} already has {max} SQLite databases (sqlite.max_databases_per_namespace)"
            )));
        }
        self.retire(namespace, name);
        let path = self.path(namespace, name);
        let settings = self.open_settings();
        blocking("creating a SQLite database", move || {
            open(&path, true, settings).map_err(io_failure("creating a SQLite database"))?;
            Ok(())
        })
        .await?;
        Ok(SqliteDatabaseInfo {
            bytes: database_bytes(&self.path(namespace, name)),
            name: name.clone(),
        })
    }

    async fn delete(&self, namespace: &Name, name: &Name) -> Result<(), StoreError> {
        let path = self.path(namespace, name);
        if *name != Name::default_kv_store() && !path.exists() {
            return Err(StoreError::SqliteDatabaseNotFound {
                namespace: namespace.clone(),
                database: name.clone(),
            });
        }
        self.retire(namespace, name);
        remove_files(&path).map_err(|e| StoreError::unavailable("deleting a SQLite database", e))
    }

    async fn connect(
        &self,
        namespace: &Name,
        name: &Name,
        wait: Duration,
    ) -> Result<Box<dyn SqlConnection>, StoreError> {
        // Asked first, so names that were never created leave no pool behind.
        if *name != Name::default_kv_store() && !self.path(namespace, name).exists() {
            return Err(StoreError::SqliteDatabaseNotFound {
                namespace: namespace.clone(),
                database: name.clone(),
            });
        }
        let pool = self.pool(namespace, name);
        let slot = tokio::time::timeout(wait, pool.slots.clone().acquire_owned())
            .await
            .map_err(|_| {
                StoreError::unavailable(
                    "waiting for a SQLite connection",
                    format!(
                        "all {} connections of the database stayed busy for {} ms (sqlite.pool_size)",
                        self.limits.pool_size,
                        wait.as_millis()
                    ),
                )
            })?
            .map_err(|e| StoreError::unavailable("waiting for a SQLite connection", e))?;
        let idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let connection = match idle {
            Some(connection) => connection,
            None => {
                let path = pool.path.clone();
                let create = *name == Name::default_kv_store();
                let settings = self.open_settings();
                blocking("opening a SQLite database", move || {
                    open(&path, create, settings).map_err(io_failure("opening a SQLite database"))
                })
                .await?
                .ok_or_else(|| StoreError::SqliteDatabaseNotFound {
                    namespace: namespace.clone(),
                    database: name.clone(),
                })?
            }
        };
        Ok(Box::new(Lent {
            connection: Some(connection),
            pool,
            _slot: slot,
        }))
    }

    async fn forget_namespace(&self, namespace: &Name) -> Result<(), StoreError> {
        let names: Vec<Name> = self
            .pools
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .filter(|(owner, _)| owner == namespace)
            .map(|(_, name)| name.clone())
            .collect();
        for name in names {
            self.retire(namespace, &name);
        }
        match std::fs::remove_dir_all(self.root.join(namespace.as_str())) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StoreError::unavailable("deleting SQLite databases", e))
            }
            _ => Ok(()),
        }
    }
}

/// A connection lent to one caller; `None` while a statement runs on it, and for good if that
/// statement's caller went away.
struct Lent {
    connection: Option<Connection>,
    pool: Arc<Pool>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Lent {
    /// Back to the pool if it is in no transaction and its database still exists; otherwise
    /// closed, which rolls back whatever the caller left open.
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take()
            && connection.is_autocommit()
            && !self.pool.deleted.load(Ordering::Acquire)
        {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(connection);
        }
    }
}

/// Set when the caller of a running statement goes away, which interrupts it.
struct Abandoned(Arc<AtomicBool>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[async_trait::async_trait]
impl SqlConnection for Lent {
    async fn execute(
        &mut self,
        statement: &str,
        parameters: Vec<SqlValue>,
        bounds: SqlBounds,
    ) -> Result<SqlRows, SqlFailure> {
        let connection = self.connection.take().ok_or_else(|| {
            SqlFailure::Failed(
                "the connection was closed when a statement on it was abandoned".into(),
            )
        })?;
        let statement = statement.to_string();
        let abandoned = Arc::new(AtomicBool::new(false));
        let _guard = Abandoned(abandoned.clone());
        let (connection, result) = tokio::task::spawn_blocking(move || {
            let deadline = Instant::now() + bounds.timeout;
            connection.progress_handler(
                PROGRESS_STEPS,
                Some(move || abandoned.load(Ordering::Acquire) || Instant::now() >= deadline),
            );
            let result = run(&connection, &statement, parameters, bounds);
            connection.progress_handler(0, None::<fn() -> bool>);
            (connection, result)
        })
        .await
        .map_err(|e| SqlFailure::Failed(format!("the statement failed: {e}")))?;
        self.connection = Some(connection);
        result
    }
}

/// Runs one statement and collects its rows within `bounds`.
fn run(
    connection: &Connection,
    statement: &str,
    parameters: Vec<SqlValue>,
    bounds: SqlBounds,
) -> Result<SqlRows, SqlFailure> {
    match collect(connection, statement, parameters, bounds) {
        Ok(rows) => Ok(rows),
        Err(Stopped::Sqlite(error)) => Err(failure(error, bounds.timeout)),
        Err(Stopped::Limit(message)) => Err(SqlFailure::Failed(message)),
    }
}

/// Why collecting a statement's rows stopped: SQLite's error, or a limit of `SqlBounds`.
enum Stopped {
    Sqlite(rusqlite::Error),
    Limit(String),
}

impl From<rusqlite::Error> for Stopped {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sqlite(error)
    }
}

fn collect(
    connection: &Connection,
    statement: &str,
    parameters: Vec<SqlValue>,
    bounds: SqlBounds,
) -> Result<SqlRows, Stopped> {
    // One statement per call, as the interfaces mean it: a second one is refused rather than
    // silently left out, and text with none (spaces, comments) runs nothing.
    let mut statements = rusqlite::Batch::new(connection, statement);
    let Some(mut prepared) = statements.next()? else {
        return Ok(SqlRows {
            last_insert_rowid: connection.last_insert_rowid(),
            ..SqlRows::default()
        });
    };
    if statements.next()?.is_some() {
        return Err(Stopped::Limit(
            "the text holds more than one statement: run them one at a time".to_string(),
        ));
    }
    let columns: Vec<String> = prepared
        .column_names()
        .into_iter()
        .map(str::to_string)
        .collect();
    let values: Vec<Value> = parameters.into_iter().map(to_sqlite).collect();
    let mut rows = prepared.query(rusqlite::params_from_iter(values))?;
    let mut collected = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = rows.next()? {
        if collected.len() == bounds.max_rows {
            return Err(Stopped::Limit(format!(
                "the query returned more than {} rows (connections.max_rows)",
                bounds.max_rows
            )));
        }
        let values = (0..columns.len())
            .map(|at| row.get_ref(at).map(from_sqlite))
            .collect::<Result<Vec<_>, _>>()?;
        bytes += values.iter().map(SqlValue::size).sum::<usize>();
        if bytes > bounds.max_result_bytes {
            return Err(Stopped::Limit(format!(
                "the result is larger than {} bytes (connections.max_result_bytes)",
                bounds.max_result_bytes
            )));
        }
        collected.push(values);
    }
    drop(rows);
    Ok(SqlRows {
        columns,
        rows: collected,
        changes: connection.changes(),
        last_insert_rowid: connection.last_insert_rowid(),
    })
}

/// SQLite's error as the guest sees it: a full database is its own case, an interrupted
/// statement says why, anything else carries SQLite's message.
fn failure(error: rusqlite::Error, timeout: Duration) -> SqlFailure {
    match error.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => SqlFailure::DatabaseFull,
        Some(ErrorCode::OperationInterrupted) => SqlFailure::Failed(format!(
            "the statement was interrupted: it ran longer than {} ms or its invocation ended",
            timeout.as_millis()
        )),
        Some(ErrorCode::AuthorizationForStatementDenied) => SqlFailure::Failed(format!(
            "{error}: functions may not attach other databases or change how theirs is stored"
        )),
        _ => SqlFailure::Failed(error.to_string()),
    }
}

fn to_sqlite(value: SqlValue) -> Value {
    match value {
        SqlValue::Integer(integer) => Value::Integer(integer),
        SqlValue::Real(real) => Value::Real(real),
        SqlValue::Text(text) => Value::Text(text),
        SqlValue::Blob(blob) => Value::Blob(blob),
        SqlValue::Null => Value::Null,
    }
}

fn from_sqlite(value: ValueRef<'_>) -> SqlValue {
    match value {
        ValueRef::Integer(integer) => SqlValue::Integer(integer),
        ValueRef::Real(real) => SqlValue::Real(real),
        ValueRef::Text(text) => SqlValue::Text(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(blob) => SqlValue::Blob(blob.to_vec()),
        ValueRef::Null => SqlValue::Null,
    }
}

#[cfg(test)]
mod tests;
