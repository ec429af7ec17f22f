//! Component bytes on disk, addressed by their sha256: identical deploys share one file and a
//! file's name proves what it holds.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// Uses `dir` (created if missing) for the blobs.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    pub fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// Where the blob with this hash lives; `sha` must come from [`BlobStore::put`] or the store.
    pub fn path(&self, sha: &str) -> PathBuf {
        self.dir.join(format!("{sha}.wasm"))
    }

    /// Stores `bytes` and returns their hex sha256. The blob appears whole or not at all: it is
    /// written to a temporary file in the same directory, synced, then renamed into place.
    pub async fn put(&self, bytes: &[u8]) -> io::Result<String> {
        let sha = Self::sha256_hex(bytes);
        let path = self.path(&sha);
        if tokio::fs::try_exists(&path).await? {
            return Ok(sha);
        }
        let dir = self.dir.clone();
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || write_atomically(&dir, &path, &bytes))
            .await
            .map_err(io::Error::other)??;
        Ok(sha)
    }

    /// The bytes of the blob with hash `sha`; `InvalidInput` unless `sha` is 64 lowercase hex
    /// digits, so no caller-supplied string can name a path outside the directory.
    pub async fn get(&self, sha: &str) -> io::Result<Vec<u8>> {
        let valid = sha.len() == 64 && sha.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !valid {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{sha:?} is not a sha256 (64 lowercase hex digits)"),
            ));
        }
        tokio::fs::read(self.path(sha)).await
    }
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    // The temporary file deletes itself if anything below fails; concurrent puts of the same
    // bytes each use their own and the last rename wins with identical content.
    let mut file = tempfile::Builder::new()
        .prefix(".incoming-")
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    // Sync the directory too, or the rename itself may not survive a crash.
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
