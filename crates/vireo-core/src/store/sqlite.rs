//! SQLite databases of functions: named databases per namespace, the data behind Spin's
//! `fermyon:spin/sqlite` and `spin:sqlite` interfaces and `vireo sqlite`. `default` exists in
//! every namespace without being created (its file appears with its first write). They are
//! files on one node, so only a server on the embedded store offers them; see ARCHITECTURE.md.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::names::Name;

/// One value of a row or a parameter: SQLite's five storage classes.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

impl SqlValue {
    /// Bytes it occupies in a result: what the result limit and the invocation's tally count.
    pub fn size(&self) -> usize {
        match self {
            Self::Integer(_) | Self::Real(_) => 8,
            Self::Text(text) => text.len(),
            Self::Blob(blob) => blob.len(),
            Self::Null => 0,
        }
    }
}

/// What one statement returned, and what it changed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SqlRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
    /// Rows the statement inserted, updated or deleted (0 for one that changes none).
    pub changes: u64,
    /// The rowid of the connection's most recent successful INSERT, 0 before any.
    pub last_insert_rowid: i64,
}

impl SqlRows {
    /// The bytes of its values.
    pub fn size(&self) -> usize {
        self.rows.iter().flatten().map(SqlValue::size).sum()
    }
}

/// How far one statement may go: its result and its running time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlBounds {
    pub max_rows: usize,
    pub max_result_bytes: usize,
    /// It is interrupted once it has run this long.
    pub timeout: Duration,
}

/// Why a statement did not run, in the words the interfaces carry to the guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlFailure {
    /// The database is at its `max_database_mib`; nothing of the statement was kept.
    #[error("the database is full (sqlite.max_database_mib)")]
    DatabaseFull,
    /// Anything else, with SQLite's message or the limit it passed.
    #[error("{0}")]
    Failed(String),
}

/// A database as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqliteDatabaseInfo {
    pub name: Name,
    /// Its files on disk together (database and write-ahead log).
    pub bytes: u64,
}

/// The server's bounds on functions' SQLite databases (`[sqlite]` in its config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteLimits {
    /// The most one database may hold; a write past it fails with `database-full`.
    pub max_database_mib: u64,
    /// The most databases a namespace may have, `default` included.
    pub max_databases_per_namespace: usize,
    /// Connections kept open per database, shared by every function using it.
    pub pool_size: usize,
    /// How long a statement waits for another connection's write lock before it fails.
    pub busy_timeout_ms: u64,
}

impl Default for SqliteLimits {
    fn default() -> Self {
        Self {
            max_database_mib: 1024,
            max_databases_per_namespace: 16,
            pool_size: 4,
            busy_timeout_ms: 5_000,
        }
    }
}

/// A namespace's SQLite databases, one file each.
#[async_trait::async_trait]
pub trait SqliteDatabases: Send + Sync + 'static {
    /// Every database of the namespace by name, with its size; `default` always among them.
    async fn list(&self, namespace: &Name) -> Result<Vec<SqliteDatabaseInfo>, StoreError>;

    /// An empty database; `SqliteDatabaseExists` if it exists (`default` always does).
    async fn create(&self, namespace: &Name, name: &Name)
    -> Result<SqliteDatabaseInfo, StoreError>;

    /// Deletes the database and what it holds; `default` is emptied, and exists still.
    async fn delete(&self, namespace: &Name, name: &Name) -> Result<(), StoreError>;

    /// A connection to the database, `SqliteDatabaseNotFound` if it does not exist; it waits
    /// at most `wait` for one of the database's pooled connections.
    async fn connect(
        &self,
        namespace: &Name,
        name: &Name,
        wait: Duration,
    ) -> Result<Box<dyn SqlConnection>, StoreError>;

    /// Removes what is left of a deleted namespace's databases.
    async fn forget_namespace(&self, namespace: &Name) -> Result<(), StoreError>;
}

/// One connection to a database, lent until dropped. A transaction it leaves open is rolled
/// back before the connection is lent again.
#[async_trait::async_trait]
pub trait SqlConnection: Send {
    async fn execute(
        &mut self,
        statement: &str,
        parameters: Vec<SqlValue>,
        bounds: SqlBounds,
    ) -> Result<SqlRows, SqlFailure>;
}
