//! Component bytes, addressed by their sha256. Every node of a store reads the same bytes, so a
//! version deployed on one node runs on any other; each node compiles them into its own local
//! artifact cache on first use.

use std::io;

use sha2::{Digest as _, Sha256};

#[async_trait::async_trait]
pub trait ComponentStore: Send + Sync + 'static {
    /// Stores `bytes` and returns their hex sha256. Storing the same bytes again is a no-op
    /// (or repairs a damaged copy); the bytes are whole before any reader can see them.
    async fn put_component(&self, bytes: &[u8]) -> io::Result<String>;

    /// The bytes with hash `sha`: `InvalidInput` unless `sha` is 64 lowercase hex digits,
    /// `NotFound` when none are stored, `InvalidData` when the stored bytes do not have that
    /// hash (never handed out).
    async fn component(&self, sha: &str) -> io::Result<Vec<u8>>;
}

/// The hex sha256 that names `bytes`.
pub fn component_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `InvalidInput` unless `sha` is 64 lowercase hex digits: no caller-supplied string may name
/// another file or row.
pub fn check_component_sha256(sha: &str) -> io::Result<()> {
    let valid = sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if valid {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{sha:?} is not a sha256 (64 lowercase hex digits)"),
        ))
    }
}

/// `bytes` if their sha256 is `sha`, else `InvalidData` naming `place`.
pub fn verified_component(bytes: Vec<u8>, sha: &str, place: &str) -> io::Result<Vec<u8>> {
    let actual = component_sha256(&bytes);
    if actual == sha {
        return Ok(bytes);
    }
    tracing::warn!(%place, actual_sha256 = %actual, "refused a damaged component: its bytes do not match its name");
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the stored component {sha} is damaged; deploy it again to repair it"),
    ))
}
