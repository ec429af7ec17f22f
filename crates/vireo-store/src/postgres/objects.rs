//! Object bytes in PostgreSQL, where every node reaches them: chunks of [`CHUNK_BYTES`] rows
//! written in the transaction that writes the object's row, so an object is visible with all
//! its bytes or not at all, and deleting or replacing its row takes its chunks along. A read
//! fetches one chunk at a time, so neither side ever holds a whole object.

use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use sqlx::{PgConnection, Postgres, Transaction};
use vireo_core::{ByteRange, ObjectBody, StoreError};

use super::PgStore;
use crate::roles::Dialect as _;
use crate::roles::objects::{BodyMeter, ObjectsDialect};
use crate::rows::column;
use crate::sql::query;

/// Bytes per chunk row: large enough that a row's overhead is small, small enough that a
/// chunk in memory is nothing.
const CHUNK_BYTES: usize = 1024 * 1024;

const INSERT_CHUNK: &str = "INSERT INTO object_chunks (blob, seq, data) VALUES ($1, $2, $3)";
const CHUNK: &str = "SELECT data FROM object_chunks WHERE blob = $1 AND seq = $2";
const HAS_CHUNKS: &str = "SELECT EXISTS (SELECT 1 FROM objects WHERE blob = $1)";

#[async_trait::async_trait]
impl ObjectsDialect for PgStore {
    async fn store_body(
        &self,
        blob: &str,
        body: ObjectBody,
        meter: &mut BodyMeter,
    ) -> Result<Transaction<'static, Postgres>, StoreError> {
        let mut tx = self.write().await?;
        insert_body(&mut tx, blob, body, meter).await?;
        Ok(tx)
    }

    /// The chunks went with the transaction that rolled back.
    async fn discard_body(&self, _blob: &str) {}

    /// The chunks went with the object's row.
    async fn forget_body(&self, _blob: &str) {}

    async fn read_body(
        &self,
        blob: &str,
        range: ByteRange,
    ) -> Result<Option<ObjectBody>, StoreError> {
        let mut conn = self.reader().await?;
        let exists: bool = query(HAS_CHUNKS)
            .bind(blob)
            .scalar(&mut *conn, "opening object")
            .await?;
        drop(conn);
        if !exists {
            return Ok(None);
        }
        let chunk = CHUNK_BYTES as u64;
        let store = self.clone();
        let blob = blob.to_string();
        let chunks = (range.start / chunk..range.end.div_ceil(chunk)).map(move |seq| {
            // The part of chunk `seq` inside the range.
            let from = range.start.max(seq * chunk) - seq * chunk;
            let to = range.end.min((seq + 1) * chunk) - seq * chunk;
            (seq, from as usize, to as usize)
        });
        let body = futures::stream::iter(chunks)
            .then(move |(seq, from, to)| {
                let (store, blob) = (store.clone(), blob.clone());
                async move { read_chunk(&store, &blob, seq, from, to).await }
            })
            .boxed();
        Ok(Some(body))
    }
}

/// Writes `body` as the chunk rows of `blob`, in the transaction that is to name it.
pub(super) async fn insert_body(
    conn: &mut PgConnection,
    blob: &str,
    mut body: ObjectBody,
    meter: &mut BodyMeter,
) -> Result<(), StoreError> {
    let mut pending = BytesMut::new();
    let mut seq = 0_i64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(StoreError::ObjectBodyFailed)?;
        meter.take(&chunk)?;
        pending.extend_from_slice(&chunk);
        while pending.len() >= CHUNK_BYTES {
            let full = pending.split_to(CHUNK_BYTES).freeze();
            insert_chunk(conn, blob, seq, &full).await?;
            seq += 1;
        }
    }
    if !pending.is_empty() {
        insert_chunk(conn, blob, seq, &pending.freeze()).await?;
    }
    Ok(())
}

async fn insert_chunk(
    conn: &mut PgConnection,
    blob: &str,
    seq: i64,
    data: &Bytes,
) -> Result<(), StoreError> {
    query(INSERT_CHUNK)
        .bind(blob)
        .bind(seq)
        .bind(data.as_ref())
        .execute(conn, "writing object bytes")
        .await?;
    Ok(())
}

/// Bytes `from..to` of chunk `seq`; an error when the object went away while being read.
async fn read_chunk(
    store: &PgStore,
    blob: &str,
    seq: u64,
    from: usize,
    to: usize,
) -> std::io::Result<Bytes> {
    let read = async {
        let mut conn = store.reader().await?;
        query(CHUNK)
            .bind(blob)
            .bind(seq as i64)
            .fetch_optional(&mut *conn, "reading object bytes")
            .await?
            .map(|row| column::<Vec<u8>>(&row, 0))
            .transpose()
    };
    match read.await {
        Ok(Some(data)) if to <= data.len() => Ok(Bytes::from(data).slice(from..to)),
        Ok(_) => Err(std::io::Error::other(
            "the object was replaced or deleted while being read",
        )),
        Err(e) => Err(std::io::Error::other(e)),
    }
}
