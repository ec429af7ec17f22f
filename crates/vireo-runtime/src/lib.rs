//! Vireo's WebAssembly runtime: one wasmtime engine, deploy-time validation and compilation into
//! an on-disk artifact cache, a `ProxyPre` per loaded version, and per-invocation execution with
//! deadlines, memory limits and captured output.

mod artifacts;
mod engine;
mod execute;
mod host;
mod logs;
mod validate;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use vireo_core::{Body, Name, VersionInfo, VersionSettings};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

pub use engine::EngineSettings;
pub use execute::{Completion, CompletionFuture, Execution, Failure};
pub use logs::CapturedLine;
pub use validate::Rejection;

use artifacts::ArtifactCache;
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

/// A version ready to instantiate, and whether getting it ready was this process's first use.
pub struct Loaded {
    pub pre: Arc<ProxyPre<Host>>,
    pub cold: bool,
}

type VersionKey = (Name, Name, u32);

/// Filled once per version by whichever request loads it first; the others wait for it.
type LoadSlot = Arc<OnceCell<Arc<ProxyPre<Host>>>>;

pub struct Runtime {
    engine: Engine,
    linker: Linker<Host>,
    artifacts: Arc<ArtifactCache>,
    loaded: Mutex<HashMap<VersionKey, LoadSlot>>,
    limits: Limits,
    max_memory_mib: u32,
    _ticker: EpochTicker,
}

impl Runtime {
    pub fn new(settings: &EngineSettings, artifact_dir: &Path) -> Result<Self, RuntimeError> {
        let engine = engine::build_engine(settings)
            .map_err(|e| RuntimeError::internal("creating the wasmtime engine", e))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::internal("linking WASI", e))?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|e| RuntimeError::internal("linking wasi:http", e))?;
        let artifacts = ArtifactCache::open(artifact_dir, &engine)
            .map_err(|e| RuntimeError::internal("opening the artifact directory", e))?;
        let ticker = EpochTicker::start(engine.clone(), settings.epoch_tick)
            .map_err(|e| RuntimeError::internal("starting the epoch thread", e))?;
        Ok(Self {
            engine,
            linker,
            artifacts: Arc::new(artifacts),
            loaded: Mutex::new(HashMap::new()),
            limits: Limits {
                epoch_tick: settings.epoch_tick,
                max_log_bytes: settings.max_log_bytes,
            },
            max_memory_mib: settings.max_memory_mib,
            _ticker: ticker,
        })
    }

    /// The largest per-version memory limit this engine can honour.
    pub fn max_memory_mib(&self) -> u32 {
        self.max_memory_mib
    }

    /// Deploy-time: checks the bytes, compiles them once and keeps the artifact on disk.
    pub async fn prepare(
        &self,
        component_sha256: &str,
        bytes: bytes::Bytes,
    ) -> Result<(), RuntimeError> {
        validate::check_header(&bytes)?;
        let component = self.compile(component_sha256, bytes).await?;
        let checked = validate::check_interface(&self.engine, &component)
            .and_then(|()| self.pre_instantiate(&component).map(drop));
        if checked.is_err() {
            // A rejected component's artifact would only take space.
            let _ = std::fs::remove_file(self.artifacts.path(component_sha256));
        }
        checked.map_err(RuntimeError::from)
    }

    /// The version's `ProxyPre`, from memory, else from its artifact, else compiled from the
    /// component bytes that `source` reads (after an engine upgrade made the artifact stale).
    pub async fn load<F>(&self, version: &VersionInfo, source: F) -> Result<Loaded, RuntimeError>
    where
        F: Future<Output = std::io::Result<Vec<u8>>>,
    {
        let key = (
            version.namespace.clone(),
            version.function.clone(),
            version.version,
        );
        let cell = {
            let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
            loaded.entry(key).or_default().clone()
        };
        if let Some(pre) = cell.get() {
            return Ok(Loaded {
                pre: pre.clone(),
                cold: false,
            });
        }
        let mut initialised_here = false;
        let pre = cell
            .get_or_try_init(|| async {
                initialised_here = true;
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
                Ok::<_, RuntimeError>(Arc::new(self.pre_instantiate(&component)?))
            })
            .await?;
        Ok(Loaded {
            pre: pre.clone(),
            cold: initialised_here,
        })
    }

    /// Runs one invocation in a fresh store and instance.
    pub async fn execute(
        &self,
        loaded: &Loaded,
        settings: &VersionSettings,
        request: http::Request<Body>,
    ) -> Execution {
        execute::execute(
            &self.engine,
            loaded.pre.clone(),
            settings,
            &self.limits,
            request,
        )
        .await
    }

    /// Drops the loaded state of every version of a function (after it was deleted).
    pub fn forget_function(&self, namespace: &Name, function: &Name) {
        let mut loaded = self.loaded.lock().unwrap_or_else(|p| p.into_inner());
        loaded.retain(|(ns, f, _), _| !(ns == namespace && f == function));
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
            .map_err(|e| RuntimeError::internal("loading the artifact", format!("{e:#}")))
    }

    fn pre_instantiate(&self, component: &Component) -> Result<ProxyPre<Host>, Rejection> {
        let instance_pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| Rejection::Unlinkable(format!("{e:#}")))?;
        ProxyPre::new(instance_pre).map_err(|e| Rejection::Unlinkable(format!("{e:#}")))
    }
}
