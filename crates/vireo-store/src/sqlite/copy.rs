//! SQLite as one end of a copy: its columns from `pragma_table_info`, each declared INTEGER,
//! TEXT or BLOB (the tables are STRICT); object bytes as the files of its objects directory.

use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sqlx::{Sqlite, SqliteConnection};
use tokio::sync::mpsc;
use tokio_util::io::ReaderStream;
use vireo_core::{ObjectBody, StoreError};

use super::{SqliteStore, backend, objects};
use crate::copy::{Column, CopyDialect, Kind, Side, TxSide, typed_columns};
use crate::roles::Dialect as _;
use crate::roles::objects::BodyMeter;

/// Bytes per chunk read from an object file.
const READ_CHUNK: usize = 1024 * 1024;

/// The database at `path` as a copy's source (a read transaction) or target (a write one).
pub(crate) async fn copy_side(path: &Path, write: bool) -> Result<Box<dyn Side>, StoreError> {
    let store = SqliteStore::open(path).await?;
    let tx = if write {
        store.write().await?
    } else {
        store.read().await?
    };
    Ok(Box::new(TxSide {
        tx,
        writes: write,
        blobs: store.objects.clone(),
    }))
}

#[async_trait::async_trait]
impl CopyDialect for Sqlite {
    const INSERT_OVERRIDE: &'static str = "";

    async fn columns(conn: &mut SqliteConnection, table: &str) -> Result<Vec<Column>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT name, type FROM pragma_table_info($1) ORDER BY cid")
                .bind(table)
                .fetch_all(conn)
                .await
                .map_err(backend(format!("reading the columns of {table}")))?;
        typed_columns(table, rows, |declared| match declared {
            "INTEGER" => Some(Kind::Integer),
            "TEXT" => Some(Kind::Text),
            "BLOB" => Some(Kind::Bytes),
            _ => None,
        })
    }

    type BlobPlace = PathBuf;

    async fn read_blob(
        _: &mut SqliteConnection,
        dir: &PathBuf,
        blob: &str,
        chunks: mpsc::Sender<io::Result<Bytes>>,
    ) -> Result<(), StoreError> {
        let path = dir.join(blob);
        let file = tokio::fs::File::open(&path).await.map_err(|e| {
            StoreError::permanent(format!("reading the object bytes {}", path.display()), e)
        })?;
        let mut read = ReaderStream::with_capacity(file, READ_CHUNK);
        while let Some(chunk) = futures::StreamExt::next(&mut read).await {
            // A receiver that is gone has failed; its error is the one reported.
            if chunks.send(chunk).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// The file is complete under its name before the rows commit; if they never do, the
    /// store's next opening removes it with the other files no row names.
    async fn write_blob(
        _: &mut SqliteConnection,
        dir: &PathBuf,
        blob: &str,
        body: ObjectBody,
        meter: &mut BodyMeter,
    ) -> Result<(), StoreError> {
        objects::write_blob(dir, blob, body, meter).await
    }

    async fn after_writes(_: &mut SqliteConnection) -> Result<(), StoreError> {
        Ok(())
    }

    fn failed(context: String) -> impl FnOnce(sqlx::Error) -> StoreError {
        backend(context)
    }
}
