//! Vireo's WebAssembly runtime: one wasmtime engine, deploy-time validation and compilation into
//! an on-disk artifact cache, a `ProxyPre` per loaded version, and per-invocation execution with
//! deadlines, memory limits and captured output.

mod artifacts;
mod bindings;
mod capability;
mod cpu;
mod engine;
mod execute;
mod host;
mod instances;
mod lent;
mod logs;
mod unimplemented;
mod validate;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::OnceCell;
use vireo_core::{Body, Name, SecretName, VersionInfo, VersionSettings};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

pub use capability::{
    EgressLimits, KeyValueUse, OUTBOUND_CALL_DURATION_METRIC, OUTBOUND_CONNECTIONS_METRIC,
    ObjectUse, Opened, OutboundTrust, OutboundUse, SettingsRefused, StoreUse,
};
pub use engine::{EngineSettings, HostServices, KeyValueObserver, MemoryReset};
pub use execute::{Completion, CompletionFuture, Execution, Failure};
pub use instances::LoadedVersion;
pub use logs::CapturedLine;
pub use validate::{Rejection, check_component};

use artifacts::ArtifactCache;
use capability::{Grants, Registry};
use cpu::CpuScheduler;
use engine::EpochTicker;
use execute::Limits;
use host::Host;

/// Why a component could not be prepared or loaded.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error("{context}: {message}")]
    Internal {
        context: &'static str,
        message: String,
    },
}

impl RuntimeError {
    fn internal(context: &'static str, error: impl std::fmt::Display) -> Self {
        Self::Internal {
            context,
            message: error.to_string(),
        }
    }
}

/// A version ready to run, and whether this call had to load it (a cold start).
pub struct Loaded {
    pub version: Arc<LoadedVersion>,
    pub cold: bool,
    /// Time spent loading, zero when it was already in memory.
    pub load_time: Duration,
}

type VersionKey = (Name, Name, u32);

/// Filled once per version by whichever request loads it first; the others wait for it.
type LoadSlot = Arc<OnceCell<Arc<LoadedVersion>>>;

pub struct Runtime {
    engine: Engine,
    /// Every capability's interfaces, linked once.
    linker: Linker<Host>,
    capabilities: Registry,
    artifacts: Arc<ArtifactCache>,
    loaded: Mutex<HashMap<VersionKey, LoadSlot>>,
    limits: Limits,
    scheduler: Arc<CpuScheduler>,
    max_memory_mib: u32,
    _ticker: EpochTicker,
}

impl Runtime {
    pub fn new(
        settings: &EngineSettings,
        services: &HostServices,
        artifact_dir: &Path,
    ) -> Result<Self, RuntimeError> {
        let engine = engine::build_engine(settings)
            .map_err(|e| RuntimeError::internal("creating the wasmtime engine", e))?;
        let mut linker = Linker::new(&engine);
        Registry::link(&mut linker)
            .map_err(|e| RuntimeError::internal("linking the host interfaces", e))?;
        let artifacts = ArtifactCache::open(artifact_dir, &engine)
            .map_err(|e| RuntimeError::internal("opening the artifact directory", e))?;
        let ticker = EpochTicker::start(engine.clone(), settings.epoch_tick)
            .map_err(|e| RuntimeError::internal("starting the epoch thread", e))?;
        Ok(Self {
            engine,
            linker,
            capabilities: Registry::new(settings, services),
            artifacts: Arc::new(artifacts),
            loaded: Mutex::new(HashMap::new()),
            limits: Limits {
                max_log_bytes: settings.max_log_bytes,
                idle_ttl: settings.idle_ttl,
            },
            scheduler: CpuScheduler::new(settings.cpu_slots),
            max_memory_mib: settings.max_memory_mib,
            _ticker: ticker,
        })
    }

    /// The largest per-version memory limit this engine can honour.
    pub fn max_memory_mib(&self) -> u32 {
        self.max_memory_mib
    }

    /// Deploy-time: whether every capability can grant what `settings` ask (the settings'
    /// own bounds are core's `VersionSettings::validate`).
    pub fn validate_settings(&self, settings: &VersionSettings) -> Result<(), SettingsRefused> {
        self.capabilities.validate(settings)
    }

