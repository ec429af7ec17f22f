//! Vireo's persistence: the SQLite [`Store`](vireo_core::Store), the content-addressed blob store
//! for component bytes, the background writer that batches invocation records, and the durable
//! async queue, cron schedules and sealed secrets (implemented on the same SQLite store).

pub mod batch;
pub mod blobs;
mod queue;
mod retention;
mod rows;
mod schedules;
mod secrets;
pub mod sqlite;
mod tenancy;
mod usage;

pub use batch::{RecordWriter, RecordWriterTask};
pub use blobs::BlobStore;
pub use sqlite::SqliteStore;
