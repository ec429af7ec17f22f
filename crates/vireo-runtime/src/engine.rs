//! The one wasmtime engine of a server: Cranelift, pooling allocator, copy-on-write memory
//! images, epoch interruption driven by a single ticker thread.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Engine sizing; the server fills it from its config file.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// The largest memory limit any version may ask for; the size of each pooled memory slot.
    pub max_memory_mib: u32,
    /// How many component instances may exist at once across all functions.
    pub max_instances: u32,
    /// Epoch tick: the granularity of invocation deadlines.
    pub epoch_tick: Duration,
    /// Output kept per invocation before truncation.
    pub max_log_bytes: usize,
    /// A version unused this long drops its compiled state (scale to zero); a kept instance
    /// idle this long is dropped.
    pub idle_ttl: Duration,
}

impl Default for EngineSettings {
    fn default() -> Self {
        Self {
            max_memory_mib: 1024,
            max_instances: 1000,
            epoch_tick: Duration::from_millis(10),
            max_log_bytes: 64 * 1024,
            idle_ttl: Duration::from_secs(300),
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

    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .memory_init_cow(true)
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
