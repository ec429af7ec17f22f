//! Outbound PostgreSQL for functions: Spin's `spin:postgres/postgres@4.0.0` and `@3.0.0` and
//! Spin 2's `fermyon:spin/postgres@2.0.0`, one implementation (the older interfaces' values and
//! errors convert through @4.0.0's). A guest opens a connection string; the host checks the host
//! and port it names against the version's `allowed_outbound_hosts` (`postgres://host:port`),
//! then lends the guest a connection from the version's pool for that destination and
//! credentials, and takes it back when the guest drops it. Every call is bounded in time, rows
//! and bytes; a call that times out is cancelled on the server and its connection closed, never
//! handed to the next borrower. A returned connection is rolled back and reset before it is
//! lent again, so no invocation sees another's open transaction or session settings.

mod address;
mod calls;
mod spin2;
mod spin3;
mod spin4;
mod values;
mod wire;

use deadpool_postgres::{ClientWrapper, Manager, ManagerConfig, RecyclingMethod};
use futures::TryStreamExt as _;
use tokio_postgres_rustls::MakeRustlsConnect;
use vireo_core::ConnectionLimits;
use vireo_core::egress::Scheme;
use wasmtime::component::Linker;

use super::OutboundTrust;
use super::Package;
use super::connections::{Active, Asked, Cut, Lent, Protocol};
use crate::bindings::spin::postgres4_0_0::postgres::{Column, DbError, Error, QueryError, RowSet};
use crate::host::Host;

/// What a returned connection runs before it is lent again: ends any transaction the last
/// borrower left open, then what `DISCARD ALL` does short of dropping prepared statements.
const RESET: &str = "ROLLBACK; CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; \
                     UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES;";

/// PostgreSQL connections.
pub(crate) struct Postgres;

/// A connection lent to the guest.
pub type Connection = Lent<Manager>;

impl Protocol for Postgres {
    const NAME: &str = "postgres";
    const PACKAGES: &[Package] = &[
        Package::new("spin:postgres", "4.0"),
        Package::new("spin:postgres", "3.0"),
        Package::interfaces("fermyon:spin", "2.0", &["postgres"]),
    ];
    type Manager = Manager;

    fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        spin4::link(linker)?;
        spin3::link(linker)?;
        spin2::link(linker)
    }
}

impl Active<Manager> {
    /// A connection to `address`, if the version may connect there.
    async fn open(&self, address: &str) -> Result<Connection, Error> {
        let parsed = address::parse(address).map_err(Error::ConnectionFailed)?;
        let timeout = self.destinations.limits.connect_timeout();
        let asked = Asked {
            scheme: Scheme::Postgres,
            host: &parsed.host,
            port: parsed.port,
            address,
        };
        self.lend(asked, |approved| {
            let reset = ManagerConfig {
                recycling_method: RecyclingMethod::Custom(RESET.to_string()),
            };
            Ok(Manager::from_config(
                parsed.to(approved, timeout),
                tls(&self.destinations.trust),
                reset,
            ))
        })
        .await
        .map_err(Error::ConnectionFailed)
    }

    /// Runs `statement` and collects its rows, within the row, byte and time limits.
    async fn query(
        &self,
        connection: &mut Connection,
        statement: &str,
        params: Vec<impl calls::IntoV4>,
    ) -> Result<RowSet, Error> {
        let params = values::params(params).map_err(Error::BadParameter)?;
        let limits = self.destinations.limits;
        let mut budget = connection.budget(&limits);
        let collecting = async |client: &mut ClientWrapper| {
            let prepared = client.prepare(statement).await.map_err(failed)?;
            let columns = prepared
                .columns()
                .iter()
                .map(|column| Column {
                    name: column.name().to_string(),
                    data_type: values::data_type(column.type_()),
                })
                .collect();
            let stream = client
                .query_raw(&prepared, values::borrowed(&params))
                .await
                .map_err(failed)?;
            let mut stream = std::pin::pin!(stream);
            let mut rows = Vec::new();
            while let Some(row) = stream.try_next().await.map_err(failed)? {
                budget.row().map_err(text)?;
                let mut fields = Vec::with_capacity(row.len());
                for index in 0..row.len() {
                    let (value, bytes) =
                        values::field(&row, index).map_err(Error::ValueConversionFailed)?;
                    budget.spend(bytes).map_err(text)?;
                    fields.push(value);
                }
                rows.push(fields);
            }
            Ok(RowSet { columns, rows })
        };
        call(connection, &limits, &self.destinations.trust, collecting).await
    }