    /// Deploy-time, before anything else is checked: whether the bytes are a component whose
    /// imports Vireo links. Returns the imports linked as traps (allowed by `settings`).
    pub fn check_imports(
        &self,
        bytes: &[u8],
        settings: &VersionSettings,
    ) -> Result<Vec<String>, Rejection> {
        validate::check_header(bytes)?;
        validate::check_imports(bytes, settings.allow_unimplemented_imports)
    }

    /// Deploy-time: checks the bytes, compiles them once and keeps the artifact on disk.
    /// Returns how long compiling took, or `None` when an intact artifact of these bytes
    /// existed (a damaged one is replaced: deploying the same bytes again repairs it).
    pub async fn prepare(
        &self,
        component_sha256: &str,
        bytes: bytes::Bytes,
        settings: &VersionSettings,
    ) -> Result<Option<Duration>, RuntimeError> {
        validate::check_header(&bytes)?;
        let allow_unimplemented = settings.allow_unimplemented_imports;
        // The same bytes deployed again (another function, new settings) are not recompiled.
        let (component, compile_time) = match self.load_artifact(component_sha256).await? {
            Some(component) => (component, None),
            None => {
                let started = Instant::now();
                let component = self.compile(component_sha256, bytes).await?;
                (component, Some(started.elapsed()))
            }
        };
        let checked = validate::check_interface(&self.engine, &component, allow_unimplemented)
            .and_then(|()| {
                self.pre_instantiate(&component, allow_unimplemented)
                    .map(drop)
            });
        if checked.is_err() {
            self.artifacts.remove(component_sha256);
        }
        checked.map_err(RuntimeError::from)?;
        Ok(compile_time)
    }

    /// The version's compiled state, from memory, else from its verified artifact (a cold
    /// start), else compiled from the component bytes that `source` reads (after an engine
    /// upgrade made the artifact stale, or a damaged one was discarded; `source` checks them). `opened` (the environment and variables its instances get, secrets opened) is awaited only when loading,
    /// so whatever it costs (opening secrets) is paid once per load, not per request.
    pub async fn load<F, E, D>(
        &self,
        version: &VersionInfo,
        source: F,
        opened: E,
    ) -> Result<Loaded, RuntimeError>
    where
        F: Future<Output = std::io::Result<Vec<u8>>>,
        E: Future<Output = Result<Opened, D>>,
        D: std::fmt::Display,
    {
        let started = Instant::now();
        let key = (
            version.namespace.clone(),
            version.function.clone(),
            version.version,
        );
        let cell = self.lock_loaded().entry(key).or_default().clone();
        if let Some(loaded) = cell.get() {
            loaded.touch();
            return Ok(Loaded {
                version: loaded.clone(),
                cold: false,
                load_time: Duration::ZERO,
            });
        }
        let mut loaded_here = false;
        let loaded = cell
            .get_or_try_init(|| async {
                loaded_here = true;
                let component = match self.load_artifact(&version.component_sha256).await? {
                    Some(component) => component,
                    None => {
                        let bytes = source
                            .await
                            .map_err(|e| RuntimeError::internal("reading the component", e))?;
                        self.compile(&version.component_sha256, bytes.into())
                            .await?
                    }
                };
                let pre =
                    self.pre_instantiate(&component, version.settings.allow_unimplemented_imports)?;
                let opened = opened
                    .await
                    .map_err(|e| RuntimeError::internal("preparing the environment", e))?;
                let grants = Grants::new(version, opened).map_err(|e| {
                    RuntimeError::internal("reading the version's allowed_outbound_hosts", e)
                })?;
                Ok::<_, RuntimeError>(Arc::new(LoadedVersion::new(
                    version,
                    pre,
                    self.capabilities.load(&grants),
                )))
            })
            .await?
            .clone();
        loaded.touch();
        let load_time = if loaded_here {
            started.elapsed()
        } else {
            Duration::ZERO
        };
        Ok(Loaded {
            version: loaded,
            cold: loaded_here,
            load_time,
        })
    }

