//! The PostgreSQL [`ComponentStore`]: component bytes in the database every node reaches, so a
//! version deployed through one node runs on all of them.

use std::io;

use vireo_core::{ComponentStore, check_component_sha256, component_sha256, verified_component};

use super::PgStore;
use crate::roles::SqlStore;

/// An existing row keeps its bytes unless they are damaged (their hash differs from the name):
/// storing the same bytes again repairs them, as it does on disk.
const PUT_COMPONENT: &str =
    "INSERT INTO components (sha256, bytes, stored_at_us) VALUES ($1, $2, $3)
    ON CONFLICT (sha256) DO UPDATE SET bytes = excluded.bytes, stored_at_us = excluded.stored_at_us
    WHERE sha256(components.bytes) <> sha256(excluded.bytes)";
const COMPONENT: &str = "SELECT bytes FROM components WHERE sha256 = $1";

#[async_trait::async_trait]
impl ComponentStore for SqlStore<PgStore> {
    async fn put_component(&self, bytes: &[u8]) -> io::Result<String> {
        let sha = component_sha256(bytes);
        sqlx::query(PUT_COMPONENT)
            .bind(&sha)
            .bind(bytes)
            .bind(vireo_core::time::now_micros())
            .execute(&self.pool)
            .await
            .map_err(|e| {
                io::Error::other(format!("storing component {sha} in the database: {e}"))
            })?;
        Ok(sha)
    }

    async fn component(&self, sha: &str) -> io::Result<Vec<u8>> {
        check_component_sha256(sha)?;
        let bytes: Option<Vec<u8>> = sqlx::query_scalar(COMPONENT)
            .bind(sha)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| {
                io::Error::other(format!("reading component {sha} from the database: {e}"))
            })?;
        let bytes = bytes.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("component {sha} is not in the database"),
            )
        })?;
        verified_component(
            bytes,
            sha,
            &format!("the database's row for component {sha}"),
        )
    }
}
