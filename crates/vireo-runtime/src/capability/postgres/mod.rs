//! Outbound PostgreSQL for functions: Spin's `spin:postgres/postgres@3.0.0`. A guest opens a
//! connection string; the host checks the host and port it names against the version's
//! `allowed_outbound_hosts` (`postgres://host:port`), then lends the guest a connection from the
//! version's pool for that destination and credentials, and takes it back when the guest drops
//! it. Every call is bounded in time, rows and bytes; a call that times out is cancelled on the
//! server and its connection closed, never handed to the next borrower. A returned connection
//! is rolled back and reset before it is lent again, so no invocation sees another's open
//! transaction or session settings.

mod address;
mod spin3;
mod values;

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime, Timeouts};
use futures::TryStreamExt as _;
use tokio::sync::OwnedSemaphorePermit;
use tokio_postgres::NoTls;
use vireo_core::ConnectionLimits;
use vireo_core::egress::Scheme;
use wasmtime::component::Linker;

use super::connections::{self, InstanceSlots, Pools, ResultBudget};
use super::network::Approver;
use super::{Capability, Grants, Package};
use crate::bindings::spin::postgres::postgres::{Column, Error, RowSet};
use crate::engine::{EngineSettings, HostServices};
use crate::host::Host;
use crate::logs::LogCapture;

/// What a returned connection runs before it is lent again: ends any transaction the last
/// borrower left open, then what `DISCARD ALL` does short of dropping prepared statements.
const RESET: &str = "ROLLBACK; CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; \
                     UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; DISCARD SEQUENCES;";

pub(crate) struct Postgres {
    limits: ConnectionLimits,
}

/// A version's PostgreSQL state: where it may connect and its pools.
pub(crate) struct Granted {
    approver: Approver,
    pools: Pools<Pool>,
    limits: ConnectionLimits,
}

/// An instance's share: its version's pools, and the connections it holds.
pub(crate) struct Active {
    granted: Arc<Granted>,
    slots: InstanceSlots,
}

/// A connection lent to the guest; `None` once closed after a failed call.
pub struct Connection {
    client: Option<Object>,
    _slot: OwnedSemaphorePermit,
}

impl Capability for Postgres {
    const NAME: &str = "postgres";
    const PACKAGES: &[Package] = &[Package::new("spin:postgres", "3.0")];
    type Version = Arc<Granted>;
    type Instance = Active;

    fn new(settings: &EngineSettings, _: &HostServices) -> Self {
        Self {
            limits: settings.connections,
        }
    }

    fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        spin3::link(linker)
    }

    fn load(&self, grants: &Grants) -> Self::Version {
        Arc::new(Granted {
            approver: grants.approver(),
            pools: Pools::new(&self.limits),
            limits: self.limits,
        })
    }

    fn instance(granted: &Self::Version, _: &LogCapture) -> Self::Instance {
        Active {
            slots: InstanceSlots::new(&granted.limits),
            granted: granted.clone(),
        }
    }
}

impl Active {
    /// A connection to `address`, if the version may connect there.
    async fn open(&self, address: &str) -> Result<Connection, Error> {
        let limits = &self.granted.limits;
        let slot = self.slots.take(limits).map_err(Error::ConnectionFailed)?;
        let parsed = address::parse(address).map_err(Error::ConnectionFailed)?;
        let approved = connections::approve(
            &self.granted.approver,
            Scheme::Postgres,
            &parsed.host,
            parsed.port,
            limits,
        )
        .await
        .map_err(Error::ConnectionFailed)?;
        let pool = self
            .granted
            .pools
            .get_or_make(format!("{approved} {address}"), || {
                make_pool(parsed.to(approved, limits.connect_timeout()), limits)
            })
            .map_err(Error::ConnectionFailed)?;
        let idle = limits.idle_timeout();
        pool.retain(|_, metrics| metrics.last_used() < idle);
        let client = pool
            .get()
            .await
            .map_err(|e| Error::ConnectionFailed(e.to_string()))?;
        Ok(Connection {
            client: Some(client),
            _slot: slot,
        })
    }

