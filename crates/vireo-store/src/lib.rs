//! Vireo's persistence. [`open`] chooses the backend from [`StorageConfig`] and returns the
//! [`Stores`] bundle: the catalog, the records, the durable async queue, schedules, tenants,
//! sealed secrets and the change feed, as `vireo-core`'s traits. Also here, above any backend:
//! the content-addressed blob store for component bytes, the background writer that batches
//! invocation records, and (feature `conformance`) the suite every backend passes.
//!
//! A backend is a folder (`sqlite/`, `postgres/`) that implements the traits; what backends share stays
//! outside it, so they cannot drift: how values are kept in columns (`codec`), the rules that
//! decide writes (`plan`), how driver errors are classified (`error`).

pub mod batch;
pub mod blobs;
mod changes;
mod codec;
#[cfg(feature = "conformance")]
pub mod conformance;
mod copy;
mod error;
mod plan;
mod postgres;
mod rows;
mod sql;
mod sqlite;
mod stores;

pub use batch::{RecordWriter, RecordWriterTask};
pub use blobs::BlobStore;
pub use copy::{CopyProgress, CopyReport, copy};
pub use postgres::redacted as redacted_url;
pub use sqlite::COMPONENTS_DIR;
pub use stores::{PostgresConfig, StorageConfig, Stores, open};
