//! WASI 0.2 — cli, clocks, filesystem, io, random, sockets — linked in full so that components
//! from any toolchain instantiate, and granting nothing but the version's environment and
//! captured stdout/stderr: no arguments, no preopened directories, no sockets, no name lookups.
//! Sockets, when granted, will ask the network capability's policy for each address.

use wasmtime::component::Linker;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::{Capability, Grants, Package};
use crate::engine::{EngineSettings, HostServices};
use crate::host::Host;
use crate::logs::LogCapture;

pub(crate) struct Wasi;

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
    /// The environment variables its instances see.
    type Version = Vec<(String, String)>;
    type Instance = WasiCtx;

    fn new(_: &EngineSettings, _: &HostServices) -> Self {
        Self
    }

    fn link(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
        wasmtime_wasi::p2::add_to_linker_async(linker)
    }

    fn load(&self, grants: &Grants) -> Self::Version {
        grants.environment.clone()
    }

    fn instance(environment: &Self::Version, output: &LogCapture) -> Self::Instance {
        let mut wasi = WasiCtx::builder();
        wasi.envs(environment)
            .stdout(output.stdout())
            .stderr(output.stderr())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        wasi.build()
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.capabilities.wasi,
            table: &mut self.table,
        }
    }
}
