//! The per-invocation store data: one field per capability (`capability/`), the memory limiter,
//! and the CPU share and deadline that end each slice of guest code.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use wasmtime::component::ResourceTable;

use crate::capability::{Instances, Invocation};
use crate::cpu::GuestCpu;

/// Guest code runs for one epoch tick before its thread is handed back.
pub const SLICE_TICKS: u64 = 1;

pub struct Host {
    /// The guest's resources, shared by every capability's interfaces.
    pub(crate) table: ResourceTable,
    /// What each capability keeps per instance; each projects its own view (`WasiView`,
    /// `WasiHttpView`, ...) from its field and the table.
    pub(crate) capabilities: Instances,
    pub(crate) limiter: MemoryLimiter,
    /// The running invocation's CPU share, and when it times out; both are replaced when a
    /// kept instance is armed for its next invocation.
    pub(crate) cpu: Arc<GuestCpu>,
    pub(crate) deadline: Instant,
}

impl Host {
    pub fn new(
        capabilities: Instances,
        limiter: MemoryLimiter,
        cpu: Arc<GuestCpu>,
        deadline: Instant,
    ) -> Self {
        Self {
            table: ResourceTable::new(),
            capabilities,
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

    /// Readies every capability for the invocation about to run.
    pub fn start_invocation(&mut self, invocation: &Invocation) {
        self.capabilities.arm(invocation);
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