    /// Runs `statement` and collects its rows, within the row, byte and time limits.
    async fn query(
        &self,
        connection: &mut Connection,
        statement: &str,
        params: Vec<values::Param>,
    ) -> Result<RowSet, Error> {
        let limits = self.granted.limits;
        let collecting = async |client: &Object| {
            let prepared = client.prepare(statement).await.map_err(failed)?;
            let columns = prepared
                .columns()
                .iter()
                .map(|column| Column {
                    name: column.name().to_string(),
                    data_type: values::data_type(column.type_()),
                })
                .collect();
            let params = params
                .iter()
                .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync));
            let stream = client.query_raw(&prepared, params).await.map_err(failed)?;
            let mut stream = std::pin::pin!(stream);
            let mut rows = Vec::new();
            let mut budget = ResultBudget::new(&limits);
            while let Some(row) = stream.try_next().await.map_err(failed)? {
                if rows.len() == limits.max_rows {
                    return Err(Error::QueryFailed(format!(
                        "the query returned more than {} rows (connections.max_rows)",
                        limits.max_rows
                    )));
                }
                let mut fields = Vec::with_capacity(row.len());
                for index in 0..row.len() {
                    let (value, bytes) =
                        values::field(&row, index).map_err(Error::ValueConversionFailed)?;
                    budget.spend(bytes).map_err(Error::QueryFailed)?;
                    fields.push(value);
                }
                rows.push(fields);
            }
            Ok(RowSet { columns, rows })
        };
        connection.call(&limits, collecting).await
    }

    /// Runs `statement` and says how many rows it changed, within the time limit.
    async fn execute(
        &self,
        connection: &mut Connection,
        statement: &str,
        params: Vec<values::Param>,
    ) -> Result<u64, Error> {
        let limits = self.granted.limits;
        let executing = async |client: &Object| {
            let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            client.execute(statement, &params).await.map_err(failed)
        };
        connection.call(&limits, executing).await
    }
}

impl Connection {
    /// Runs `call` on the connection within the call timeout. A call that times out is
    /// cancelled on the server and the connection closed; so is one whose connection broke.
    async fn call<T>(
        &mut self,
        limits: &ConnectionLimits,
        call: impl AsyncFnOnce(&Object) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let client = self.client.as_ref().ok_or_else(|| {
            Error::ConnectionFailed("the connection was closed after a failed call".into())
        })?;
        let (result, close) = match tokio::time::timeout(limits.call_timeout(), call(client)).await
        {
            Ok(result) => (result, client.is_closed()),
            Err(_) => {
                let cancel = client.cancel_token();
                tokio::spawn(async move { cancel.cancel_query(NoTls).await });
                let late = Error::QueryFailed(format!(
                    "the call took longer than {} ms (connections.call_timeout_ms)",
                    limits.call_timeout_ms
                ));
                (Err(late), true)
            }
        };
        if close {
            // Out of the pool for good: dropping it closes the connection.
            self.client.take().map(Object::take);
        }
        result
    }
}

/// A pool that connects with `config`.
fn make_pool(config: tokio_postgres::Config, limits: &ConnectionLimits) -> Result<Pool, String> {
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Custom(RESET.to_string()),
        },
    );
    let timeout = Some(limits.connect_timeout());
    Pool::builder(manager)
        .max_size(limits.pool_size)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: timeout,
            create: timeout,
            recycle: timeout,
        })
        .build()
        .map_err(|e| e.to_string())
}

/// A failed query or execute, as the WIT's error: the server's message for what the server
/// refused, `bad-parameter` for a parameter of the wrong type, `connection-failed` for a broken
/// connection.
fn failed(error: tokio_postgres::Error) -> Error {
    if let Some(db) = error.as_db_error() {
        return Error::QueryFailed(db.to_string());
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
