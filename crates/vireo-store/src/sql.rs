//! Statements written once for every sqlx backend. A [`Statement`] is SQL text with `$1`,
//! `$2`… parameters (PostgreSQL's form, which SQLite reads too) and the values bound to them,
//! as the few SQL types the schemas use; it runs on any connection that is [`Sql`], which
//! every sqlx connection whose database can bind and read those types is. The rows come back
//! as [`Columns`], read by `crate::rows`, and a failure comes back classified by what the
//! [`Driver`] knows of its database's error codes.
//!
//! This keeps sqlx's database-generic bounds in one `impl` here instead of on every function
//! the roles share: the roles see only `Sql`.

use std::borrow::Cow;

use sqlx::pool::PoolConnection;
use sqlx::{Database, Encode, Executor, IntoArguments, Pool, Transaction, Type};
use vireo_core::StoreError;

use crate::error::classify;
use crate::rows::{self, Columns, FromColumn};

/// A value bound to a parameter, as one of the column types every schema is written in.
#[derive(Debug, Clone)]
pub(crate) enum Value<'a> {
    Integer(Option<i64>),
    Text(Option<Cow<'a, str>>),
    Bytes(Option<Cow<'a, [u8]>>),
    Boolean(Option<bool>),
}

/// Each domain value as the column type it is stored in; `None` binds a typed `NULL`.
macro_rules! values {
    ($($type:ty => |$value:ident| $variant:ident($convert:expr)),* $(,)?) => {$(
        impl<'a> From<$type> for Value<'a> {
            fn from($value: $type) -> Self {
                Value::$variant(Some($convert))
            }
        }
        impl<'a> From<Option<$type>> for Value<'a> {
            fn from(value: Option<$type>) -> Self {
                Value::$variant(value.map(|$value| $convert))
            }
        }
    )*};
}
values!(
    i64 => |value| Integer(value),
    u32 => |value| Integer(i64::from(value)),
    bool => |value| Boolean(value),
    &'a str => |value| Text(Cow::Borrowed(value)),
    &'a String => |value| Text(Cow::Borrowed(value.as_str())),
    String => |value| Text(Cow::Owned(value)),
    &'a [u8] => |value| Bytes(Cow::Borrowed(value)),
    &'a Vec<u8> => |value| Bytes(Cow::Borrowed(value.as_slice())),
    Vec<u8> => |value| Bytes(Cow::Owned(value)),
);

/// SQL text and the values of its parameters, in order.
#[derive(Debug)]
pub(crate) struct Statement<'a> {
    sql: Cow<'static, str>,
    values: Vec<Value<'a>>,
}

/// A statement of `sql`, its values to be bound in parameter order.
pub(crate) fn query<'a>(sql: &'static str) -> Statement<'a> {
    Statement {
        sql: Cow::Borrowed(sql),
        values: Vec::new(),
    }
}

impl<'a> Statement<'a> {
    /// Binds the next parameter (`$1` first).
    pub(crate) fn bind(mut self, value: impl Into<Value<'a>>) -> Self {
        self.values.push(value.into());
        self
    }

    /// Appends SQL text, for a statement whose shape depends on its input.
    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.to_mut().push_str(sql);
        self
    }

    /// Appends the next parameter's placeholder and binds it.
    pub(crate) fn push_bind(&mut self, value: impl Into<Value<'a>>) -> &mut Self {
        self.values.push(value.into());
        let placeholder = format!("${}", self.values.len());
        self.push(&placeholder)
    }

    /// Appends `(…)` with one parameter per value, for `IN`; no values make `(NULL)`, which
    /// matches nothing (an empty list is not SQL everywhere).
    pub(crate) fn push_list<V: Into<Value<'a>>>(
        &mut self,
        values: impl IntoIterator<Item = V>,
    ) -> &mut Self {
        self.push("(");
        let mut values = values.into_iter().peekable();
        if values.peek().is_none() {
            self.push("NULL");
        }
        while let Some(value) = values.next() {
            self.push_bind(value);
            if values.peek().is_some() {
                self.push(", ");
            }
        }
        self.push(")")
    }

    /// The SQL text.
    pub(crate) fn text(&self) -> &str {
        &self.sql
    }

    /// The values bound to `$1`, `$2`… in order.
    pub(crate) fn values(&self) -> &[Value<'a>] {
        &self.values
    }

    /// Runs the statement; how many rows it changed.
    pub(crate) async fn execute(
        self,
        conn: &mut (impl Sql + ?Sized),
        context: &'static str,
    ) -> Result<u64, StoreError> {
        conn.execute(self, context).await
    }

    pub(crate) async fn fetch_all<C: Sql + ?Sized>(
        self,
        conn: &mut C,
        context: &'static str,
    ) -> Result<Vec<C::Row>, StoreError> {
        conn.fetch_all(self, context).await
    }

    pub(crate) async fn fetch_optional<C: Sql + ?Sized>(
        self,
        conn: &mut C,
        context: &'static str,
    ) -> Result<Option<C::Row>, StoreError> {
        conn.fetch_optional(self, context).await
    }

    /// The one row the statement returns; none is an error.
    pub(crate) async fn fetch_one<C: Sql + ?Sized>(
        self,
        conn: &mut C,
        context: &'static str,
    ) -> Result<C::Row, StoreError> {
        self.fetch_optional(conn, context)
            .await?
            .ok_or_else(|| StoreError::permanent(context, "the statement returned no row"))
    }

    /// The first column of the one row the statement returns.
    pub(crate) async fn scalar<T: FromColumn>(
        self,
        conn: &mut (impl Sql + ?Sized),
        context: &'static str,
    ) -> Result<T, StoreError> {
        rows::column(&self.fetch_one(conn, context).await?, 0)
    }

    /// The first column of the row the statement returns, if it returns one.
    pub(crate) async fn optional_scalar<T: FromColumn>(
        self,
        conn: &mut (impl Sql + ?Sized),
        context: &'static str,
    ) -> Result<Option<T>, StoreError> {
        match self.fetch_optional(conn, context).await? {
            Some(row) => rows::column(&row, 0).map(Some),
            None => Ok(None),
        }
    }
}

