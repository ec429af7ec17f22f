//! One end of a copy as one transaction on either database: the source's gives one snapshot to
//! read, the target's commits everything written or nothing. What differs per database (how
//! a table's columns are found, inserting into identity columns, what follows the last write,
//! where object bytes live) is the [`CopyDialect`] each backend implements.

use std::io;

use bytes::Bytes;
use futures::TryStreamExt as _;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Type};
use tokio::sync::mpsc;
use vireo_core::{ObjectBody, StoreError};

use super::{BATCH_ROWS, Cell, Column, Side, bind_rows, cells, insert_rows, quoted, select_all};
use crate::roles::objects::BodyMeter;
use crate::rows::Columns;

/// What a database does its own way in a copy.
#[async_trait::async_trait]
pub(crate) trait CopyDialect: Database {
    /// Added after an insert's column list (PostgreSQL must be told to keep given identities).
    const INSERT_OVERRIDE: &'static str;

    /// The columns of `table` with their kinds, in table order.
    async fn columns(conn: &mut Self::Connection, table: &str) -> Result<Vec<Column>, StoreError>;

    /// Where this database keeps object bytes besides its rows (SQLite: the objects directory).
    type BlobPlace: Send + Sync;

    /// Sends the bytes of `blob`, in order, as this end's snapshot holds them.
    async fn read_blob(
        conn: &mut Self::Connection,
        place: &Self::BlobPlace,
        blob: &str,
        chunks: mpsc::Sender<io::Result<Bytes>>,
    ) -> Result<(), StoreError>;

    /// Stores `body` as `blob` (counted and hashed by `meter`) for an object row this end
    /// writes: visible with that row's commit, or at least never under its name half-written.
    async fn write_blob(
        conn: &mut Self::Connection,
        place: &Self::BlobPlace,
        blob: &str,
        body: ObjectBody,
        meter: &mut BodyMeter,
    ) -> Result<(), StoreError>;

    /// Runs once everything is written, before the commit.
    async fn after_writes(conn: &mut Self::Connection) -> Result<(), StoreError>;

    /// Classifies a failure of `context`.
    fn failed(context: String) -> impl FnOnce(sqlx::Error) -> StoreError;
}

/// A transaction used as one end of a copy.
pub(crate) struct TxSide<DB: CopyDialect> {
    pub(crate) tx: sqlx::Transaction<'static, DB>,
    /// Whether this end is written, so its transaction commits.
    pub(crate) writes: bool,
    pub(crate) blobs: DB::BlobPlace,
}

#[async_trait::async_trait]
impl<DB> Side for TxSide<DB>
where
    DB: CopyDialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    DB::Row: Columns,
    usize: ColumnIndex<DB::Row>,
    for<'r> i64: Decode<'r, DB> + Type<DB>,
    for<'a> Option<i64>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<String>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<Vec<u8>>: Encode<'a, DB> + Type<DB>,
    for<'a> Option<bool>: Encode<'a, DB> + Type<DB>,
{
    async fn columns(&mut self, table: &str) -> Result<Vec<Column>, StoreError> {
        DB::columns(&mut *self.tx, table).await
    }

    async fn count(&mut self, table: &str) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", quoted(table)))
            .fetch_one(&mut *self.tx)
            .await
            .map_err(DB::failed(format!("counting the rows of {table}")))?;
        Ok(count.unsigned_abs())
    }

    async fn read(
        &mut self,
        table: &str,
        columns: &[Column],
        batches: mpsc::Sender<Vec<Vec<Cell>>>,
    ) -> Result<(), StoreError> {
        let select = select_all(table, columns);
        let mut rows = sqlx::query(&select).fetch(&mut *self.tx);
        let mut batch = Vec::with_capacity(BATCH_ROWS);
        while let Some(row) = rows
            .try_next()
            .await
            .map_err(DB::failed(format!("reading {table}")))?
        {
            batch.push(cells(&row, columns)?);
            // A receiver that is gone has failed; its error is the one reported.
            if batch.len() == BATCH_ROWS && batches.send(std::mem::take(&mut batch)).await.is_err()
            {
                return Ok(());
            }
        }
        if !batch.is_empty() {
            let _ = batches.send(batch).await;
        }
        Ok(())
    }

    async fn write(
        &mut self,
        table: &str,
        columns: &[Column],
        rows: Vec<Vec<Cell>>,
    ) -> Result<(), StoreError> {
        let sql = insert_rows(table, columns, rows.len(), DB::INSERT_OVERRIDE);
        bind_rows(sqlx::query(&sql), columns, rows)
            .execute(&mut *self.tx)
            .await
            .map_err(DB::failed(format!("writing {table}")))?;
        Ok(())
    }

    async fn clear(&mut self, table: &str) -> Result<(), StoreError> {
        sqlx::query(&format!("DELETE FROM {}", quoted(table)))
            .execute(&mut *self.tx)
            .await
            .map_err(DB::failed(format!("emptying {table}")))?;
        Ok(())
    }

    async fn read_blob(
        &mut self,
        blob: &str,
        chunks: mpsc::Sender<io::Result<Bytes>>,
    ) -> Result<(), StoreError> {
        DB::read_blob(&mut self.tx, &self.blobs, blob, chunks).await
    }

    async fn write_blob(
        &mut self,
        blob: &str,
        body: ObjectBody,
        meter: &mut BodyMeter,
    ) -> Result<(), StoreError> {
        DB::write_blob(&mut self.tx, &self.blobs, blob, body, meter).await
    }

    async fn finish(mut self: Box<Self>) -> Result<(), StoreError> {
        if !self.writes {
            return self
                .tx
                .rollback()
                .await
                .map_err(DB::failed("ending the read".to_string()));
        }
        DB::after_writes(&mut *self.tx).await?;
        self.tx
            .commit()
            .await
            .map_err(DB::failed("committing the copy".to_string()))
    }
}
