//! The network capability: outgoing connections from functions, today outgoing HTTP
//! (`wasi:http`). Its parts are the ones every outgoing protocol shares — the policy that
//! approves destinations (`policy.rs`, `addresses.rs`), the limits on how many connections an
//! invocation and the server may hold (`limits.rs`), the invocation's trace (`trace.rs`) — and
//! the HTTP-specific hook (`http.rs`) and sender (`send.rs`). Sockets and database clients will
//! ask the same policy and take from the same budget.

mod addresses;
mod http;
mod limits;
mod policy;
mod send;
mod trace;

use std::sync::Arc;

use vireo_core::{BoxError, VersionSettings};
use wasmtime::component::Linker;
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

pub use limits::EgressLimits;
pub(super) use policy::{Approver, InvalidOutbound, Refusal, allowed};
pub(crate) use trace::OutgoingTrace;

use super::{Capability, Grants, Invocation, Package};
use crate::engine::{EngineSettings, HostServices};
use crate::host::Host;
use crate::logs::LogCapture;
use http::HttpHooks;
use limits::ServerConnections;
use policy::OutboundPolicy;

/// Outgoing connections, within the server's `[egress]` limits.
pub(crate) struct Network {
    limits: EgressLimits,
    /// Open outgoing connections, all versions together.
    connections: ServerConnections,
    tls: Arc<rustls::ClientConfig>,
}

/// An instance's `wasi:http` state.
pub(crate) struct NetworkCtx {
    http: WasiHttpCtx,
    hooks: HttpHooks,
}

impl Capability for Network {
    const NAME: &str = "network";
    const PACKAGES: &[Package] = &[Package::new("wasi:http", "0.2")];
    type Version = Arc<OutboundPolicy>;
    type Instance = NetworkCtx;

    fn new(settings: &EngineSettings, _: &HostServices) -> Self {
        Self {
            limits: settings.egress,
            connections: ServerConnections::new(settings.egress.max_connections),
            tls: settings.outbound_trust.config(),
        }
    }

    fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)
    }

    fn validate(&self, settings: &VersionSettings) -> Result<(), BoxError> {
        policy::allowed(settings)?;
        Ok(())
    }

    fn load(&self, grants: &Grants) -> Self::Version {
        Arc::new(OutboundPolicy::new(
            grants.approver(),
            self.limits,
            self.connections.clone(),
            self.tls.clone(),
        ))
    }

    fn instance(policy: &Self::Version, output: &LogCapture) -> Self::Instance {
        NetworkCtx {
            http: WasiHttpCtx::new(),
            hooks: HttpHooks::new(policy.clone(), output.stderr()),
        }
    }

    fn arm(instance: &mut Self::Instance, invocation: &Invocation) {
        instance.hooks.start_invocation(invocation.trace.clone());
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        let network = &mut self.capabilities.network;
        WasiHttpCtxView {
            ctx: &mut network.http,
            table: &mut self.table,
            hooks: &mut network.hooks,
        }
    }
}