    /// Runs `statement` and says how many rows it changed, within the time limit.
    async fn execute(
        &self,
        connection: &mut Connection,
        statement: &str,
        params: Vec<impl calls::IntoV4>,
    ) -> Result<u64, Error> {
        let params = values::params(params).map_err(Error::BadParameter)?;
        let limits = self.destinations.limits;
        let executing = async |client: &mut ClientWrapper| {
            let params: Vec<_> = values::borrowed(&params).collect();
            client.execute(statement, &params).await.map_err(failed)
        };
        call(connection, &limits, &self.destinations.trust, executing).await
    }
}

/// Runs `work` on the lent connection within the call timeout. A call that times out is
/// cancelled on the server and the connection closed; so is one whose connection broke.
async fn call<T>(
    connection: &mut Connection,
    limits: &ConnectionLimits,
    trust: &OutboundTrust,
    work: impl AsyncFnOnce(&mut ClientWrapper) -> Result<T, Error>,
) -> Result<T, Error> {
    let cancel = |client: &ClientWrapper| {
        let cancel = client.cancel_token();
        let tls = tls(trust);
        tokio::spawn(async move { cancel.cancel_query(tls).await });
    };
    let broken = |_: &Result<T, Error>, client: &ClientWrapper| client.is_closed();
    match connection.call(limits, work, broken, cancel).await {
        Ok(result) => result,
        Err(cut @ Cut::Closed) => Err(Error::ConnectionFailed(cut.to_string())),
        Err(cut @ Cut::Late(_)) => Err(text(cut.to_string())),
    }
}

/// TLS for connections whose string asks for it. Certificates are checked against the host the
/// string names: tokio-postgres hands the connector that name, not the approved address.
fn tls(trust: &OutboundTrust) -> MakeRustlsConnect {
    MakeRustlsConnect::new((*trust.config()).clone())
}

/// A failed query or execute, as the WIT's error: the server's error with its fields for what
/// the server refused, `bad-parameter` for a parameter of the wrong type, `connection-failed`
/// for a broken connection.
fn failed(error: tokio_postgres::Error) -> Error {
    if let Some(db) = error.as_db_error() {
        return Error::QueryFailed(QueryError::DbError(db_error(db)));
    }
    if error.is_closed() {
        return Error::ConnectionFailed(error.to_string());
    }
    let wrong_type = std::error::Error::source(&error)
        .is_some_and(|source| source.is::<tokio_postgres::types::WrongType>());
    if wrong_type {
        return Error::BadParameter(error.to_string());
    }
    Error::Other(error.to_string())
}

/// A query that failed on the host's side (a limit, a timeout).
fn text(message: String) -> Error {
    Error::QueryFailed(QueryError::Text(message))
}

/// The server's error as the WIT's record: what it names, and its other fields as `extras`.
fn db_error(db: &tokio_postgres::error::DbError) -> DbError {
    let position = db.position().map(|position| match position {
        tokio_postgres::error::ErrorPosition::Original(at) => at.to_string(),
        tokio_postgres::error::ErrorPosition::Internal { position, .. } => position.to_string(),
    });
    let extras = [
        ("hint", db.hint().map(str::to_string)),
        ("position", position),
        ("where", db.where_().map(str::to_string)),
        ("schema", db.schema().map(str::to_string)),
        ("table", db.table().map(str::to_string)),
        ("column", db.column().map(str::to_string)),
        ("datatype", db.datatype().map(str::to_string)),
        ("constraint", db.constraint().map(str::to_string)),
    ];
    DbError {
        as_text: db.to_string(),
        severity: db.severity().to_string(),
        code: db.code().code().to_string(),
        message: db.message().to_string(),
        detail: db.detail().map(str::to_string),
        extras: extras
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_string(), value?)))
            .collect(),
    }
}
