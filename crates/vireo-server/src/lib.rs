//! The composition root: reads configuration, wires store, runtime and gateway together, and
//! runs the server until SIGINT/SIGTERM.

mod admission;
mod config;
mod data_dir;
mod descriptors;
mod http;
mod metering;
mod otlp;
mod platform;
mod routes;
mod secrets;
mod signal;
mod tail;
mod telemetry;
mod tenants;

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use vireo_core::backoff::Retry;
use vireo_core::{AsyncSubmitter, Deployer, Name, Records};
use vireo_gateway::{AppState, SharedState};
use vireo_runtime::{EngineSettings, Runtime};
use vireo_store::{BlobStore, RecordWriter, StorageConfig};
use vireo_triggers::QueueWriter;

pub use config::{Config, DEFAULT_DATA_DIR, DEFAULT_LISTEN};
use platform::Platform;

/// The end of the shutdown grace period kept for writing what in-flight work produced
/// (results, records), at most; a quarter of the grace period when that is shorter.
const FINAL_WRITES: Duration = Duration::from_secs(2);

/// How server logs are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// What `vireo serve` was given on its command line (or through `VIREO_*`); these win over the
/// config file, which wins over the defaults.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    pub listen: Option<String>,
    pub data: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    /// `NAME=FILE` components to deploy in the `default` namespace at start (unchanged files
    /// keep their version).
    pub deploy: Vec<String>,
    /// The master key file that seals secrets (default `<data>/master.key`).
    pub master_key_file: Option<PathBuf>,
}

