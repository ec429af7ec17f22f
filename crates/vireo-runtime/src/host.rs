//! The per-invocation store data: WASI contexts that grant nothing, the outgoing-HTTP policy and
//! the memory limiter.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::cpu::GuestCpu;
use crate::egress::{Egress, EgressPolicy, OutgoingTrace};
use crate::logs::LogCapture;

/// Guest code runs for one epoch tick before its thread is handed back.
pub const SLICE_TICKS: u64 = 1;

pub struct Host {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: Egress,
    pub(crate) limiter: MemoryLimiter,
    /// The running invocation's CPU share, and when it times out; both are replaced when a
    /// kept instance is armed for its next invocation.
    pub(crate) cpu: Arc<GuestCpu>,
    pub(crate) deadline: Instant,
}

impl Host {
    /// A sandbox with the version's environment, captured stdout/stderr, outgoing HTTP as
    /// `egress` allows (its refusals over a limit noted on stderr), and nothing else: no
    /// arguments, no preopened directories, no sockets, no name lookups of its own.
    pub fn new(
        env: &[(String, String)],
        stdout: LogCapture,
        stderr: LogCapture,
        limiter: MemoryLimiter,
        egress: Arc<EgressPolicy>,
        cpu: Arc<GuestCpu>,
        deadline: Instant,
    ) -> Self {
        let mut wasi = WasiCtx::builder();
        wasi.envs(env)
            .stdout(stdout)
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        Self {
            table: ResourceTable::new(),
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            hooks: Egress::new(egress, stderr),
            limiter,
            cpu,
            deadline,
        }
    }

    /// Ends a slice of guest code (the epoch deadline callback): past the invocation's deadline
    /// the guest is interrupted; otherwise it gives its thread back and waits for its turn.
    pub fn end_of_slice(
        mut store: wasmtime::StoreContextMut<'_, Self>,
    ) -> wasmtime::Result<wasmtime::UpdateDeadline> {
        let host = store.data_mut();
        if Instant::now() >= host.deadline {
            return Ok(wasmtime::UpdateDeadline::Interrupt);
        }
        Ok(wasmtime::UpdateDeadline::YieldCustom(
            SLICE_TICKS,
            Box::pin(host.cpu.clone().next_slice()),
        ))
    }

    /// Readies outgoing HTTP for the invocation about to run: the trace it continues, a fresh
    /// share of outgoing requests.
    pub fn start_invocation(&mut self, trace: Option<OutgoingTrace>) {
        self.hooks.start_invocation(trace);
    }
}

impl WasiView for Host {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for Host {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Caps linear memory per instance and remembers that the cap was hit, so the invocation can be
/// recorded with that reason rather than whatever the guest does after allocation fails.
pub struct MemoryLimiter {
    max_bytes: usize,
    exceeded: Arc<AtomicBool>,
}

impl MemoryLimiter {
    pub fn new(max_bytes: usize) -> (Self, Arc<AtomicBool>) {
        let exceeded = Arc::new(AtomicBool::new(false));
        (
            Self {
                max_bytes,
                exceeded: exceeded.clone(),
            },
            exceeded,
        )
    }
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.exceeded.store(true, Ordering::Relaxed);
            // Trapping (rather than returning false) stops guests that ignore a failed grow.
            wasmtime::bail!(
                "memory limit exceeded: the guest asked for {} MiB, the limit is {} MiB",
                desired.div_ceil(1 << 20),
                self.max_bytes >> 20
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}
