//! Object bytes as files in `objects/` beside the database, one per blob. A body is written to
//! a temporary file, synced and renamed to its blob's name before the object's row names it,
//! so a crash never leaves an object with half its bytes; replaced and deleted objects' files
//! are removed after the commit that let go of them. A crash between the two leaves a file no
//! row names, removed when the store next opens ([`sweep`]).

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use futures::StreamExt as _;
use sqlx::{Sqlite, SqlitePool, Transaction};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};
use tokio_util::io::ReaderStream;
use vireo_core::{ByteRange, ObjectBody, StoreError};

use super::SqliteStore;
use crate::roles::Dialect as _;
use crate::roles::objects::{BodyMeter, ObjectsDialect};
use crate::rows::column;
use crate::sql::query;

/// The directory beside the database that holds object bytes.
pub const OBJECTS_DIR: &str = "objects";

/// Files being written start with this.
const INCOMING_PREFIX: &str = ".incoming-";
/// Bytes per read of a file being streamed out.
const READ_BUFFER: usize = 64 * 1024;

const BLOBS: &str = "SELECT blob FROM objects";

#[async_trait::async_trait]
impl ObjectsDialect for SqliteStore {
    async fn store_body(
        &self,
        blob: &str,
        body: ObjectBody,
        meter: &mut BodyMeter,
    ) -> Result<Transaction<'static, Sqlite>, StoreError> {
        write_blob(&self.objects, blob, body, meter).await?;
        self.write().await
    }

    async fn discard_body(&self, blob: &str) {
        for name in [format!("{INCOMING_PREFIX}{blob}"), blob.to_string()] {
            remove(&self.objects.join(name)).await;
        }
    }

    async fn forget_body(&self, blob: &str) {
        remove(&self.objects.join(blob)).await;
    }

    async fn read_body(
        &self,
        blob: &str,
        range: ByteRange,
    ) -> Result<Option<ObjectBody>, StoreError> {
        // Open before answering: a file removed after this stays readable to the open handle.
        let mut file = match tokio::fs::File::open(self.objects.join(blob)).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::unavailable("opening object bytes", e)),
        };
        file.seek(io::SeekFrom::Start(range.start))
            .await
            .map_err(|e| StoreError::unavailable("opening object bytes", e))?;
        let reader = file.take(range.len());
        Ok(Some(
            ReaderStream::with_capacity(reader, READ_BUFFER).boxed(),
        ))
    }
}

/// Writes `body` whole as the file `blob` in `dir`: to a temporary file, synced, then renamed
/// and the directory synced, so the name never holds half the bytes.
pub(super) async fn write_blob(
    dir: &Path,
    blob: &str,
    mut body: ObjectBody,
    meter: &mut BodyMeter,
) -> Result<(), StoreError> {
    let incoming = dir.join(format!("{INCOMING_PREFIX}{blob}"));
    let failed = |e: io::Error| StoreError::unavailable("writing object bytes", e);
    let mut file = tokio::fs::File::create(&incoming).await.map_err(failed)?;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(StoreError::ObjectBodyFailed)?;
        meter.take(&chunk)?;
        file.write_all(&chunk).await.map_err(failed)?;
    }
    file.sync_all().await.map_err(failed)?;
    drop(file);
    tokio::fs::rename(&incoming, dir.join(blob))
        .await
        .map_err(failed)?;
    sync_dir(dir).await.map_err(failed)
}

/// The objects directory of the database at `db`, created if missing, after removing files no
/// object row names: temporary files of writes a crash cut off, and bytes of objects replaced
/// or deleted just before a crash. Only the server holding the data directory's lock opens
/// the store, so none belongs to a write still running.
pub(super) async fn open_dir(db: &Path, writer: &SqlitePool) -> Result<PathBuf, StoreError> {
    let dir = db.parent().unwrap_or(Path::new(".")).join(OBJECTS_DIR);
    let failed = |e: io::Error| {
        StoreError::permanent(
            format!("opening the objects directory {}", dir.display()),
            e,
        )
    };
    tokio::fs::create_dir_all(&dir).await.map_err(failed)?;
    let mut conn = crate::sql::acquire(writer, "acquiring the writer").await?;
    let named: HashSet<String> = query(BLOBS)
        .fetch_all(&mut *conn, "listing object blobs")
        .await?
        .iter()
        .map(|row| column::<String>(row, 0))
        .collect::<Result<_, _>>()?;
    let mut entries = tokio::fs::read_dir(&dir).await.map_err(failed)?;
    let mut removed = 0;
    while let Some(entry) = entries.next_entry().await.map_err(failed)? {
        if !named.contains(entry.file_name().to_string_lossy().as_ref()) {
            tokio::fs::remove_file(entry.path()).await.map_err(failed)?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(dir = %dir.display(), removed, "removed object files no object names, left by an interrupted write");
    }
    Ok(dir)
}

/// Syncs the directory, or a rename into it may not survive a crash.
async fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    tokio::fs::File::open(dir).await?.sync_all().await?;
    Ok(())
}

async fn remove(path: &Path) {
    match tokio::fs::remove_file(path).await {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        // Left for the sweep at the next start.
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "could not remove object bytes")
        }
    }
}