/// Runs the server until it is told to stop; returns once in-flight work has finished.
pub async fn serve(options: ServeOptions) -> anyhow::Result<()> {
    let config = Config::load(&options)?;
    let exporter = match &config.tracing.otlp_endpoint {
        Some(endpoint) => Some(otlp::Exporter::start(
            endpoint,
            &config.tracing.service_name,
        )?),
        None => None,
    };
    init_logging(
        options.log_format.unwrap_or_default(),
        exporter.as_ref().and_then(otlp::Exporter::provider),
    );
    let telemetry = telemetry::Telemetry::install()?;

    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {}",
            config.data_dir.display()
        )
    })?;
    let _lock = data_dir::lock(&config.data_dir)?;
    let database = config.data_dir.join(data_dir::DATABASE);
    data_dir::refuse_lost_database(&config.data_dir)?;
    let stores = vireo_store::open(&StorageConfig::Sqlite {
        path: database.clone(),
    })
    .await
    .context("opening the store")?;
    let cipher =
        secrets::unlock(&config.master_key_file, stores.secrets.as_ref(), &database).await?;
    // This server holds the data directory alone, so whatever was running belonged to a
    // server that stopped without finishing it: redeliver it now.
    let orphaned = stores
        .queue
        .reclaim_expired(i64::MAX, vireo_core::time::now_micros())
        .await
        .context("requeueing async invocations left running")?;
    if orphaned > 0 {
        tracing::info!(
            orphaned,
            "redelivering async invocations that were running when the last server stopped"
        );
    }
    let blobs = BlobStore::open(&config.data_dir.join(data_dir::COMPONENTS))
        .context("opening the component directory")?;
    let descriptor_limit = descriptors::raise_limit();
    let egress = config.egress_limits(descriptor_limit)?;
    tracing::info!(
        max_connections = egress.max_connections,
        per_invocation = egress.concurrent_per_invocation,
        "outgoing connections capped"
    );
    let runtime = Runtime::new(
        &EngineSettings {
            egress,
            ..config.engine_settings()
        },
        &config.data_dir.join(data_dir::ARTIFACTS),
    )
    .context("starting the runtime")?;
    let directory =
        Arc::new(tenants::open_directory(stores.tenants.clone(), &config.data_dir).await?);
    let (records, record_task) = RecordWriter::spawn(stores.records.clone());
    let platform = Arc::new(Platform::new(
        stores.catalog.clone(),
        blobs,
        runtime,
        records.clone(),
        platform::Limits {
            settings: config.settings_limits(),
            admission: config.admission_settings(),
        },
        platform::Tenants {
            directory: directory.clone(),
            vault: secrets::Vault::new(stores.secrets.clone(), cipher),
        },
    ));
    deploy_at_start(&platform, &config.deploy).await?;
    prewarm_at_start(&platform).await;

    let wake = Arc::new(Notify::new());
    let (writer, writer_task) = QueueWriter::spawn(
        stores.queue.clone(),
        config.async_queue.max_pending_per_namespace,
        wake.clone(),
    );
    let worker = vireo_triggers::start_worker(
        stores.queue.clone(),
        platform.clone(),
        config.worker_settings(),
        writer.clone(),
        wake,
    );
    let submitter: Arc<dyn AsyncSubmitter> = Arc::new(writer);

    let shutdown = CancellationToken::new();
    let scheduler = tokio::spawn(vireo_triggers::cron::run(
        stores.schedules.clone(),
        submitter.clone(),
        config.scheduler_settings(),
        shutdown.clone(),
    ));
    let state = AppState::new(SharedState {
        catalog: stores.catalog.clone(),
        records: stores.records.clone(),
        deployer: platform.clone(),
        invoker: platform.clone(),
        queue: stores.queue_admin.clone(),
        schedules: stores.schedules.clone(),
        secrets: platform.clone(),
        submitter: submitter.clone(),
        log_events: records.subscribe(),
        shutdown: shutdown.clone(),
        render_metrics: Arc::new(move || telemetry.render()),
        directory,
        key_buckets: Arc::default(),
        pricing: config.pricing,
        limits: config.gateway_limits(),
    });
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;
    let stop_requested = signal::shutdown_requested();
    announce(address)?;
    tracing::info!(%address, data_dir = %config.data_dir.display(), "vireo is ready");

    let mut server = tokio::spawn(http::serve(
        listener,
        vireo_gateway::router(state),
        config.connection_limits(),
        shutdown.clone(),
    ));
    let sweeper = tokio::spawn(scale_to_zero(platform.clone(), config.idle_ttl()));
    let retention = tokio::spawn(apply_retention(
        stores.records.clone(),
        config.retention.clone(),
    ));
    tokio::select! {
        () = stop_requested => {}
        finished = &mut server => {
            finished.context("the HTTP server task failed")?;
        }
    }
    let grace = config.shutdown_grace();
    tracing::info!(
        ?grace,
        "shutting down: no new connections, finishing in-flight invocations"
    );
    shutdown.cancel();
    // Everything ends by the deadline, even with a store that keeps failing: in-flight work
    // until a little before it, then the writes of what that work produced.
    let deadline = tokio::time::Instant::now() + grace;
    let work_deadline = deadline - FINAL_WRITES.min(grace / 4);
    if tokio::time::timeout_at(work_deadline, &mut server)
        .await
        .is_err()
    {
        tracing::warn!("grace period over: closing the remaining connections");
        server.abort();
    }
    sweeper.abort();
    retention.abort();
    finish_by(work_deadline, scheduler, "the cron scheduler").await;
    let remaining = work_deadline.saturating_duration_since(tokio::time::Instant::now());
    if !worker.stop(remaining).await {
        tracing::warn!(
            "grace period over: unfinished async attempts will be redelivered after the next start"
        );
    }
    platform.in_flight.close();
    if tokio::time::timeout_at(work_deadline, platform.in_flight.wait())
        .await
        .is_err()
    {
        tracing::warn!("grace period over: some invocations did not finish and are not recorded");
    }
    // Attempts still running past the grace period hold a handle; their results are not
    // waited for (they are redelivered), only what was already sent is written.
    drop(submitter);
    finish_by(deadline, writer_task, "the async queue writer").await;
    drop(platform);
    let _ = tokio::time::timeout_at(deadline, records.flush()).await;
    drop(records);
    record_task.finish(deadline).await;
    if tokio::time::timeout_at(deadline, stores.close())
        .await
        .is_err()
    {
        tracing::warn!(
            "grace period over: the database was not closed cleanly (it recovers at the next start)"
        );
    }
    tracing::info!("stopped");
    drop(exporter);
    Ok(())
}

