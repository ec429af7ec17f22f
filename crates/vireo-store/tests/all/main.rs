//! The crate's one integration-test binary: the conformance suite on SQLite and on PostgreSQL
//! (`sqlite`, `postgres`, the only backend-specific files), the blob store and the record
//! writer.

mod batch;
mod blobs;
mod copy;
mod postgres;
mod sqlite;
