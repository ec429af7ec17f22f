//! Spin's SQLite interfaces, `fermyon:spin/sqlite@2.0.0` (`spin_sdk::sqlite`) and
//! `spin:sqlite/sqlite@3.0.0` (`spin_sdk::sqlite3`): the same calls and types, the later one
//! adding `last-insert-rowid` and `changes`.

use vireo_core::{SqlRows, SqlValue};
use wasmtime::component::{HasSelf, Linker, Resource};

use super::{Connection, Refusal};
use crate::bindings::fermyon::spin::sqlite as v2;
use crate::bindings::spin::sqlite::sqlite as v3;
use crate::host::Host;

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    v2::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)?;
    v3::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)
}

/// Both versions' types are the same shape; each is generated on its own, so each gets the
/// same conversions.
macro_rules! interface {
    ($wit:ident) => {
        impl From<Refusal> for $wit::Error {
            fn from(refusal: Refusal) -> Self {
                match refusal {
                    Refusal::NoSuchDatabase => Self::NoSuchDatabase,
                    Refusal::AccessDenied => Self::AccessDenied,
                    Refusal::DatabaseFull => Self::DatabaseFull,
                    Refusal::Io(message) => Self::Io(message),
                }
            }
        }

        impl From<$wit::Value> for SqlValue {
            fn from(value: $wit::Value) -> Self {
                match value {
                    $wit::Value::Integer(integer) => Self::Integer(integer),
                    $wit::Value::Real(real) => Self::Real(real),
                    $wit::Value::Text(text) => Self::Text(text),
                    $wit::Value::Blob(blob) => Self::Blob(blob),
                    $wit::Value::Null => Self::Null,
                }
            }
        }

        impl From<SqlValue> for $wit::Value {
            fn from(value: SqlValue) -> Self {
                match value {
                    SqlValue::Integer(integer) => Self::Integer(integer),
                    SqlValue::Real(real) => Self::Real(real),
                    SqlValue::Text(text) => Self::Text(text),
                    SqlValue::Blob(blob) => Self::Blob(blob),
                    SqlValue::Null => Self::Null,
                }
            }
        }

        impl From<SqlRows> for $wit::QueryResult {
            fn from(result: SqlRows) -> Self {
                Self {
                    columns: result.columns,
                    rows: result
                        .rows
                        .into_iter()
                        .map(|row| $wit::RowResult {
                            values: row.into_iter().map(Into::into).collect(),
                        })
                        .collect(),
                }
            }
        }

        impl $wit::Host for Host {}
    };
}

interface!(v2);
interface!(v3);

type Answer<T, E> = wasmtime::Result<Result<T, E>>;

impl Host {
    async fn sqlite_open<E: From<Refusal>>(
        &mut self,
        database: &str,
    ) -> Answer<Resource<Connection>, E> {
        match self.capabilities.sqlite.open(database).await {
            Ok(connection) => Ok(Ok(self.table.push(connection)?)),
            Err(refusal) => Ok(Err(refusal.into())),
        }
    }

    async fn sqlite_execute<V: Into<SqlValue>, E: From<Refusal>>(
        &mut self,
        connection: &Resource<Connection>,
        statement: &str,
        parameters: Vec<V>,
    ) -> Answer<SqlRows, E> {
        let connection = self.table.get_mut(connection)?;
        let parameters = parameters.into_iter().map(Into::into).collect();
        let sqlite = &self.capabilities.sqlite;
        Ok(sqlite
            .execute(connection, statement, parameters)
            .await
            .map_err(E::from))
    }
}

impl v2::HostConnection for Host {
    async fn open(&mut self, database: String) -> Answer<Resource<Connection>, v2::Error> {
        self.sqlite_open(&database).await
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<v2::Value>,
    ) -> Answer<v2::QueryResult, v2::Error> {
        let result = self
            .sqlite_execute(&connection, &statement, parameters)
            .await?;
        Ok(result.map(Into::into))
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}

impl v3::HostConnection for Host {
    async fn open(&mut self, database: String) -> Answer<Resource<Connection>, v3::Error> {
        self.sqlite_open(&database).await
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<v3::Value>,
    ) -> Answer<v3::QueryResult, v3::Error> {
        let result = self
            .sqlite_execute(&connection, &statement, parameters)
            .await?;
        Ok(result.map(Into::into))
    }

    async fn last_insert_rowid(
        &mut self,
        connection: Resource<Connection>,
    ) -> wasmtime::Result<i64> {
        Ok(self.table.get(&connection)?.last_insert_rowid)
    }

    async fn changes(&mut self, connection: Resource<Connection>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&connection)?.changes)
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}
