//! Outbound MySQL and MariaDB for functions: Spin's `fermyon:spin/mysql@2.0.0`. A guest opens a
//! `mysql://user:password@host[:port]/db` URL; the host checks its host and port against the
//! version's `allowed_outbound_hosts` (`mysql://host:port`) and lends a connection from the
//! version's pool for that destination and credentials. A returned connection is reset
//! (`COM_RESET_CONNECTION`: open transactions rolled back, session state and prepared
//! statements dropped) before it is lent again; a call past the call timeout closes it.

mod spin;
mod values;

use std::net::SocketAddr;

use deadpool::managed::{Metrics, RecycleResult};
use mysql_async::prelude::Queryable as _;
use mysql_async::{Conn, Opts, OptsBuilder};
use vireo_core::ConnectionLimits;
use vireo_core::egress::Scheme;
use wasmtime::component::Linker;

use super::Package;
use super::connections::{Active, Asked, Cut, Lent, Protocol};
use crate::bindings::fermyon::spin::rdbms_types::{Column, Error, ParameterValue, RowSet};
use crate::host::Host;

/// MySQL's port when a URL names none.
const DEFAULT_PORT: u16 = 3306;

/// MySQL connections.
pub(crate) struct Mysql;

/// A connection lent to the guest.
pub type Connection = Lent<Connections>;

/// Makes connections to one destination with one set of credentials.
pub(crate) struct Connections(Opts);

impl Protocol for Mysql {
    const NAME: &str = "mysql";
    const PACKAGES: &[Package] = &[Package::interfaces(
        "fermyon:spin",
        "2.0",
        &["mysql", "rdbms-types"],
    )];
    type Manager = Connections;

    fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        spin::link(linker)
    }
}

impl deadpool::managed::Manager for Connections {
    type Type = Conn;
    type Error = mysql_async::Error;

    async fn create(&self) -> Result<Conn, mysql_async::Error> {
        Conn::new(self.0.clone()).await
    }

    async fn recycle(&self, conn: &mut Conn, _: &Metrics) -> RecycleResult<mysql_async::Error> {
        conn.reset().await?;
        Ok(())
    }
}

/// The options of `address`, and the host and port it names; the error never quotes it.
fn parse(address: &str) -> Result<(Opts, String, u16), Error> {
    let opts = Opts::from_url(address)
        .map_err(|e| Error::ConnectionFailed(format!("invalid address: {e}")))?;
    if opts.socket().is_some() {
        return Err(Error::ConnectionFailed(
            "unix sockets are not accepted: name a TCP host".into(),
        ));
    }
    let host = opts.ip_or_hostname().to_string();
    let port = if opts.tcp_port() == 0 {
        DEFAULT_PORT
    } else {
        opts.tcp_port()
    };
    Ok((opts, host, port))
}

/// Options that connect to `approved` only, over TCP.
fn to(opts: Opts, approved: SocketAddr) -> Opts {
    OptsBuilder::from_opts(opts)
        .ip_or_hostname(approved.ip().to_string())
        .tcp_port(approved.port())
        .prefer_socket(false)
        .into()
}

impl Active<Connections> {
    /// A connection to `address`, if the version may connect there.
    async fn open(&self, address: &str) -> Result<Connection, Error> {
        let (opts, host, port) = parse(address)?;
        let asked = Asked {
            scheme: Scheme::Mysql,
            host: &host,
            port,
            address,
        };
        self.lend(asked, |approved| Ok(Connections(to(opts, approved))))
            .await
            .map_err(Error::ConnectionFailed)
    }

    /// Runs `statement` and collects its rows, within the row, byte and time limits.
    async fn query(
        &self,
        connection: &mut Connection,
        statement: &str,
        params: Vec<ParameterValue>,
    ) -> Result<RowSet, Error> {
        let params = values::params(params);
        let limits = self.destinations.limits;
        let mut budget = connection.budget(&limits);
        let collecting = async |conn: &mut Conn| {
            let mut result = conn.exec_iter(statement, params).await.map_err(failed)?;
            let columns: Vec<mysql_async::Column> =
                result.columns().map(|c| c.to_vec()).unwrap_or_default();
            let mut rows = Vec::new();
            while let Some(row) = result.next().await.map_err(failed)? {
                budget.row().map_err(Error::QueryFailed)?;
                let mut fields = Vec::with_capacity(columns.len());
                for (column, value) in columns.iter().zip(row.unwrap()) {
                    let (value, bytes) = values::field(column, value)?;
                    budget.spend(bytes).map_err(Error::QueryFailed)?;
                    fields.push(value);
                }
                rows.push(fields);
            }
            let columns = columns
                .iter()
                .map(|column| Column {
                    name: column.name_str().to_string(),
                    data_type: values::data_type(column),
                })
                .collect();
            Ok(RowSet { columns, rows })
        };
        call(connection, &limits, collecting).await
    }

    /// Runs `statement`, within the time limit.
    async fn execute(
        &self,
        connection: &mut Connection,
        statement: &str,
        params: Vec<ParameterValue>,
    ) -> Result<(), Error> {
        let params = values::params(params);
        let limits = self.destinations.limits;
        let executing =
            async |conn: &mut Conn| conn.exec_drop(statement, params).await.map_err(failed);
        call(connection, &limits, executing).await
    }
}

/// Runs `work` on the lent connection within the call timeout; a call that times out, or
/// whose connection broke, closes the connection.
async fn call<T>(
    connection: &mut Connection,
    limits: &ConnectionLimits,
    work: impl AsyncFnOnce(&mut Conn) -> Result<T, Error>,
) -> Result<T, Error> {
    let broken =
        |result: &Result<T, Error>, _: &Conn| matches!(result, Err(Error::ConnectionFailed(_)));
    match connection.call(limits, work, broken, |_| {}).await {
        Ok(result) => result,
        Err(cut @ Cut::Closed) => Err(Error::ConnectionFailed(cut.to_string())),
        Err(cut @ Cut::Late(_)) => Err(Error::QueryFailed(cut.to_string())),
    }
}

/// A failed call, as the WIT's error: the server's message for what the server refused.
fn failed(error: mysql_async::Error) -> Error {
    match error {
        mysql_async::Error::Server(server) => Error::QueryFailed(server.message),
        mysql_async::Error::Driver(driver) => Error::BadParameter(driver.to_string()),
        mysql_async::Error::Io(io) => Error::ConnectionFailed(io.to_string()),
        other => Error::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_host_and_port_and_connect_to_the_approved_address() {
        let (opts, host, port) = parse("mysql://ada:secret@db.example.com/app").unwrap();
        assert_eq!((host.as_str(), port), ("db.example.com", 3306));
        let opts = to(opts, "10.0.0.5:3307".parse().unwrap());
        assert_eq!((opts.ip_or_hostname(), opts.tcp_port()), ("10.0.0.5", 3307));
        assert!(!opts.prefer_socket());
        assert_eq!(opts.user(), Some("ada"));
        let err = parse("postgres://ada:hunter2@h/app").unwrap_err();
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }
}
