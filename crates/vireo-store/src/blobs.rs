//! Component bytes on disk, addressed by their sha256: identical deploys share one file, and a
//! file's name says what it must hold — every read checks that it does, so damaged or swapped
//! bytes are never handed out (and never compiled and run as a function).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use vireo_core::{ComponentStore, check_component_sha256, component_sha256, verified_component};

/// Files being written start with this; any found at start belonged to a write a crash cut off.
const INCOMING_PREFIX: &str = ".incoming-";

#[derive(Debug, Clone)]
pub struct BlobStore {
    dir: PathBuf,
}

impl BlobStore {
    /// Uses `dir` (created if missing) for the blobs, after removing the temporary files of
    /// writes a crash cut off: only the server holding the data directory's lock opens it, so
    /// none belongs to a write still running.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        remove_unfinished_writes(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// Where the blob with this hash lives; `sha` must come from [`BlobStore::put`] or the store.
    pub fn path(&self, sha: &str) -> PathBuf {
        self.dir.join(format!("{sha}.wasm"))
    }

    /// Stores `bytes` and returns their hex sha256. The blob appears whole or not at all: it is
    /// written to a temporary file in the same directory, synced, then renamed into place. A
    /// stored copy is kept only if it is intact, so storing the bytes again repairs a damaged one.
    pub async fn put(&self, bytes: &[u8]) -> io::Result<String> {
        let sha = component_sha256(bytes);
        let path = self.path(&sha);
        match self.get(&sha).await {
            Ok(_) => return Ok(sha),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(blob = %path.display(), "replacing a damaged component with the same bytes stored again");
            }
            Err(e) => return Err(e),
        }
        let dir = self.dir.clone();
        let bytes = bytes.to_vec();
        tokio::task::spawn_blocking(move || write_atomically(&dir, &path, &bytes))
            .await
            .map_err(io::Error::other)??;
        Ok(sha)
    }

    /// The bytes of the blob with hash `sha`; `InvalidInput` unless `sha` is 64 lowercase hex
    /// digits, so no caller-supplied string can name a path outside the directory, and
    /// `InvalidData` (logged) when the file does not hold bytes with that hash. A damaged blob
    /// stays for inspection until the same bytes are stored again.
    pub async fn get(&self, sha: &str) -> io::Result<Vec<u8>> {
        check_component_sha256(sha)?;
        let (path, sha) = (self.path(sha), sha.to_string());
        tokio::task::spawn_blocking(move || read_checked(&path, &sha))
            .await
            .map_err(io::Error::other)?
    }
}

/// The bytes at `path` if their sha256 is `sha`.
fn read_checked(path: &Path, sha: &str) -> io::Result<Vec<u8>> {
    verified_component(std::fs::read(path)?, sha, &path.display().to_string())
}

#[async_trait::async_trait]
impl ComponentStore for BlobStore {
    async fn put_component(&self, bytes: &[u8]) -> io::Result<String> {
        self.put(bytes).await
    }

    async fn component(&self, sha: &str) -> io::Result<Vec<u8>> {
        self.get(sha).await
    }
}

/// Removes `.incoming-*` files: temporary files of writes that never finished.
fn remove_unfinished_writes(dir: &Path) -> io::Result<()> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(INCOMING_PREFIX)
        {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(dir = %dir.display(), removed, "removed temporary component files left by an interrupted write");
    }
    Ok(())
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> io::Result<()> {
    // The temporary file deletes itself if anything below fails; concurrent puts of the same
    // bytes each use their own and the last rename wins with identical content.
    let mut file = tempfile::Builder::new()
        .prefix(INCOMING_PREFIX)
        .tempfile_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    // Sync the directory too, or the rename itself may not survive a crash.
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
