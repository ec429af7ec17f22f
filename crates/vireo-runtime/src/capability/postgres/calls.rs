//! What each version of the interface does with a connection, whatever its version: values and
//! errors convert to and from `spin:postgres/postgres@4.0.0`'s, which the host speaks.

use wasmtime::component::Resource;

use super::Connection;
use crate::bindings::spin::postgres4_0_0::postgres::{
    Column, DbValue, Error, ParameterValue, RowSet,
};
use crate::host::Host;

/// A version's parameter, as @4.0.0's; one that has no @4.0.0 equivalent is `bad-parameter`.
pub(super) trait Param {
    fn into_v4(self) -> Result<ParameterValue, Error>;
}

impl Param for ParameterValue {
    fn into_v4(self) -> Result<ParameterValue, Error> {
        Ok(self)
    }
}

/// A row set's columns and rows, each converted to an older version's.
pub(super) fn rows_as<C, V>(
    set: RowSet,
    column: impl Fn(Column) -> C,
    value: impl Fn(DbValue) -> V,
) -> (Vec<C>, Vec<Vec<V>>) {
    let columns = set.columns.into_iter().map(column).collect();
    let rows = set
        .rows
        .into_iter()
        .map(|row| row.into_iter().map(&value).collect());
    (columns, rows.collect())
}

/// An interface call's answer: a trap for a connection the guest does not hold, else the
/// interface's result.
pub(super) type Answer<T, E> = wasmtime::Result<Result<T, E>>;

pub(super) async fn open<E: From<Error>>(
    host: &mut Host,
    address: String,
) -> Answer<Resource<Connection>, E> {
    match host.capabilities.postgres.open(&address).await {
        Ok(connection) => Ok(Ok(host.table.push(connection)?)),
        Err(error) => Ok(Err(error.into())),
    }
}

pub(super) async fn query<P, R, E>(
    host: &mut Host,
    connection: Resource<Connection>,
    statement: String,
    params: Vec<P>,
) -> Answer<R, E>
where
    P: Param,
    R: From<RowSet>,
    E: From<Error>,
{
    let connection = host.table.get_mut(&connection)?;
    let params = match params.into_iter().map(P::into_v4).collect() {
        Ok(params) => params,
        Err(error) => return Ok(Err(error.into())),
    };
    let postgres = &host.capabilities.postgres;
    let answer = postgres.query(connection, &statement, params).await;
    Ok(answer.map(Into::into).map_err(Into::into))
}

pub(super) async fn execute<P, E>(
    host: &mut Host,
    connection: Resource<Connection>,
    statement: String,
    params: Vec<P>,
) -> Answer<u64, E>
where
    P: Param,
    E: From<Error>,
{
    let connection = host.table.get_mut(&connection)?;
    let params = match params.into_iter().map(P::into_v4).collect() {
        Ok(params) => params,
        Err(error) => return Ok(Err(error.into())),
    };
    let postgres = &host.capabilities.postgres;
    Ok(postgres
        .execute(connection, &statement, params)
        .await
        .map_err(Into::into))
}

pub(super) fn drop(host: &mut Host, connection: Resource<Connection>) -> wasmtime::Result<()> {
    host.table.delete(connection)?;
    Ok(())
}

/// Serves one version's `connection` resource from the functions above; `$interface` is its
/// bindings' module, whose values convert to and from @4.0.0's.
macro_rules! serve {
    ($interface:ident) => {
        pub(super) fn link(
            linker: &mut wasmtime::component::Linker<$crate::host::Host>,
        ) -> wasmtime::Result<()> {
            $interface::add_to_linker::<_, wasmtime::component::HasSelf<$crate::host::Host>>(
                linker,
                |host| host,
            )
        }

        impl $interface::Host for $crate::host::Host {}

        impl $interface::HostConnection for $crate::host::Host {
            async fn open(
                &mut self,
                address: String,
            ) -> super::calls::Answer<
                wasmtime::component::Resource<super::Connection>,
                $interface::Error,
            > {
                super::calls::open(self, address).await
            }

            async fn query(
                &mut self,
                connection: wasmtime::component::Resource<super::Connection>,
                statement: String,
                params: Vec<$interface::ParameterValue>,
            ) -> super::calls::Answer<$interface::RowSet, $interface::Error> {
                super::calls::query(self, connection, statement, params).await
            }

            async fn execute(
                &mut self,
                connection: wasmtime::component::Resource<super::Connection>,
                statement: String,
                params: Vec<$interface::ParameterValue>,
            ) -> super::calls::Answer<u64, $interface::Error> {
                super::calls::execute(self, connection, statement, params).await
            }

            async fn drop(
                &mut self,
                connection: wasmtime::component::Resource<super::Connection>,
            ) -> wasmtime::Result<()> {
                super::calls::drop(self, connection)
            }
        }
    };
}
pub(super) use serve;

/// `From<@4.0.0's error>` for a version whose `query-failed` is only the message: the server's
/// error reads as PostgreSQL prints it.
macro_rules! flat_error {
    ($error:ty) => {
        impl From<$crate::bindings::spin::postgres4_0_0::postgres::Error> for $error {
            fn from(error: $crate::bindings::spin::postgres4_0_0::postgres::Error) -> Self {
                use $crate::bindings::spin::postgres4_0_0::postgres::{Error, QueryError};
                match error {
                    Error::ConnectionFailed(m) => Self::ConnectionFailed(m),
                    Error::BadParameter(m) => Self::BadParameter(m),
                    Error::QueryFailed(QueryError::Text(m)) => Self::QueryFailed(m),
                    Error::QueryFailed(QueryError::DbError(db)) => Self::QueryFailed(db.as_text),
                    Error::ValueConversionFailed(m) => Self::ValueConversionFailed(m),
                    Error::Other(m) => Self::Other(m),
                }
            }
        }
    };
}
pub(super) use flat_error;
