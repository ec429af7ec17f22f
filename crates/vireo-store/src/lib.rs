//! Vireo's persistence. [`open`] chooses the backend from [`StorageConfig`] and returns the
//! [`Stores`] bundle: the catalog, the records, the durable async queue, schedules, tenants,
//! sealed secrets, key-value stores and the change feed, as `vireo-core`'s traits. Also here, above any backend:
//! the content-addressed blob store for component bytes, the background writer that batches
//! invocation records, and (feature `conformance`) the suite every backend passes.
//!
//! Every role is written once, for both databases, in `roles/` over a `Dialect`: a backend
//! (`sqlite/`, `postgres/`) is its connections and transactions, its migrations, and only what
//! its database really does its own way (SQL text where the dialects differ, how a batch is
//! written, how writers are kept apart). Statements run through `sql`, which binds values of
//! the schemas' few column types on any sqlx connection. Also shared, so backends cannot drift:
//! how values are kept in columns (`codec`) and read back (`rows`), the rules that decide writes
//! (`plan`), how driver errors are classified (`error`).

pub mod batch;
pub mod blobs;
mod changes;
mod codec;
#[cfg(feature = "conformance")]
pub mod conformance;
mod copy;
mod error;
mod function_sqlite;
mod plan;
mod postgres;
mod roles;
mod rows;
mod sql;
mod sqlite;
mod stores;

pub use batch::{RecordWriter, RecordWriterTask};
pub use blobs::BlobStore;
pub use copy::{CopyProgress, CopyReport, copy};
pub use function_sqlite::{FunctionDatabases, SQLITE_DIR};
pub use postgres::redacted as redacted_url;
pub use sqlite::{COMPONENTS_DIR, OBJECTS_DIR};
pub use stores::{PostgresConfig, StorageConfig, Stores, open};