/// Waits for `task` until `deadline`, then ends it.
async fn finish_by(
    deadline: tokio::time::Instant,
    mut task: tokio::task::JoinHandle<()>,
    what: &str,
) {
    if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
        tracing::warn!("grace period over: stopping {what} before it finished");
        task.abort();
    }
}

/// The one line on stdout that scripts and tests wait for.
fn announce(address: std::net::SocketAddr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "vireo listening on http://{address}").context("writing to stdout")?;
    stdout.flush().context("writing to stdout")
}

async fn deploy_at_start(platform: &Platform, deploys: &[(Name, PathBuf)]) -> anyhow::Result<()> {
    let namespace = Name::default_namespace();
    for (name, file) in deploys {
        let bytes = tokio::fs::read(file)
            .await
            .with_context(|| format!("reading {}", file.display()))?;
        let deployed = platform
            .deploy(&namespace, name, bytes.into(), Default::default())
            .await
            .with_context(|| format!("deploying {} as {namespace}/{name}", file.display()))?;
        let verb = if deployed.created {
            "deployed"
        } else {
            "unchanged"
        };
        tracing::info!(function = %name, version = deployed.version.version, "{verb} {}", file.display());
    }
    Ok(())
}

/// Evicts idle versions' compiled state, checking often enough that a version goes cold within
/// about a quarter of `idle_ttl` after it expires.
async fn scale_to_zero(platform: Arc<Platform>, idle_ttl: std::time::Duration) {
    let period = (idle_ttl / 4).clamp(
        std::time::Duration::from_millis(10),
        std::time::Duration::from_secs(10),
    );
    let mut ticks = tokio::time::interval(period);
    loop {
        ticks.tick().await;
        for (namespace, function, version) in platform.runtime.evict_idle() {
            tracing::debug!(%namespace, %function, version, "scaled to zero");
        }
    }
}

/// Deletes old logs, records and finished async invocations, and logs beyond the size limit,
/// every sweep interval; after a failure it tries again sooner, backing off up to that.
async fn apply_retention(records: Arc<dyn Records>, config: config::RetentionConfig) {
    let period = Duration::from_millis(config.sweep_interval_ms);
    let mut retry = Retry::new("applying retention").capped_at(period);
    loop {
        let rules = config.rules(vireo_core::time::now_micros());
        let wait = match records.apply_retention(&rules).await {
            Ok(done) => {
                retry.succeeded();
                if done != vireo_core::Retained::default() {
                    tracing::info!(
                        log_lines = done.log_lines_deleted,
                        records = done.records_deleted,
                        async_invocations = done.async_deleted,
                        "retention deleted old data"
                    );
                }
                period
            }
            Err(error) => retry.failed(&error),
        };
        tokio::time::sleep(wait).await;
    }
}

/// Versions with `min_instances` are loaded and instantiated before the first request.
async fn prewarm_at_start(platform: &Platform) {
    let namespaces = match platform.directory.store().list_namespaces().await {
        Ok(namespaces) => namespaces,
        Err(error) => {
            tracing::warn!(%error, "cannot list namespaces to pre-warm");
            return;
        }
    };
    for namespace in namespaces {
        let Ok(functions) = platform.catalog.list_functions(&namespace.name).await else {
            continue;
        };
        for function in functions {
            let Ok(versions) = platform
                .catalog
                .list_versions(&namespace.name, &function.name)
                .await
            else {
                continue;
            };
            for version in versions {
                platform.prewarm(&version).await;
            }
        }
    }
}

fn init_logging(format: LogFormat, tracer: Option<&SdkTracerProvider>) {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = EnvFilter::try_from_env("VIREO_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into files or log collectors.
    let text = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let export =
        tracer.map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer("vireo")));
    let registry = tracing_subscriber::registry().with(filter).with(export);
    let _ = match format {
        LogFormat::Text => registry.with(text).try_init(),
        LogFormat::Json => registry.with(text.json()).try_init(),
    };
}
