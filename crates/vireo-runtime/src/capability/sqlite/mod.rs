//! SQLite for functions: Spin's `fermyon:spin/sqlite@2.0.0` and `spin:sqlite/sqlite@3.0.0` over
//! the server's `SqliteDatabases`. A version may open only the databases its settings grant
//! (`sqlite_databases`); any other name is access-denied, decided before the database is looked
//! up. A connection holds one of the instance's connection slots until the guest drops it; each
//! statement is bounded by `[connections]` (rows, result bytes, call timeout) and counted in the
//! invocation's outbound calls and bytes.

mod spin;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::OwnedSemaphorePermit;
use vireo_core::{
    ConnectionLimits, Name, SqlBounds, SqlConnection, SqlFailure, SqlRows, SqlValue,
    SqliteDatabases, StoreError, VersionSettings,
};
use wasmtime::component::Linker;

use super::connections::{CallTally, InstanceSlots, OUTBOUND_CALL_DURATION_METRIC};
use super::{Capability, Grants, Invocation, Package};
use crate::engine::{EngineSettings, HostServices};
use crate::host::Host;
use crate::logs::LogCapture;

pub(crate) struct Sqlite {
    databases: Option<Arc<dyn SqliteDatabases>>,
    limits: ConnectionLimits,
}

/// What a version may do with SQLite databases, shared by its instances.
pub(crate) struct Granted {
    databases: Option<Arc<dyn SqliteDatabases>>,
    limits: ConnectionLimits,
    namespace: Name,
    granted: BTreeSet<Name>,
    durations: metrics::Histogram,
}

/// An instance's grant, its connection slots, and the tally of the invocation it serves.
pub(crate) struct Active {
    granted: Arc<Granted>,
    slots: InstanceSlots,
    tally: Arc<CallTally>,
}

/// An open database, as both interfaces' resource; dropping it returns the connection.
pub struct Connection {
    connection: Box<dyn SqlConnection>,
    /// What the last statement left, for `last-insert-rowid` and `changes`.
    last_insert_rowid: i64,
    changes: u64,
    _slot: OwnedSemaphorePermit,
}

/// Why an open or a statement failed, before it is said in an interface's own error type.
#[derive(Debug)]
pub(crate) enum Refusal {
    NoSuchDatabase,
    AccessDenied,
    DatabaseFull,
    Io(String),
}

impl Capability for Sqlite {
    const NAME: &str = "sqlite";
    const PACKAGES: &[Package] = &[
        Package::interfaces("fermyon:spin", "2.0", &["sqlite"]),
        Package::new("spin:sqlite", "3.0"),
    ];
    type Version = Arc<Granted>;
    type Instance = Active;

    fn new(settings: &EngineSettings, services: &HostServices) -> Self {
        Self {
            databases: services.sqlite.clone(),
            limits: settings.connections,
        }
    }

    fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        spin::link(linker)
    }

    fn validate(&self, settings: &VersionSettings) -> Result<(), vireo_core::BoxError> {
        if !settings.sqlite_databases.is_empty() && self.databases.is_none() {
            return Err(format!("sqlite_databases: {}", StoreError::SqliteUnavailable).into());
        }
        Ok(())
    }

    fn load(&self, grants: &Grants) -> Self::Version {
        Arc::new(Granted {
            databases: self.databases.clone(),
            limits: self.limits,
            namespace: grants.namespace.clone(),
            granted: grants.sqlite_databases.clone(),
            durations: metrics::histogram!(OUTBOUND_CALL_DURATION_METRIC, "kind" => "sqlite"),
        })
    }

    fn instance(granted: &Self::Version, _: &LogCapture) -> Self::Instance {
        Active {
            slots: InstanceSlots::new(&granted.limits),
            granted: granted.clone(),
            tally: Arc::default(),
        }
    }

    fn arm(active: &mut Self::Instance, invocation: &Invocation) {
        active.tally = invocation.outbound.clone();
    }
}

impl Active {
    /// Opens `label` if the version was granted it and it exists.
    async fn open(&self, label: &str) -> Result<Connection, Refusal> {
        let granted = &self.granted;
        let Some(name) = Name::parse("database", label)
            .ok()
            .filter(|name| granted.granted.contains(name))
        else {
            return Err(Refusal::AccessDenied);
        };
        let databases = granted
            .databases
            .as_ref()
            .ok_or_else(|| Refusal::Io(StoreError::SqliteUnavailable.to_string()))?;
        let slot = self.slots.take(&granted.limits).map_err(Refusal::Io)?;
        let wait = granted.limits.connect_timeout();
        match databases.connect(&granted.namespace, &name, wait).await {
            Ok(connection) => Ok(Connection {
                connection,
                last_insert_rowid: 0,
                changes: 0,
                _slot: slot,
            }),
            Err(StoreError::SqliteDatabaseNotFound { .. }) => Err(Refusal::NoSuchDatabase),
            Err(other) => Err(Refusal::Io(other.to_string())),
        }
    }

    /// Runs one statement, counting it and the bytes of its result for the invocation.
    async fn execute(
        &self,
        connection: &mut Connection,
        statement: &str,
        parameters: Vec<SqlValue>,
    ) -> Result<SqlRows, Refusal> {
        let limits = &self.granted.limits;
        let bounds = SqlBounds {
            max_rows: limits.max_rows,
            max_result_bytes: limits.max_result_bytes,
            timeout: limits.call_timeout(),
        };
        self.tally.called();
        let started = Instant::now();
        let result = connection
            .connection
            .execute(statement, parameters, bounds)
            .await;
        self.granted.durations.record(started.elapsed());
        let rows = result.map_err(|failure| match failure {
            SqlFailure::DatabaseFull => Refusal::DatabaseFull,
            SqlFailure::Failed(message) => Refusal::Io(message),
        })?;
        self.tally.moved(rows.size());
        connection.last_insert_rowid = rows.last_insert_rowid;
        connection.changes = rows.changes;
        Ok(rows)
    }
}
