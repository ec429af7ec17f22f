//! The crate's one integration-test binary: the conformance suite on SQLite (`sqlite`, the only
//! backend-specific file), the blob store and the record writer.

mod batch;
mod blobs;
mod sqlite;
