//! Copying a whole installation from one store to another (a single node's SQLite into a
//! cluster's PostgreSQL, or back): every table that describes what is deployed and what ran,
//! row for row, the component bytes the versions name and the object bytes the objects name.
//! The target must be empty, and takes everything in one transaction: a copy that fails leaves
//! it as empty as it was.
//!
//! Rows travel as [`Cell`]s, read by the source column's kind and written as the target
//! column's (SQLite keeps booleans as integers), so the two schemas only need the same tables
//! and column names, which their migrations keep.

use std::collections::BTreeSet;
use std::io;

use bytes::Bytes;
use futures::StreamExt as _;
use sqlx::query::Query;
use tokio::sync::mpsc;
use vireo_core::{ObjectBody, StoreError};

use crate::roles::objects::BodyMeter;
use crate::rows::{At, Columns};
use crate::stores::{StorageConfig, open};
use crate::{postgres, sqlite};

mod side;

pub(crate) use side::{CopyDialect, TxSide};

/// The tables copied, parents before children. Not copied: the node registry (nodes register
/// themselves), PostgreSQL's change log (a new cluster starts with none) and SQLite's pending
/// counts (its triggers derive them from the async queue).
const TABLES: &[&str] = &[
    "namespaces",
    "functions",
    "versions",
    "aliases",
    "host_claims",
    "http_routes",
    "invocations",
    "logs",
    "async_invocations",
    "idempotency_keys",
    "schedules",
    "sources",
    "api_keys",
    "secrets",
    "kv_stores",
    "kv_entries",
    "buckets",
    "objects",
    "bucket_notifications",
    "master_key",
];

/// Rows per read batch and per insert statement.
const BATCH_ROWS: usize = 500;

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Integer(i64),
    Text(String),
    Bytes(Vec<u8>),
    Boolean(bool),
}

/// How a column keeps its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Integer,
    Text,
    Bytes,
    Boolean,
}

/// A column of a table, with the kind its schema gives it.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub name: String,
    pub kind: Kind,
}

/// One end of a copy: the source reads in one consistent snapshot, the target writes in one
/// transaction.
#[async_trait::async_trait]
pub(crate) trait Side: Send {
    async fn columns(&mut self, table: &str) -> Result<Vec<Column>, StoreError>;
    async fn count(&mut self, table: &str) -> Result<u64, StoreError>;
    /// Sends every row of `table`, `columns` in order, in batches of [`BATCH_ROWS`].
    async fn read(
        &mut self,
        table: &str,
        columns: &[Column],
        batches: mpsc::Sender<Vec<Vec<Cell>>>,
    ) -> Result<(), StoreError>;
    /// Inserts `rows`, whose cells are already of the columns' kinds.
    async fn write(
        &mut self,
        table: &str,
        columns: &[Column],
        rows: Vec<Vec<Cell>>,
    ) -> Result<(), StoreError>;
    /// Sends the bytes of `blob` in order; stops early when `chunks` is closed.
    async fn read_blob(
        &mut self,
        blob: &str,
        chunks: mpsc::Sender<io::Result<Bytes>>,
    ) -> Result<(), StoreError>;
    /// Stores `body` as the bytes of `blob`, which an object row written to this end names.
    async fn write_blob(
        &mut self,
        blob: &str,
        body: ObjectBody,
        meter: &mut BodyMeter,
    ) -> Result<(), StoreError>;
    /// Removes every row of `table` (the target's own `default` namespace).
    async fn clear(&mut self, table: &str) -> Result<(), StoreError>;
    /// Ends the snapshot, or commits what was written.
    async fn finish(self: Box<Self>) -> Result<(), StoreError>;
}

/// How far a copy has come.
#[derive(Debug, Clone, Copy)]
pub struct CopyProgress<'a> {
    /// The table being copied, `objects` for object bytes, or `components`.
    pub what: &'a str,
    /// Rows (or components) copied of everything, and everything.
    pub done: u64,
    pub total: u64,
}

/// What a copy moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Rows per table, in copy order.
    pub tables: Vec<(String, u64)>,
    pub components: u64,
    pub component_bytes: u64,
    /// Objects whose bytes were copied, and their bytes.
    pub objects: u64,
    pub object_bytes: u64,
}

