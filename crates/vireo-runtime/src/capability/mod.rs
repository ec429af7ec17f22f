//! What a function may do: each family of host interfaces is one capability, a module that
//! declares the WIT packages it provides, links them once per engine, refuses a version's
//! settings it could not grant at deploy, builds the version's state at load from its
//! [`Grants`], and each instance's state per `Store`. The list below is the registry: the
//! linker, deploy validation and its rejection text are all made from it, so they cannot drift.
//!
//! Adding a host interface is a module implementing [`Capability`] (with the `*View` impl for
//! `Host` that its bindings project through), one line in the list, and a fixture test under
//! `tests/capabilities/`.
//!
//! WIT that Vireo binds itself is vendored at pinned versions under `wit/` behind one
//! `bindgen!` (`src/bindings.rs`); wasmtime-wasi and wasmtime-wasi-http bring WASI and wasi:http
//! with their own bindings (ARCHITECTURE.md, "Capabilities").

pub(crate) mod blobstore;
mod config;
mod connections;
mod grants;
pub(crate) mod key_value;
pub(crate) mod mqtt;
pub(crate) mod mysql;
mod network;
pub(crate) mod postgres;
pub(crate) mod redis;
pub(crate) mod sqlite;
#[macro_use]
mod registry;
mod sockets;
mod tally;
mod trust;
mod wasi;

use vireo_core::{BoxError, VersionSettings};
use wasmtime::component::Linker;

pub use blobstore::ObjectUse;
pub use connections::{OUTBOUND_CALL_DURATION_METRIC, OUTBOUND_CONNECTIONS_METRIC, OutboundUse};
pub(crate) use grants::Grants;
pub use grants::Opened;
pub use key_value::KeyValueUse;
pub use network::EgressLimits;
pub(crate) use network::OutgoingTrace;
pub use registry::SettingsRefused;
pub use tally::StoreUse;
pub use trust::OutboundTrust;
pub(crate) use trust::server_name;

use crate::engine::{EngineSettings, HostServices};
use crate::host::Host;
use crate::logs::LogCapture;

capabilities! {
    /// WASI 0.2, granting the environment, captured output and TCP within `tcp://` grants.
    wasi: wasi::Wasi,
    /// Outgoing connections: wasi:http, within the version's allowed_outbound_hosts.
    network: network::Network,
    /// The version's variables: wasi:config and Spin's variables.
    config: config::Config,
    /// The version's key-value stores: wasi:keyvalue and Spin's key-value.
    key_value: key_value::KeyValue,
    /// The version's buckets: wasi:blobstore.
    blobstore: blobstore::Blobstore,
    /// Outbound PostgreSQL: Spin's postgres, within the version's allowed_outbound_hosts.
    postgres: connections::Outbound<postgres::Postgres>,
    /// Outbound Redis: Spin's redis, within the version's allowed_outbound_hosts.
    redis: connections::Outbound<redis::Redis>,
    /// Outbound MQTT: Spin's mqtt, within the version's allowed_outbound_hosts.
    mqtt: connections::Outbound<mqtt::Mqtt>,
    /// Outbound MySQL and MariaDB: Spin's mysql, within the version's allowed_outbound_hosts.
    mysql: connections::Outbound<mysql::Mysql>,
    /// The namespace's SQLite databases: Spin's sqlite, within the version's sqlite_databases.
    sqlite: sqlite::Sqlite,
}

/// One family of host interfaces, in the three lifetimes of a server: linked once per engine,
/// loaded once per version, instantiated once per `Store`.
pub(crate) trait Capability {
    /// Names it in errors.
    const NAME: &str;
    /// The WIT packages it links: what a component may import from it.
    const PACKAGES: &[Package];
    /// Built from a version's grants when it loads; shared by its instances.
    type Version: Send + Sync;
    /// One instance's state, held in its `Host` (an `Option` for a capability a version may
    /// not be granted).
    type Instance: Send;

    /// From the server's settings and the services it lends, once.
    fn new(settings: &EngineSettings, services: &HostServices) -> Self;

    /// Adds its interfaces to the engine's linker.
    fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()>;

    /// At deploy: refuses settings it could not grant, with a message naming the setting.
    fn validate(&self, _settings: &VersionSettings) -> Result<(), BoxError> {
        Ok(())
    }

    /// At load: the version's state, from its grants only.
    fn load(&self, grants: &Grants) -> Self::Version;

    /// A new instance's state; `output` is where its stdout and stderr are captured.
    fn instance(version: &Self::Version, output: &LogCapture) -> Self::Instance;

    /// Readies an instance (new, pre-instantiated or reused) for the invocation it serves next.
    fn arm(_instance: &mut Self::Instance, _invocation: &Invocation) {}
}

/// A WIT package a capability links, at every minor-compatible version (`0.2` links `0.2.x`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Package {
    /// `namespace:name`, e.g. `wasi:http`.
    name: &'static str,
    /// `major.minor`, e.g. `0.2`.
    version: &'static str,
    /// Only these interfaces of it, when it links part of a package; empty for all.
    interfaces: &'static [&'static str],
}

impl Package {
    pub const fn new(name: &'static str, version: &'static str) -> Self {
        Self {
            name,
            version,
            interfaces: &[],
        }
    }

    /// `wasi:http`, or `fermyon:spin/variables` and `fermyon:spin/redis` for parts of a package.
    pub(crate) fn described(&self) -> Vec<String> {
        match self.interfaces {
            [] => vec![self.name.to_string()],
            interfaces => interfaces
                .iter()
                .map(|interface| format!("{}/{interface}", self.name))
                .collect(),
        }
    }

    /// Part of a package: only `interfaces` of it.
    pub const fn interfaces(
        name: &'static str,
        version: &'static str,
        interfaces: &'static [&'static str],
    ) -> Self {
        Self {
            name,
            version,
            interfaces,
        }
    }

    /// Whether `import` (`wasi:http/types@0.2.4`) is an interface of this package at a version
    /// it links.
    pub fn provides(&self, import: &str) -> bool {
        let Some((path, version)) = import.rsplit_once('@') else {
            return false;
        };
        path.strip_prefix(self.name)
            .and_then(|interface| interface.strip_prefix('/'))
            .is_some_and(|interface| {
                self.interfaces.is_empty() || self.interfaces.contains(&interface)
            })
            && version
                .strip_prefix(self.version)
                .is_some_and(|patch| patch.starts_with('.'))
    }
}

/// What an invocation brings to the instance that serves it.
pub(crate) struct Invocation {
    /// The trace its outgoing requests continue.
    pub trace: Option<OutgoingTrace>,
    /// What it does with key-value stores.
    pub key_value: std::sync::Arc<tally::Tally>,
    /// What it does with buckets.
    pub objects: std::sync::Arc<tally::Tally>,
    /// What it does over database and broker connections.
    pub outbound: std::sync::Arc<connections::CallTally>,
    /// Its depth in a chain of bucket events: the `ce-vireodepth` of the event that invoked
    /// it, 0 when none did.
    pub event_depth: u32,
}

impl Invocation {
    pub fn of<B>(request: &http::Request<B>) -> Self {
        Self {
            trace: OutgoingTrace::of(request.headers()),
            key_value: std::sync::Arc::default(),
            objects: std::sync::Arc::default(),
            outbound: std::sync::Arc::default(),
            event_depth: request
                .headers()
                .get(vireo_core::EVENT_DEPTH_HEADER)
                .and_then(|depth| depth.to_str().ok()?.parse().ok())
                .unwrap_or(0),
        }
    }
}
