//! Vireo's persistence: the SQLite [`Store`](vireo_core::Store), the content-addressed blob store
//! for component bytes, and the background writer that batches invocation records.

pub mod batch;
pub mod blobs;
pub mod sqlite;

pub use batch::{RecordWriter, RecordWriterTask};
pub use blobs::BlobStore;
pub use sqlite::SqliteStore;