/// Copies everything in `from` into the empty store `to` (both brought up to date first),
/// telling `progress` as it goes. Nothing else may write either store meanwhile.
pub async fn copy(
    from: &StorageConfig,
    to: &StorageConfig,
    progress: &(dyn Fn(CopyProgress<'_>) + Sync),
) -> Result<CopyReport, StoreError> {
    let (source_stores, target_stores) = (open(from).await?, open(to).await?);
    let mut source = side(from, false).await?;
    let mut target = side(to, true).await?;
    refuse_unless_empty(target.as_mut()).await?;
    let mut counts = Vec::new();
    for table in TABLES {
        counts.push(source.count(table).await?);
    }
    let total: u64 = counts.iter().sum();
    let mut report = CopyReport::default();
    let mut done = 0;
    for (table, rows) in TABLES.iter().zip(counts) {
        progress(CopyProgress {
            what: table,
            done,
            total,
        });
        let columns = matching_columns(source.as_mut(), target.as_mut(), table).await?;
        target.clear(table).await?;
        let copied = copy_table(
            source.as_mut(),
            target.as_mut(),
            table,
            &columns,
            &mut |n| {
                done += n;
                progress(CopyProgress {
                    what: table,
                    done,
                    total,
                });
            },
        )
        .await?;
        if copied != rows {
            return Err(StoreError::permanent(
                format!("copying table {table}"),
                format!("counted {rows} rows but read {copied}: was the source written meanwhile?"),
            ));
        }
        report.tables.push((table.to_string(), copied));
    }
    copy_object_bytes(source.as_mut(), target.as_mut(), &mut report, progress).await?;
    let shas = component_hashes(source.as_mut()).await?;
    source.finish().await?;
    for (n, sha) in shas.iter().enumerate() {
        progress(CopyProgress {
            what: "components",
            done: n as u64,
            total: shas.len() as u64,
        });
        let bytes = source_stores
            .components
            .component(sha)
            .await
            .map_err(|e| StoreError::permanent(format!("reading component {sha}"), e))?;
        target_stores
            .components
            .put_component(&bytes)
            .await
            .map_err(|e| StoreError::permanent(format!("storing component {sha}"), e))?;
        report.components += 1;
        report.component_bytes += bytes.len() as u64;
    }
    // The rows last: a target whose rows are committed names no component it lacks.
    target.finish().await?;
    source_stores.close().await;
    target_stores.close().await;
    Ok(report)
}

async fn side(config: &StorageConfig, write: bool) -> Result<Box<dyn Side>, StoreError> {
    match config {
        StorageConfig::Sqlite { path } => sqlite::copy_side(path, write).await,
        StorageConfig::Postgres(config) => postgres::copy_side(config, write).await,
    }
}

/// A fresh store holds its `default` namespace and nothing else.
async fn refuse_unless_empty(target: &mut dyn Side) -> Result<(), StoreError> {
    let mut held = Vec::new();
    for table in TABLES {
        let rows = target.count(table).await?;
        let fresh = if *table == "namespaces" { 1 } else { 0 };
        if rows > fresh {
            held.push(format!("{table}: {rows}"));
        }
    }
    if held.is_empty() {
        return Ok(());
    }
    Err(StoreError::permanent(
        "checking that the target store is empty",
        format!(
            "the target already holds data ({}); copy only into a new, empty store",
            held.join(", ")
        ),
    ))
}

/// The target's columns of `table`, each of which the source must have too.
async fn matching_columns(
    source: &mut dyn Side,
    target: &mut dyn Side,
    table: &str,
) -> Result<Vec<(Column, Kind)>, StoreError> {
    let source_columns = source.columns(table).await?;
    target
        .columns(table)
        .await?
        .into_iter()
        .map(|column| {
            let read = source_columns
                .iter()
                .find(|c| c.name == column.name)
                .ok_or_else(|| {
                    StoreError::permanent(
                        format!("copying table {table}"),
                        format!("the source has no column {}", column.name),
                    )
                })?;
            Ok((read.clone(), column.kind))
        })
        .collect()
}

/// Streams `table`'s rows from the source into the target, converting each cell to the target
/// column's kind; `copied` hears of each batch. Returns the rows copied.
async fn copy_table(
    source: &mut dyn Side,
    target: &mut dyn Side,
    table: &str,
    columns: &[(Column, Kind)],
    copied: &mut (dyn FnMut(u64) + Send),
) -> Result<u64, StoreError> {
    let read: Vec<Column> = columns.iter().map(|(column, _)| column.clone()).collect();
    let written: Vec<Column> = columns
        .iter()
        .map(|(column, kind)| Column {
            name: column.name.clone(),
            kind: *kind,
        })
        .collect();
    let (batches, mut received) = mpsc::channel(4);
    let reading = source.read(table, &read, batches);
    let writing = async {
        let mut rows_copied = 0;
        while let Some(batch) = received.recv().await {
            let rows = batch
                .into_iter()
                .map(|row| convert(row, &written, table))
                .collect::<Result<Vec<_>, _>>()?;
            let n = rows.len() as u64;
            target.write(table, &written, rows).await?;
            rows_copied += n;
            copied(n);
        }
        Ok::<_, StoreError>(rows_copied)
    };
    let ((), rows_copied) = tokio::try_join!(reading, writing)?;
    Ok(rows_copied)
}

/// `row` with each cell as its target column keeps it.
fn convert(row: Vec<Cell>, columns: &[Column], table: &str) -> Result<Vec<Cell>, StoreError> {
    row.into_iter()
        .zip(columns)
        .map(|(cell, column)| match (cell, column.kind) {
            (Cell::Integer(value), Kind::Boolean) => Ok(Cell::Boolean(value != 0)),
            (Cell::Boolean(value), Kind::Integer) => Ok(Cell::Integer(i64::from(value))),
            (cell @ Cell::Null, _)
            | (cell @ Cell::Integer(_), Kind::Integer)
            | (cell @ Cell::Text(_), Kind::Text)
            | (cell @ Cell::Bytes(_), Kind::Bytes)
            | (cell @ Cell::Boolean(_), Kind::Boolean) => Ok(cell),
            (cell, kind) => Err(StoreError::permanent(
                format!("copying table {table}"),
                format!("column {} keeps {kind:?} values, not {cell:?}", column.name),
            )),
        })
        .collect()
}

/// The components the source's versions name.
async fn component_hashes(source: &mut dyn Side) -> Result<BTreeSet<String>, StoreError> {
    let rows = read_columns(source, "versions", &[("component_sha256", Kind::Text)]).await?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match row.into_iter().next() {
            Some(Cell::Text(sha)) => Some(sha),
            _ => None,
        })
        .collect())
}

