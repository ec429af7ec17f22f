//! WASI 0.2 — cli, clocks, filesystem, io, random, sockets — linked in full so that components
//! from any toolchain instantiate, and granting nothing but the version's environment, captured
//! stdout/stderr and, for a version with `tcp://` entries, TCP sockets within them (`sockets`):
//! no arguments, no preopened directories, no UDP.

use std::sync::Arc;

use wasmtime::component::Linker;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::sockets::{SocketGrant, Sockets};
use super::{Capability, Grants, Invocation, Package};
use crate::engine::{EngineSettings, HostServices};
use crate::host::Host;
use crate::logs::LogCapture;

pub(crate) struct Wasi {
    max_connects: u32,
    resolve_timeout: std::time::Duration,
}

/// What a version's instances get: its environment and its socket grant.
pub(crate) struct Granted {
    environment: Vec<(String, String)>,
    sockets: Option<Arc<SocketGrant>>,
}

/// An instance's WASI context and, when granted, its sockets.
pub(crate) struct Active {
    ctx: WasiCtx,
    pub sockets: Option<Arc<Sockets>>,
}

impl Capability for Wasi {
    const NAME: &str = "wasi";
    const PACKAGES: &[Package] = &[
        Package::new("wasi:cli", "0.2"),
        Package::new("wasi:clocks", "0.2"),
        Package::new("wasi:filesystem", "0.2"),
        Package::new("wasi:io", "0.2"),
        Package::new("wasi:random", "0.2"),
        Package::new("wasi:sockets", "0.2"),
    ];
    type Version = Granted;
    type Instance = Active;

    fn new(settings: &EngineSettings, _: &HostServices) -> Self {
        Self {
            max_connects: settings.egress.requests_per_invocation,
            resolve_timeout: settings.connections.connect_timeout(),
        }
    }

    fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        wasmtime_wasi::p2::add_to_linker_async(linker)?;
        super::sockets::link(linker)
    }

    fn load(&self, grants: &Grants) -> Self::Version {
        Granted {
            environment: grants.environment.clone(),
            sockets: SocketGrant::new(
                grants.approver(),
                grants.outbound.clone(),
                self.max_connects,
                self.resolve_timeout,
            ),
        }
    }

    fn instance(granted: &Self::Version, output: &LogCapture) -> Self::Instance {
        let sockets = granted.sockets.clone().map(Sockets::new);
        let mut wasi = WasiCtx::builder();
        wasi.envs(&granted.environment)
            .stdout(output.stdout())
            .stderr(output.stderr())
            .allow_udp(false);
        match &sockets {
            Some(sockets) => wasi
                .allow_tcp(true)
                .allow_ip_name_lookup(true)
                .socket_addr_check(Sockets::check(sockets.clone())),
            None => wasi
                .allow_tcp(false)
                .allow_ip_name_lookup(false)
                .socket_addr_check(|_, _| Box::pin(async { false })),
        };
        Active {
            ctx: wasi.build(),
            sockets,
        }
    }

    fn arm(active: &mut Self::Instance, _: &Invocation) {
        if let Some(sockets) = &active.sockets {
            sockets.arm();
        }
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.capabilities.wasi.ctx,
            table: &mut self.table,
        }
    }
}
