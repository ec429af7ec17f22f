//! The one wasmtime engine of a server: Cranelift, pooling allocator, copy-on-write memory
//! images, epoch interruption driven by a single ticker thread.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::capability::{EgressLimits, OutboundTrust};

/// How linear memories, tables and stacks are reset between instances: the knobs that decide
/// how much a fresh instance per request costs (see BENCHMARKS.md for the measurements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryReset {
    /// Map initial memory copy-on-write from the artifact instead of copying it in.
    pub memory_init_cow: bool,
    /// Bytes of each slot reset with memset and kept resident instead of decommitted.
    pub linear_memory_keep_resident: usize,
    pub table_keep_resident: usize,
    pub async_stack_keep_resident: usize,
    /// Decommits gathered before one batch of `madvise` calls.
    pub decommit_batch_size: usize,
    /// Use Linux's PAGEMAP_SCAN to reset only the pages a guest dirtied.
    pub pagemap_scan: bool,
}

/// Chosen by measurement (BENCHMARKS.md, "Engine tuning"): with PAGEMAP_SCAN and a resident
/// first MiB, resetting a slot touches only the pages a guest dirtied and skips most `madvise`
/// calls and the TLB shootdowns they cause; hello went from ~4,200 to ~12,900 req/s on 2 cores.
impl Default for MemoryReset {
    fn default() -> Self {
        Self {
            memory_init_cow: true,
            linear_memory_keep_resident: 1 << 20,
            table_keep_resident: 64 << 10,
            async_stack_keep_resident: 64 << 10,
            decommit_batch_size: 1,
            pagemap_scan: true,
        }
    }
}

/// What the server lends the host interfaces: the stores behind them and their limits.
#[derive(Clone, Default)]
pub struct HostServices {
    /// Behind `wasi:keyvalue` and Spin's key-value; none makes every store access-denied.
    pub key_value: Option<std::sync::Arc<dyn vireo_core::KeyValueStore>>,
    pub key_value_limits: vireo_core::KeyValueLimits,
    /// Told of every key-value operation a guest made: the store, the operation's name (`get`,
    /// `set`, …) and how long the store took, for the server's metrics.
    pub key_value_observer: Option<KeyValueObserver>,
    /// Behind `wasi:blobstore`; none refuses every bucket.
    pub objects: Option<std::sync::Arc<dyn vireo_core::ObjectStore>>,
    pub object_limits: vireo_core::ObjectLimits,
    /// Behind Spin's sqlite; none (a server on a shared store) refuses versions granted any.
    pub sqlite: Option<std::sync::Arc<dyn vireo_core::SqliteDatabases>>,
    /// The bound on a namespace's queued async invocations, which the notifications of a
    /// function's writes count against.
    pub max_pending_per_namespace: u64,
}

/// See [`HostServices::key_value_observer`].
pub type KeyValueObserver =
    std::sync::Arc<dyn Fn(&vireo_core::KvStoreId, &'static str, Duration) + Send + Sync>;

/// Engine sizing; the server fills it from its config file.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub memory_reset: MemoryReset,
    /// The largest memory limit any version may ask for; the size of each pooled memory slot.
    pub max_memory_mib: u32,
    /// How many component instances may exist at once across all functions.
    pub max_instances: u32,
    /// Epoch tick: the longest slice of guest code between two chances for other work to run
    /// on its thread, and the granularity of invocation deadlines.
    pub epoch_tick: Duration,
    /// Guests past their first slice that may run at once; one per async worker thread keeps
    /// every core busy while each thread still serves other work between slices.
    pub cpu_slots: usize,
    /// Output kept per invocation before truncation.
    pub max_log_bytes: usize,
    /// A version unused this long drops its compiled state (scale to zero); a kept instance
    /// idle this long is dropped.
    pub idle_ttl: Duration,
    /// Bounds on functions' outgoing requests.
    pub egress: EgressLimits,
    /// Bounds on the connections to databases and brokers the host opens for functions.
    pub connections: vireo_core::ConnectionLimits,
    /// Whom functions' outgoing TLS trusts (HTTPS, databases, brokers).
    pub outbound_trust: OutboundTrust,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            memory_reset: MemoryReset::default(),
            max_memory_mib: 1024,
            max_instances: 1000,
            epoch_tick: Duration::from_millis(10),
            cpu_slots: std::thread::available_parallelism().map_or(1, usize::from),
            max_log_bytes: 64 * 1024,
            idle_ttl: Duration::from_secs(300),
            egress: EgressLimits::default(),
            connections: vireo_core::ConnectionLimits::default(),
            outbound_trust: OutboundTrust::default(),
        }
    }
}

pub fn build_engine(settings: &EngineSettings) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::default();
    let instances = settings.max_instances;
    // A Rust, JS or Python component instantiates a handful of core modules, each with at most
    // one memory and a table or two; these totals leave room for that mix.
    pool.total_component_instances(instances)
        .total_core_instances(instances * 8)
        .total_memories(instances * 2)
        .total_tables(instances * 4)
        .total_stacks(instances)
        .max_memory_size(usize::try_from(settings.max_memory_mib).unwrap_or(usize::MAX) << 20);
    let reset = settings.memory_reset;
    pool.linear_memory_keep_resident(reset.linear_memory_keep_resident)
        .table_keep_resident(reset.table_keep_resident)
        .async_stack_keep_resident(reset.async_stack_keep_resident)
        .decommit_batch_size(reset.decommit_batch_size.max(1))
        .pagemap_scan(if reset.pagemap_scan {
            Enabled::Auto
        } else {
            Enabled::No
        });

    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .memory_init_cow(reset.memory_init_cow)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// Advances the engine's epoch every tick until dropped; one thread per engine, not per request.
pub struct EpochTicker {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    pub fn start(engine: Engine, tick: Duration) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("vireo-epoch".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
