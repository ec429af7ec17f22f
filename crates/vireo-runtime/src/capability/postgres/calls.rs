//! What each version of the interface does with a connection, whatever its version: values and
//! errors convert to and from `spin:postgres/postgres@4.0.0`'s, which the host speaks.

use wasmtime::component::Resource;

use super::Connection;
use crate::bindings::spin::postgres4_0_0::postgres::{Error, ParameterValue, RowSet};
use crate::host::Host;

/// A version's parameter, as @4.0.0's; one that has no @4.0.0 equivalent is refused with why
/// (the interface's `bad-parameter`).
pub(crate) trait IntoV4 {
    fn into_v4(self) -> Result<ParameterValue, String>;
}

impl IntoV4 for ParameterValue {
    fn into_v4(self) -> Result<ParameterValue, String> {
        Ok(self)
    }
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
    P: IntoV4,
    R: From<RowSet>,
    E: From<Error>,
{
    let connection = host.table.get_mut(&connection)?;
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
    P: IntoV4,
    E: From<Error>,
{
    let connection = host.table.get_mut(&connection)?;
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

/// `$value` of one version's variant as the same-named variant of another's: `$carried` are
/// those with a payload, `$bare` those without; any other is `$otherwise`.
macro_rules! same_variants {
    ($value:expr, $from:ty => $to:ty,
     [$($carried:ident),*], [$($bare:ident),*] $(, $otherwise:expr)?) => {{
        type Source = $from;
        type Target = $to;
        match $value {
            $(Source::$carried(v) => Target::$carried(v),)*
            $(Source::$bare => Target::$bare,)*
            $(_ => $otherwise,)?
        }
    }};
}
pub(super) use same_variants;

/// `From<@4.0.0's row set>` for an older version's, through its module's `data_type` and
/// `value` functions.
macro_rules! row_set_from_v4 {
    () => {
        impl From<v4::RowSet> for RowSet {
            fn from(set: v4::RowSet) -> Self {
                let column = |column: v4::Column| Column {
                    name: column.name,
                    data_type: data_type(column.data_type),
                };
                let rows = set.rows.into_iter();
                Self {
                    columns: set.columns.into_iter().map(column).collect(),
                    rows: rows
                        .map(|row| row.into_iter().map(value).collect())
                        .collect(),
                }
            }
        }
    };
}
pub(super) use row_set_from_v4;
