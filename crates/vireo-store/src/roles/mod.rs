//! The storage roles, written once for every SQL backend: one file per role (`catalog`,
//! `records`, `queue`, `queue_admin`, `schedules`, `sources`, `http_routes`, `tenants`, `secrets`,
//! `key_value`, `objects`, `nodes`, `master_key`), each implementing
//! its `vireo-core` trait for [`SqlStore`] over any [`Dialect`]. What a database does its own
//! way is a short trait beside the role (`CatalogDialect`, …): SQL text where the dialects
//! differ, or a step written differently, implemented in the backend's `dialect.rs`, or in its
//! file of that role where the difference is how a batch is written (`records`, `queue`).
//! What every role needs of a backend — its connections, how a transaction begins and how a
//! change is committed and announced — is [`Dialect`] itself.

pub(crate) mod catalog;
pub(crate) mod http_routes;
pub(crate) mod key_value;
pub(crate) mod master_key;
pub(crate) mod nodes;
pub(crate) mod objects;
pub(crate) mod queue;
pub(crate) mod queue_admin;
pub(crate) mod records;
pub(crate) mod schedules;
pub(crate) mod secrets;
pub(crate) mod sources;
pub(crate) mod tenants;

use std::ops::Deref;

use sqlx::pool::PoolConnection;
use sqlx::{Database, Transaction};
use vireo_core::{
    Catalog, Change, KeyValueStore, MasterKeyRecord, Name, NodeRegistry, ObjectStore, Queue,
    QueueAdmin, Records, RouteStore, ScheduleStore, SecretStore, SourceStore, StoreError,
    TenantStore,
};

use crate::plan;
use crate::sql::{self, Driver, Sql, query};
use crate::stores::Backend;

/// A transaction of the dialect `D`.
pub(crate) type Tx<D> = Transaction<'static, <D as Dialect>::Db>;
/// A connection of the dialect `D`, in a transaction or on its own.
pub(crate) type Conn<D> = <<D as Dialect>::Db as Database>::Connection;

/// A backend's connections, as every role uses them.
#[async_trait::async_trait]
pub(crate) trait Dialect: Clone + Send + Sync + 'static {
    type Db: Driver<Connection: Sql>;

    /// A connection for one statement that reads.
    async fn reader(&self) -> Result<PoolConnection<Self::Db>, StoreError>;

    /// A connection for one statement that writes, committed on its own.
    async fn writer(&self) -> Result<PoolConnection<Self::Db>, StoreError>;

    /// A transaction that reads, so existence checks and the data they guard see one snapshot.
    async fn read(&self) -> Result<Tx<Self>, StoreError>;

    /// A transaction that writes.
    async fn write(&self) -> Result<Tx<Self>, StoreError>;

    /// Commits a write and tells every node what it changed.
    async fn commit_change(&self, tx: Tx<Self>, change: Change) -> Result<(), StoreError>;

    /// Waits for other writes counting the namespace's contents against its quotas; held
    /// until commit. Nothing to do where one writer at a time writes.
    async fn lock_namespace(_conn: &mut Conn<Self>, _namespace: &Name) -> Result<(), StoreError> {
        Ok(())
    }

    /// Waits for other writes that read host claims to decide (a claim's overlap, a route's
    /// host, a release's routes); held until commit. Nothing to do where one writer at a time
    /// writes.
    async fn lock_host_claims(_conn: &mut Conn<Self>) -> Result<(), StoreError> {
        Ok(())
    }

    /// Waits for other nodes choosing a slot at the same moment; held until commit. Nothing
    /// to do where one writer at a time writes.
    async fn lock_node_slots(_conn: &mut Conn<Self>) -> Result<(), StoreError> {
        Ok(())
    }

    /// Closes every connection once the work using them is done.
    async fn close(&self);
}

/// Every role on the connections of one backend `D`; reads as `D` itself where a role needs
/// the connections.
#[derive(Debug)]
pub(crate) struct SqlStore<D> {
    backend: D,
    /// Where key-value reads and writes queue to be done in batches.
    key_value: key_value::KvQueues,
}

impl<D> SqlStore<D> {
    pub(crate) fn new(backend: D) -> Self {
        Self {
            backend,
            key_value: key_value::KvQueues::default(),
        }
    }
}

impl<D> Deref for SqlStore<D> {
    type Target = D;

    fn deref(&self) -> &D {
        &self.backend
    }
}

#[async_trait::async_trait]
impl<D: Dialect> Backend for SqlStore<D>
where
    Self: Catalog
        + Records
        + Queue
        + QueueAdmin
        + ScheduleStore
        + SourceStore
        + RouteStore
        + TenantStore
        + SecretStore
        + KeyValueStore
        + ObjectStore
        + MasterKeyRecord
        + NodeRegistry,
{
    async fn close(&self) {
        self.backend.close().await;
    }
}

pub(crate) const NAMESPACE_EXISTS: &str =
    "SELECT EXISTS (SELECT 1 FROM namespaces WHERE name = $1)";
/// Whether the namespace and the function exist, in one snapshot.
const FUNCTION_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM namespaces WHERE name = $1),
        EXISTS (SELECT 1 FROM functions WHERE namespace = $1 AND name = $2)";

/// `NamespaceNotFound` unless the namespace exists.
pub(crate) async fn check_namespace(
    conn: &mut impl Sql,
    namespace: &Name,
) -> Result<(), StoreError> {
    let exists: bool = query(NAMESPACE_EXISTS)
        .bind(namespace.as_str())
        .scalar(conn, "checking namespace")
        .await?;
    if exists {
        Ok(())
    } else {
        Err(StoreError::NamespaceNotFound(namespace.clone()))
    }
}

/// `NamespaceNotFound` or `FunctionNotFound`, whichever is precise; one query, one snapshot.
pub(crate) async fn check_function(
    conn: &mut impl Sql,
    namespace: &Name,
    function: &Name,
) -> Result<(), StoreError> {
    let row = query(FUNCTION_EXISTS)
        .bind(namespace.as_str())
        .bind(function.as_str())
        .fetch_one(conn, "checking function")
        .await?;
    plan::function_found(
        namespace,
        function,
        crate::rows::column(&row, 0)?,
        crate::rows::column(&row, 1)?,
    )
}

/// Commits a transaction that changed nothing other nodes keep a copy of.
pub(crate) async fn commit<D: Dialect>(tx: Tx<D>) -> Result<(), StoreError> {
    sql::commit(tx).await
}