/// An object's bytes as its row names them.
struct Blob {
    id: String,
    size: u64,
    etag: String,
}

/// Streams the bytes of every object the source names into the target, each checked against
/// its row's size and sha256 on the way, so a damaged source fails the copy instead of
/// spreading.
async fn copy_object_bytes(
    source: &mut dyn Side,
    target: &mut dyn Side,
    report: &mut CopyReport,
    progress: &(dyn Fn(CopyProgress<'_>) + Sync),
) -> Result<(), StoreError> {
    let columns = [
        ("blob", Kind::Text),
        ("size", Kind::Integer),
        ("etag", Kind::Text),
    ];
    let blobs: Vec<Blob> = read_columns(source, "objects", &columns)
        .await?
        .into_iter()
        .map(|row| match <[Cell; 3]>::try_from(row) {
            Ok([Cell::Text(id), Cell::Integer(size), Cell::Text(etag)]) => Ok(Blob {
                id,
                size: size.unsigned_abs(),
                etag,
            }),
            row => Err(StoreError::permanent(
                "listing the objects to copy",
                format!("an object row has no blob, size or etag: {row:?}"),
            )),
        })
        .collect::<Result<_, _>>()?;
    let total = blobs.len() as u64;
    for (n, blob) in blobs.into_iter().enumerate() {
        progress(CopyProgress {
            what: "objects",
            done: n as u64,
            total,
        });
        let (chunks, received) = mpsc::channel(2);
        let body: ObjectBody = futures::stream::unfold(received, |mut received| async move {
            received.recv().await.map(|chunk| (chunk, received))
        })
        .boxed();
        let mut meter = BodyMeter::new(u64::MAX, None);
        tokio::try_join!(
            source.read_blob(&blob.id, chunks),
            target.write_blob(&blob.id, body, &mut meter)
        )?;
        let (size, etag) = meter.finish();
        if (size, &etag) != (blob.size, &blob.etag) {
            return Err(StoreError::permanent(
                format!("copying the object bytes {}", blob.id),
                format!(
                    "the source has {size} bytes with sha256 {etag} where its object says {} bytes with {}: the source store is damaged",
                    blob.size, blob.etag
                ),
            ));
        }
        report.objects += 1;
        report.object_bytes += size;
    }
    Ok(())
}

/// Every row of `table`, reduced to `columns`.
async fn read_columns(
    source: &mut dyn Side,
    table: &str,
    columns: &[(&str, Kind)],
) -> Result<Vec<Vec<Cell>>, StoreError> {
    let columns: Vec<Column> = columns
        .iter()
        .map(|(name, kind)| Column {
            name: name.to_string(),
            kind: *kind,
        })
        .collect();
    let (batches, mut received) = mpsc::channel(4);
    let reading = source.read(table, &columns, batches);
    let collecting = async {
        let mut rows = Vec::new();
        while let Some(batch) = received.recv().await {
            rows.extend(batch);
        }
        Ok::<_, StoreError>(rows)
    };
    let ((), rows) = tokio::try_join!(reading, collecting)?;
    Ok(rows)
}

/// `"name"`, quoted for either dialect (some columns, such as `trigger`, are keywords).
pub(crate) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `SELECT "a", "b" FROM "table"`.
pub(crate) fn select_all(table: &str, columns: &[Column]) -> String {
    let names: Vec<String> = columns.iter().map(|c| quoted(&c.name)).collect();
    format!("SELECT {} FROM {}", names.join(", "), quoted(table))
}

/// `table`'s columns from `(name, declared type)` pairs, each type read by `kind`; a type no
/// table of Vireo's uses is an error.
pub(crate) fn typed_columns(
    table: &str,
    declared: Vec<(String, String)>,
    kind: impl Fn(&str) -> Option<Kind>,
) -> Result<Vec<Column>, StoreError> {
    declared
        .into_iter()
        .map(|(name, declared)| match kind(&declared) {
            Some(kind) => Ok(Column { name, kind }),
            None => Err(StoreError::permanent(
                format!("reading the columns of {table}"),
                format!("column {name} has the unexpected type {declared}"),
            )),
        })
        .collect()
}

/// A row's cells, each read as its column's kind (the columns in select order).
pub(crate) fn cells(row: &impl Columns, columns: &[Column]) -> Result<Vec<Cell>, StoreError> {
    columns
        .iter()
        .enumerate()
        .map(|(position, column)| {
            let at = At::Position(position);
            Ok(match column.kind {
                Kind::Integer => row.integer(at)?.map(Cell::Integer),
                Kind::Text => row.text(at)?.map(Cell::Text),
                Kind::Bytes => row.bytes(at)?.map(Cell::Bytes),
                Kind::Boolean => row.boolean(at)?.map(Cell::Boolean),
            }
            .unwrap_or(Cell::Null))
        })
        .collect()
}

/// `INSERT INTO "table" ("a", "b") VALUES ($1, $2), ($3, $4)` for `rows` rows; numbered
/// parameters read alike on both databases.
pub(crate) fn insert_rows(
    table: &str,
    columns: &[Column],
    rows: usize,
    overriding: &str,
) -> String {
    let names: Vec<String> = columns.iter().map(|c| quoted(&c.name)).collect();
    let tuples: Vec<String> = (0..rows)
        .map(|row| {
            let first = row * columns.len() + 1;
            let params: Vec<String> = (first..first + columns.len())
                .map(|n| format!("${n}"))
                .collect();
            format!("({})", params.join(", "))
        })
        .collect();
    format!(
        "INSERT INTO {} ({}) {overriding}VALUES {}",
        quoted(table),
        names.join(", "),
        tuples.join(", ")
    )
}

/// Binds `rows` to an insert from [`insert_rows`], a NULL as its column's type.
pub(crate) fn bind_rows<'q, DB: sqlx::Database>(
    mut insert: Query<'q, DB, DB::Arguments<'q>>,
    columns: &[Column],
    rows: Vec<Vec<Cell>>,
) -> Query<'q, DB, DB::Arguments<'q>>
where
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<String>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<Vec<u8>>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<bool>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for row in rows {
        for (cell, column) in row.into_iter().zip(columns) {
            insert = match (cell, column.kind) {
                (Cell::Integer(value), _) => insert.bind(Some(value)),
                (Cell::Text(value), _) => insert.bind(Some(value)),
                (Cell::Bytes(value), _) => insert.bind(Some(value)),
                (Cell::Boolean(value), _) => insert.bind(Some(value)),
                (Cell::Null, Kind::Integer) => insert.bind(None::<i64>),
                (Cell::Null, Kind::Text) => insert.bind(None::<String>),
                (Cell::Null, Kind::Bytes) => insert.bind(None::<Vec<u8>>),
                (Cell::Null, Kind::Boolean) => insert.bind(None::<bool>),
            };
        }
    }
    insert
}
