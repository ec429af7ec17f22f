//! Spin's `fermyon:spin/mysql@2.0.0` (`spin_sdk::mysql`).

use wasmtime::component::{HasSelf, Linker, Resource};

use super::Connection;
use crate::bindings::fermyon::spin::mysql;
use crate::bindings::fermyon::spin::rdbms_types::{self, Error, ParameterValue, RowSet};
use crate::host::Host;

pub(super) fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    rdbms_types::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)?;
    mysql::add_to_linker::<_, HasSelf<Host>>(linker, |host| host)
}

type Answer<T> = wasmtime::Result<Result<T, Error>>;

impl rdbms_types::Host for Host {}

impl mysql::Host for Host {}

impl mysql::HostConnection for Host {
    async fn open(&mut self, address: String) -> Answer<Resource<Connection>> {
        match self.capabilities.mysql.open(&address).await {
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
        let mysql = &self.capabilities.mysql;
        Ok(mysql.query(connection, &statement, params).await)
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Answer<()> {
        let connection = self.table.get_mut(&connection)?;
        let mysql = &self.capabilities.mysql;
        Ok(mysql.execute(connection, &statement, params).await)
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(connection)?;
        Ok(())
    }
}
