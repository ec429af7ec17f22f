//! Spin's `spin:postgres/postgres@3.0.0` (`spin_sdk::pg3`).

use wasmtime::component::{HasSelf, Linker, Resource};

use super::Connection;
use crate::bindings::spin::postgres::postgres::{self, Error, ParameterValue, RowSet};
use crate::host::Host;

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    postgres::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)
}

type Answer<T> = wasmtime::Result<Result<T, Error>>;

impl postgres::Host for Host {}

impl postgres::HostConnection for Host {
    async fn open(&mut self, address: String) -> Answer<Resource<Connection>> {
        match self.capabilities.postgres.open(&address).await {
            Ok(connection) => Ok(Ok(self.table.push(connection)?)),
            Err(error) => Ok(Err(error)),
        }
    }

    async fn query(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Answer<RowSet> {
        let connection = self.table.get_mut(&connection)?;
        let postgres = &self.capabilities.postgres;
        Ok(postgres.query(connection, &statement, params).await)
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Answer<u64> {
        let connection = self.table.get_mut(&connection)?;
        let postgres = &self.capabilities.postgres;
        Ok(postgres.execute(connection, &statement, params).await)
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}
