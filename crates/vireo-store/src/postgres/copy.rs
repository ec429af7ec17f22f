//! PostgreSQL as one end of a copy: its columns from `information_schema`, identities kept as
//! copied and their sequences moved past the copied values, object bytes as chunk rows.

use std::io;

use bytes::Bytes;
use futures::TryStreamExt as _;
use sqlx::{PgConnection, Postgres};
use tokio::sync::mpsc;
use vireo_core::{ObjectBody, StoreError};

use super::{PgStore, backend, objects};
use crate::copy::{Column, CopyDialect, Kind, Side, TxSide, typed_columns};
use crate::roles::Dialect as _;
use crate::roles::objects::BodyMeter;
use crate::stores::PostgresConfig;

const CHUNKS: &str = "SELECT data FROM object_chunks WHERE blob = $1 ORDER BY seq";
const COLUMNS: &str = "SELECT column_name::TEXT, data_type::TEXT FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position";
/// Each identity column's sequence continues after the highest value copied.
const IDENTITIES: &str = "SELECT table_name::TEXT, column_name::TEXT
    FROM information_schema.columns
    WHERE table_schema = current_schema() AND is_identity = 'YES'";

/// The database `config` names as a copy's source (one repeatable-read snapshot) or target.
pub(crate) async fn copy_side(
    config: &PostgresConfig,
    write: bool,
) -> Result<Box<dyn Side>, StoreError> {
    let store = PgStore::open(config).await?;
    let mut tx = if write {
        store.write().await?
    } else {
        store.read().await?
    };
    if !write {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(backend("starting a snapshot to copy"))?;
    }
    Ok(Box::new(TxSide {
        tx,
        writes: write,
        blobs: (),
    }))
}

#[async_trait::async_trait]
impl CopyDialect for Postgres {
    const INSERT_OVERRIDE: &'static str = "OVERRIDING SYSTEM VALUE ";

    async fn columns(conn: &mut PgConnection, table: &str) -> Result<Vec<Column>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(COLUMNS)
            .bind(table)
            .fetch_all(conn)
            .await
            .map_err(backend(format!("reading the columns of {table}")))?;
        typed_columns(table, rows, |declared| match declared {
            "bigint" => Some(Kind::Integer),
            "text" => Some(Kind::Text),
            "bytea" => Some(Kind::Bytes),
            "boolean" => Some(Kind::Boolean),
            _ => None,
        })
    }

    /// The chunks are rows in the same database.
    type BlobPlace = ();

    async fn read_blob(
        conn: &mut PgConnection,
        _: &(),
        blob: &str,
        chunks: mpsc::Sender<io::Result<Bytes>>,
    ) -> Result<(), StoreError> {
        let mut rows = sqlx::query_scalar::<_, Vec<u8>>(CHUNKS)
            .bind(blob)
            .fetch(conn);
        while let Some(data) = rows
            .try_next()
            .await
            .map_err(backend(format!("reading the object bytes {blob}")))?
        {
            // A receiver that is gone has failed; its error is the one reported.
            if chunks.send(Ok(Bytes::from(data))).await.is_err() {
                break;
            }
        }
        Ok(())
    }

    /// In the copy's transaction: the chunks' rows commit with the objects' rows.
    async fn write_blob(
        conn: &mut PgConnection,
        _: &(),
        blob: &str,
        body: ObjectBody,
        meter: &mut BodyMeter,
    ) -> Result<(), StoreError> {
        objects::insert_body(conn, blob, body, meter).await
    }

    async fn after_writes(conn: &mut PgConnection) -> Result<(), StoreError> {
        let identities: Vec<(String, String)> = sqlx::query_as(IDENTITIES)
            .fetch_all(&mut *conn)
            .await
            .map_err(backend("finding identity columns"))?;
        for (table, column) in identities {
            let (table, column) = (crate::copy::quoted(&table), crate::copy::quoted(&column));
            let advance = format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE(MAX({column}), 0) + 1, false) FROM {table}"
            );
            sqlx::query(&advance)
                .bind(&table)
                .bind(column.trim_matches('"'))
                .execute(&mut *conn)
                .await
                .map_err(backend(format!("advancing the identity of {table}")))?;
        }
        Ok(())
    }

    fn failed(context: String) -> impl FnOnce(sqlx::Error) -> StoreError {
        backend(context)
    }
}
