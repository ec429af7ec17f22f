//! A loaded version and its ready instances: pre-instantiated ones (`min_instances`) and ones
//! kept for sequential reuse (`instance_reuse`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use vireo_core::{Name, VersionInfo, VersionSettings};
use wasmtime::{Engine, Store};
use wasmtime_wasi_http::p2::bindings::{Proxy, ProxyPre};

use crate::capability::{Invocation, Versions};
use crate::cpu::{CpuScheduler, GuestCpu};
use crate::host::{Host, MemoryLimiter, SLICE_TICKS};
use crate::logs::LogCapture;

/// Ready instances kept per version at most, beyond `min_instances`.
const MAX_KEPT_INSTANCES: usize = 64;

/// A store with its instantiated component, ready to handle a request.
pub(crate) struct Instance {
    pub store: Store<Host>,
    pub proxy: Proxy,
    pub capture: LogCapture,
    pub memory_exceeded: Arc<AtomicBool>,
    /// Requests this instance has served.
    pub served: u32,
    idle_since: Instant,
}

impl Instance {
    /// Arms the instance for one invocation: its deadline and CPU share, a cleared memory
    /// flag, and what each capability keeps per invocation (the trace, a share of outgoing
    /// requests).
    pub fn arm(&mut self, deadline: Instant, cpu: Arc<GuestCpu>, invocation: &Invocation) {
        self.store.set_epoch_deadline(SLICE_TICKS);
        let host = self.store.data_mut();
        host.deadline = deadline;
        host.cpu = cpu;
        host.start_invocation(invocation);
        self.memory_exceeded.store(false, Ordering::Relaxed);
    }
}

/// A version whose compiled state is in memory.
pub struct LoadedVersion {
    namespace: Name,
    function: Name,
    version: u32,
    component_sha256: String,
    pub(crate) pre: ProxyPre<Host>,
    pub(crate) settings: VersionSettings,
    /// What each capability built from the version's grants at load.
    capabilities: Versions,
    ready: Mutex<Vec<Instance>>,
    last_used: Mutex<Instant>,
    /// Set when a reused instance returned without answering: its instances serve one request
    /// each from then on, whatever `instance_reuse` says.
    serves_once: AtomicBool,
}

impl LoadedVersion {
    pub(crate) fn new(version: &VersionInfo, pre: ProxyPre<Host>, capabilities: Versions) -> Self {
        Self {
            namespace: version.namespace.clone(),
            function: version.function.clone(),
            version: version.version,
            component_sha256: version.component_sha256.clone(),
            pre,
            settings: version.settings.clone(),
            capabilities,
            ready: Mutex::new(Vec::new()),
            last_used: Mutex::new(Instant::now()),
            serves_once: AtomicBool::new(false),
        }
    }

    /// Whether an instance that has served `served` requests serves another.
    pub(crate) fn reuses_after(&self, served: u32) -> bool {
        served < self.settings.instance_reuse && !self.serves_once()
    }

    /// Whether this version fell back to a fresh instance per request.
    pub fn serves_once(&self) -> bool {
        self.serves_once.load(Ordering::Relaxed)
    }

    pub(crate) fn component_sha256(&self) -> &str {
        &self.component_sha256
    }

    /// A reused instance returned without answering: the component cannot serve a second
    /// request on one instance (componentize-js components cannot), so from now on every
    /// request gets a fresh one, and the instances kept for reuse go.
    pub(crate) fn fall_back_to_fresh_instances(&self) {
        if self.serves_once.swap(true, Ordering::Relaxed) {
            return;
        }
        tracing::warn!(
            namespace = %self.namespace,
            function = %self.function,
            version = self.version,
            "an instance returned without answering its second request: this component cannot serve more than one request per instance, so instance_reuse is off for this version and every request gets a fresh instance"
        );
        self.ready().retain(|instance| instance.served == 0);
    }

    /// A new share of the CPU for one invocation of this version.
    pub(crate) fn cpu_share(&self, scheduler: &Arc<CpuScheduler>) -> Arc<GuestCpu> {
        GuestCpu::new(
            scheduler.clone(),
            self.namespace.clone(),
            self.function.clone(),
        )
    }

    /// A fresh store and instance with the version's capabilities and limits; its start code
    /// runs under `deadline` and `cpu` like the invocation itself.
    pub(crate) async fn instantiate(
        &self,
        engine: &Engine,
        max_log_bytes: usize,
        deadline: Instant,
        cpu: Arc<GuestCpu>,
    ) -> wasmtime::Result<Instance> {
        let capture = LogCapture::new(max_log_bytes);
        let memory_bytes = usize::try_from(self.settings.memory_mib).unwrap_or(usize::MAX) << 20;
        let (limiter, memory_exceeded) = MemoryLimiter::new(memory_bytes);
        let mut store = Store::new(
            engine,
            Host::new(self.capabilities.instance(&capture), limiter, cpu, deadline),
        );
        store.limiter(|host| &mut host.limiter);
        // Guest code, its start function included, runs in slices and stops at its deadline.
        store.epoch_deadline_callback(Host::end_of_slice);
        store.set_epoch_deadline(SLICE_TICKS);
        let proxy = self.pre.instantiate_async(&mut store).await?;
        Ok(Instance {
            store,
            proxy,
            capture,
            memory_exceeded,
            served: 0,
            idle_since: Instant::now(),
        })
    }

    /// A ready instance, if one is kept and has not idled past `idle_ttl`.
    pub(crate) fn take_ready(&self, idle_ttl: Duration) -> Option<Instance> {
        let mut ready = self.ready();
        while let Some(instance) = ready.pop() {
            if instance.idle_since.elapsed() <= idle_ttl || self.settings.min_instances > 0 {
                return Some(instance);
            }
        }
        None
    }

    /// Keeps an instance for a later request: a pre-instantiated one, or a reused one that
    /// still has requests left.
    pub(crate) fn keep(&self, mut instance: Instance) {
        instance.idle_since = Instant::now();
        let mut ready = self.ready();
        if ready.len() < MAX_KEPT_INSTANCES.max(self.settings.min_instances as usize) {
            ready.push(instance);
        }
    }

    pub(crate) fn ready_count(&self) -> usize {
        self.ready().len()
    }

    /// Drops kept instances that idled past `idle_ttl` (pre-instantiated ones stay).
    pub(crate) fn trim(&self, idle_ttl: Duration) {
        if self.settings.min_instances == 0 {
            self.ready()
                .retain(|instance| instance.idle_since.elapsed() <= idle_ttl);
        }
    }

    pub(crate) fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub(crate) fn idle_for(&self) -> Duration {
        self.last_used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }

    fn ready(&self) -> MutexGuard<'_, Vec<Instance>> {
        self.ready.lock().unwrap_or_else(|p| p.into_inner())
    }
}
