//! What each version of the interface does with a connection, whatever its version: values and
//! errors convert to and from `spin:postgres/postgres@4.0.0`'s, which the host speaks.

use wasmtime::component::Resource;

use super::Connection;
use crate::bindings::spin::postgres4_0_0::postgres::{Error, ParameterValue, RowSet};
use crate::host::Host;

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
    P: Into<ParameterValue>,
    R: From<RowSet>,
    E: From<Error>,
{
    let connection = host.table.get_mut(&connection)?;
    let params = params.into_iter().map(Into::into).collect();
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
    P: Into<ParameterValue>,
    E: From<Error>,
{
    let connection = host.table.get_mut(&connection)?;
    let params = params.into_iter().map(Into::into).collect();
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