/// What statements need of one sqlx database that sqlx's own traits do not say.
pub(crate) trait Driver: Database {
    /// Whether an error code (`DatabaseError::code`) reports a passing condition: a lock, a
    /// busy or full store, an I/O failure.
    fn is_transient(code: &str) -> bool;

    /// How many rows a statement changed.
    fn rows_affected(done: &Self::QueryResult) -> u64;
}

/// A connection [`Statement`]s run on.
#[async_trait::async_trait]
pub(crate) trait Sql: Send {
    type Row: Columns + Send;

    async fn execute(
        &mut self,
        statement: Statement<'_>,
        context: &'static str,
    ) -> Result<u64, StoreError>;

    async fn fetch_all(
        &mut self,
        statement: Statement<'_>,
        context: &'static str,
    ) -> Result<Vec<Self::Row>, StoreError>;

    async fn fetch_optional(
        &mut self,
        statement: Statement<'_>,
        context: &'static str,
    ) -> Result<Option<Self::Row>, StoreError>;
}

/// The bounds every sqlx database meets that binds and reads Vireo's column types.
#[async_trait::async_trait]
impl<C> Sql for C
where
    C: sqlx::Connection,
    C::Database: Driver,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
    for<'q> <C::Database as Database>::Arguments<'q>: IntoArguments<'q, C::Database>,
    for<'q> Option<i64>: Encode<'q, C::Database> + Type<C::Database>,
    for<'q> Option<&'q str>: Encode<'q, C::Database> + Type<C::Database>,
    for<'q> Option<&'q [u8]>: Encode<'q, C::Database> + Type<C::Database>,
    for<'q> Option<bool>: Encode<'q, C::Database> + Type<C::Database>,
    <C::Database as Database>::Row: Columns,
{
    type Row = <C::Database as Database>::Row;

    async fn execute(
        &mut self,
        statement: Statement<'_>,
        context: &'static str,
    ) -> Result<u64, StoreError> {
        let done = bound::<C::Database>(&statement)
            .execute(self)
            .await
            .map_err(classified::<C::Database>(context))?;
        Ok(C::Database::rows_affected(&done))
    }

    async fn fetch_all(
        &mut self,
        statement: Statement<'_>,
        context: &'static str,
    ) -> Result<Vec<Self::Row>, StoreError> {
        bound::<C::Database>(&statement)
            .fetch_all(self)
            .await
            .map_err(classified::<C::Database>(context))
    }

    async fn fetch_optional(
        &mut self,
        statement: Statement<'_>,
        context: &'static str,
    ) -> Result<Option<Self::Row>, StoreError> {
        bound::<C::Database>(&statement)
            .fetch_optional(self)
            .await
            .map_err(classified::<C::Database>(context))
    }
}

/// A connection of `pool`, for `context`.
pub(crate) async fn acquire<DB: Driver>(
    pool: &Pool<DB>,
    context: &'static str,
) -> Result<PoolConnection<DB>, StoreError> {
    pool.acquire().await.map_err(classified::<DB>(context))
}

/// A transaction on a connection of `pool`, for `context`.
pub(crate) async fn begin<DB: Driver>(
    pool: &Pool<DB>,
    context: &'static str,
) -> Result<Transaction<'static, DB>, StoreError> {
    pool.begin().await.map_err(classified::<DB>(context))
}

pub(crate) async fn commit<DB: Driver>(tx: Transaction<'static, DB>) -> Result<(), StoreError> {
    tx.commit().await.map_err(classified::<DB>("committing"))
}

/// sqlx's query of `statement`, its values bound.
fn bound<'q, DB>(
    statement: &'q Statement<'_>,
) -> sqlx::query::Query<'q, DB, <DB as Database>::Arguments<'q>>
where
    DB: Database,
    Option<i64>: Encode<'q, DB> + Type<DB>,
    Option<&'q str>: Encode<'q, DB> + Type<DB>,
    Option<&'q [u8]>: Encode<'q, DB> + Type<DB>,
    Option<bool>: Encode<'q, DB> + Type<DB>,
{
    let mut query = sqlx::query(&statement.sql);
    for value in &statement.values {
        query = match value {
            Value::Integer(value) => query.bind(*value),
            Value::Text(value) => query.bind(value.as_deref()),
            Value::Bytes(value) => query.bind(value.as_deref()),
            Value::Boolean(value) => query.bind(*value),
        };
    }
    query
}

fn classified<DB: Driver>(context: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| classify(context, error, DB::is_transient)
}
