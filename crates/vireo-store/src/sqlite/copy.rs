//! SQLite as one end of a copy: its columns from `pragma_table_info`, each declared INTEGER,
//! TEXT or BLOB (the tables are STRICT).

use std::path::Path;

use sqlx::{Sqlite, SqliteConnection};
use vireo_core::StoreError;

use super::{SqliteStore, backend};
use crate::copy::{Column, CopyDialect, Kind, Side, TxSide, typed_columns};
use crate::roles::Dialect as _;

/// The database at `path` as a copy's source (a read transaction) or target (a write one).
pub(crate) async fn copy_side(path: &Path, write: bool) -> Result<Box<dyn Side>, StoreError> {
    let store = SqliteStore::open(path).await?;
    let tx = if write {
        store.write().await?
    } else {
        store.read().await?
    };
    Ok(Box::new(TxSide { tx, writes: write }))
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

    async fn after_writes(_: &mut SqliteConnection) -> Result<(), StoreError> {
        Ok(())
    }

    fn failed(context: String) -> impl FnOnce(sqlx::Error) -> StoreError {
        backend(context)
    }
}