    /// Runs one invocation on a ready, pre-instantiated or fresh instance. The future owns
    /// what it needs, so a caller that cannot wait for it can hand it to a task.
    pub fn execute(
        &self,
        loaded: &Loaded,
        request: http::Request<Body>,
    ) -> impl Future<Output = Execution> + Send + 'static {
        let (engine, version, limits) = (self.engine.clone(), loaded.version.clone(), self.limits);
        let scheduler = self.scheduler.clone();
        async move {
            let execution =
                execute::execute(&engine, version.clone(), limits, &scheduler, request).await;
            refill(&engine, &version, limits, &scheduler);
            execution
        }
    }

    /// Tops the version's ready instances up to `min_instances`, in the background.
    pub fn refill(&self, version: &Arc<LoadedVersion>) {
        refill(&self.engine, version, self.limits, &self.scheduler);
    }

    /// Scale to zero: drops the compiled state of versions unused for `idle_ttl` (except those
    /// with `min_instances`), and kept instances that idled that long. Returns what was dropped.
    pub fn evict_idle(&self) -> Vec<(Name, Name, u32)> {
        let idle_ttl = self.limits.idle_ttl;
        let mut evicted = Vec::new();
        self.lock_loaded().retain(|key, cell| {
            let Some(loaded) = cell.get() else {
                return true;
            };
            loaded.trim(idle_ttl);
            let idle = loaded.settings.min_instances == 0 && loaded.idle_for() > idle_ttl;
            if idle {
                evicted.push(key.clone());
            }
            !idle
        });
        evicted
    }

    /// Versions of a function whose compiled state is in memory.
    pub fn warm_versions(&self, namespace: &Name, function: &Name) -> Vec<u32> {
        self.loaded_versions(namespace, function, |_| true)
    }

    /// Loaded versions of a function that fell back to a fresh instance per request because
    /// their instances could not serve a second one (see `LoadedVersion::serves_once`).
    pub fn reuse_fallback_versions(&self, namespace: &Name, function: &Name) -> Vec<u32> {
        self.loaded_versions(namespace, function, LoadedVersion::serves_once)
    }

    /// The numbers of a function's loaded versions that match `matching`, in order.
    fn loaded_versions(
        &self,
        namespace: &Name,
        function: &Name,
        matching: impl Fn(&LoadedVersion) -> bool,
    ) -> Vec<u32> {
        let mut versions: Vec<u32> = self
            .lock_loaded()
            .iter()
            .filter(|((ns, f, _), cell)| {
                ns == namespace && f == function && cell.get().is_some_and(|v| matching(v.as_ref()))
            })
            .map(|((_, _, version), _)| *version)
            .collect();
        versions.sort_unstable();
        versions
    }

    /// Whether a loaded version of this component (by content hash) was found unable to serve
    /// a second request per instance: a deploy of it with `instance_reuse` is warned.
    pub fn serves_once(&self, component_sha256: &str) -> bool {
        self.lock_loaded().values().any(|cell| {
            cell.get()
                .is_some_and(|v| v.serves_once() && v.component_sha256() == component_sha256)
        })
    }

    /// Drops the loaded state of every version of a function (after it was deleted).
    pub fn forget_function(&self, namespace: &Name, function: &Name) {
        self.lock_loaded()
            .retain(|(ns, f, _), _| !(ns == namespace && f == function));
    }

    /// Drops the loaded state (and ready instances) of a namespace's versions granted `secret`,
    /// so their next invocation loads again with its current value; returns what was dropped.
    /// Versions still loading in the namespace go too: they may have read the old value.
    pub fn forget_granting(&self, namespace: &Name, secret: &SecretName) -> Vec<(Name, Name, u32)> {
        self.forget_secret_readers(
            |key| key.0 == *namespace,
            |secrets| secrets.contains(secret),
        )
    }

    /// Drops the loaded state of every version granted any secret, and of every version still
    /// loading (after secret changes went unheard); returns what was dropped.
    pub fn forget_secret_holders(&self) -> Vec<(Name, Name, u32)> {
        self.forget_secret_readers(|_| true, |secrets| !secrets.is_empty())
    }

    /// Drops the versions `in_scope` whose granted secrets are `affected`, and those in scope
    /// still loading (they may be reading the old values).
    fn forget_secret_readers(
        &self,
        in_scope: impl Fn(&VersionKey) -> bool,
        affected: impl Fn(&std::collections::BTreeSet<SecretName>) -> bool,
    ) -> Vec<(Name, Name, u32)> {
        let mut forgotten = Vec::new();
        self.lock_loaded().retain(|key, cell| {
            if !in_scope(key) {
                return true;
            }
            match cell.get() {
                Some(loaded) if affected(&loaded.settings.granted_secrets()) => {
                    forgotten.push(key.clone());
                    false
                }
                Some(_) => true,
                None => false,
            }
        });
        forgotten
    }

    fn lock_loaded(&self) -> std::sync::MutexGuard<'_, HashMap<VersionKey, LoadSlot>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn compile(
        &self,
        component_sha256: &str,
        bytes: bytes::Bytes,
    ) -> Result<Component, RuntimeError> {
        let engine = self.engine.clone();
        let artifacts = self.artifacts.clone();
        let sha = component_sha256.to_string();
        tokio::task::spawn_blocking(move || {
            let compiled = engine
                .precompile_component(&bytes)
                .map_err(|e| Rejection::Invalid(format!("{e:#}")))?;
            artifacts.store(&engine, &sha, &compiled).map_err(|e| {
                RuntimeError::internal("storing the compiled artifact", format!("{e:#}"))
            })
        })
        .await
        .map_err(|e| RuntimeError::internal("compiling the component", e))?
    }

    async fn load_artifact(
        &self,
        component_sha256: &str,
    ) -> Result<Option<Component>, RuntimeError> {
        let engine = self.engine.clone();
        let artifacts = self.artifacts.clone();
        let sha = component_sha256.to_string();
        tokio::task::spawn_blocking(move || artifacts.load(&engine, &sha))
            .await
            .map_err(|e| RuntimeError::internal("loading the artifact", e))?
            .map_err(|e| RuntimeError::internal("loading the artifact", e))
    }

    /// `allow_unimplemented`: what the linker does not provide traps when called (deploy has
    /// checked that only known packages are missing).
    fn pre_instantiate(
        &self,
        component: &Component,
        allow_unimplemented: bool,
    ) -> Result<ProxyPre<Host>, Rejection> {
        let unlinkable = |e: wasmtime::Error| Rejection::Unlinkable(format!("{e:#}"));
        let instance_pre = if allow_unimplemented {
            unimplemented::linker_with_traps(&self.linker, &self.engine, component)
                .map_err(unlinkable)?
                .instantiate_pre(component)
        } else {
            self.linker.instantiate_pre(component)
        }
        .map_err(unlinkable)?;
        ProxyPre::new(instance_pre).map_err(|e| Rejection::Unlinkable(format!("{e:#}")))
    }
}

/// Tops `version`'s ready instances up to its `min_instances`, in the background.
fn refill(
    engine: &Engine,
    version: &Arc<LoadedVersion>,
    limits: Limits,
    scheduler: &Arc<CpuScheduler>,
) {
    let wanted = version.settings.min_instances as usize;
    if version.ready_count() >= wanted {
        return;
    }
    let (engine, version, scheduler) = (engine.clone(), version.clone(), scheduler.clone());
    tokio::spawn(async move {
        let timeout = Duration::from_millis(version.settings.timeout_ms);
        while version.ready_count() < wanted {
            let cpu = version.cpu_share(&scheduler);
            let instantiated = version.instantiate(
                &engine,
                limits.max_log_bytes,
                Instant::now() + timeout,
                cpu.clone(),
            );
            match cpu::metered(instantiated, cpu).await {
                Ok(instance) => version.keep(instance),
                Err(error) => {
                    tracing::warn!(error = %format!("{error:#}"), "pre-instantiation failed");
                    return;
                }
            }
        }
    });
}
