//! How SQLite runs a key-value batch: in two round trips to the writer connection's thread
//! instead of one per statement. The thread runs each statement of a query's text in turn, so
//! the batch's reads go as one query that begins the transaction, and its writes as one that
//! commits it. Handing a statement to that thread and waking the task that waits for it cost
//! more than SQLite's work on a batch of small writes.

use std::collections::HashMap;

use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, SqliteConnection};
use vireo_core::StoreError;

use super::{BEGIN_WRITE, SqliteStore};
use crate::roles::Dialect;
use crate::roles::key_value::writer::{
    KvWriteDialect, Slot, StoreReads, apply, bytes_read, create_default, fail_namespace,
    fail_store, quota_of, quotas_read, same_namespace, same_store, store_lock, store_of,
    stored_keys, stored_values,
};
use crate::rows::column;
use crate::sql::{Statement, query};

const COMMIT: &str = "COMMIT";
/// Parameters one query binds at most: SQLite numbers them up to 32,766.
const PARAMETERS_PER_QUERY: usize = 30_000;

#[async_trait::async_trait]
impl KvWriteDialect for SqliteStore {
    async fn kv_transaction(&self, slots: &mut [Slot]) -> Result<(), StoreError> {
        let mut writer = Unfinished {
            conn: self.writer().await?,
            finished: false,
        };
        let reads = read_statements(slots);
        let mut results = Queries::default()
            .with(query(BEGIN_WRITE))
            .with_all(reads.statements)
            .run(&mut writer.conn, "reading for a key-value batch")
            .await?
            .into_iter();
        let mut next = move || {
            results.next().ok_or_else(|| {
                StoreError::permanent(
                    "reading for a key-value batch",
                    "a statement's rows are missing",
                )
            })
        };
        next()?;
        let mut writes = Queries::default();
        let mut shapes = reads.shapes.into_iter();
        for namespace in slots.chunk_by_mut(same_namespace) {
            let quotas = next()?;
            let bytes = next()?;
            let mut quota = match (quotas.first(), bytes.first()) {
                (Some(quotas), Some(bytes)) => {
                    let quotas: Option<String> = column(quotas, 0)?;
                    Some(quota_of(quotas.as_deref(), column(bytes, 0)?)?)
                }
                _ => None,
            };
            for store in namespace.chunk_by_mut(same_store) {
                let shape = shapes.next().expect("a shape for each store");
                if shape.creates {
                    next()?;
                }
                let lock = next()?;
                let mut stored = HashMap::new();
                for _ in 0..shape.key_reads {
                    stored.extend(stored_keys(&next()?)?);
                }
                let mut values = HashMap::new();
                for _ in 0..shape.value_reads {
                    values.extend(stored_values(&next()?)?);
                }
                match (&mut quota, lock.first()) {
                    (None, _) => fail_namespace(store),
                    (Some(_), None) => fail_store(store),
                    (Some(quota), Some(lock)) => {
                        let revision = column(lock, 0)?;
                        writes = writes.with_all(apply(store, revision, stored, values, quota));
                    }
                }
            }
        }
        writes
            .with(query(COMMIT))
            .run(&mut writer.conn, "writing a key-value batch")
            .await?;
        writer.finish();
        Ok(())
    }
}

/// A batch's reads and how many statements each store took.
struct Reads<'a> {
    statements: Vec<Statement<'a>>,
    shapes: Vec<Shape>,
}

/// The statements one store's reads took after its namespace's two.
struct Shape {
    /// Whether it creates `default`'s row first.
    creates: bool,
    key_reads: usize,
    value_reads: usize,
}

/// For each namespace its quotas and bytes, then for each of its stores: `default`'s row
/// created if missing, the store's row taken, and the keys and counters its writes need.
fn read_statements(slots: &[Slot]) -> Reads<'_> {
    let mut reads = Reads {
        statements: Vec::new(),
        shapes: Vec::new(),
    };
    for namespace in slots.chunk_by(same_namespace) {
        reads.statements.push(quotas_read(store_of(namespace)));
        reads.statements.push(bytes_read(store_of(namespace)));
        for store in namespace.chunk_by(same_store) {
            let id = store_of(store);
            let creates = id.is_default();
            if creates {
                reads.statements.push(create_default(id));
            }
            reads.statements.push(store_lock(id));
            let needed = StoreReads::of(store);
            reads.shapes.push(Shape {
                creates,
                key_reads: needed.keys.len(),
                value_reads: needed.values.len(),
            });
            reads.statements.extend(needed.keys);
            reads.statements.extend(needed.values);
        }
    }
    reads
}

/// Statements joined into as few queries as SQLite's limit on parameters allows.
#[derive(Default)]
struct Queries<'a>(Vec<Statement<'a>>);

impl<'a> Queries<'a> {
    fn with(mut self, statement: Statement<'a>) -> Self {
        match self.0.last_mut() {
            Some(last) if last.parameters() + statement.parameters() <= PARAMETERS_PER_QUERY => {
                last.then(statement);
            }
            _ => self.0.push(statement),
        }
        self
    }

    fn with_all(self, statements: impl IntoIterator<Item = Statement<'a>>) -> Self {
        statements.into_iter().fold(self, Self::with)
    }

    /// Runs the queries in order; the rows of each statement.
    async fn run(
        self,
        conn: &mut SqliteConnection,
        context: &'static str,
    ) -> Result<Vec<Vec<SqliteRow>>, StoreError> {
        let mut each = Vec::new();
        for statements in self.0 {
            each.extend(statements.fetch_each(conn, context).await?);
        }
        Ok(each)
    }
}

/// The writer connection while a transaction sqlx does not know of is open on it: closed
/// (which rolls the transaction back) unless [`Unfinished::finish`]ed, so a failed or
/// cancelled batch never hands a connection in a transaction back to the pool.
struct Unfinished {
    conn: PoolConnection<Sqlite>,
    finished: bool,
}

impl Unfinished {
    fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.finished {
            self.conn.close_on_drop();
        }
    }
}
