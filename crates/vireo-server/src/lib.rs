//! The composition root: reads configuration, claims the data directory, opens the stores,
//! starts the services over them, and stops them in order at SIGINT/SIGTERM.

mod admission;
mod bucket_events;
mod changes;
mod config;
mod data_dir;
mod descriptors;
mod http;
mod jwt;
mod metering;
mod node;
mod otlp;
mod owner_address;
mod platform;
mod published;
mod routes;
mod secrets;
mod services;
mod signal;
mod single_node;
mod store_config;
mod store_copy;
mod tail;
mod telemetry;
mod tenants;
mod tls;
mod upkeep;

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::Context;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;
use vireo_store::StorageConfig;

pub use config::{Config, DEFAULT_DATA_DIR, DEFAULT_LISTEN};
pub use owner_address::ADDRESS_FILE;
use services::Services;
pub use store_copy::copy_store;
/// The deploy checks that need no engine, for `vireo build` on a developer's machine.
pub use vireo_runtime::{Rejection, check_component};
pub use vireo_store::{CopyProgress, CopyReport};

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
    /// `sqlite:PATH` or `postgres://…`: the database holding the state (default the SQLite
    /// file in the data directory).
    pub store: Option<String>,
    pub config: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    /// `NAME=FILE` components to deploy in the `default` namespace at start (unchanged files
    /// keep their version).
    pub deploy: Vec<String>,
    /// The master key file that seals secrets (default `<data>/master.key`).
    pub master_key_file: Option<PathBuf>,
    /// HTTPS: the PEM certificate chain, and its private key; both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
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
    // Like the port, before anything is written: a certificate that cannot be served.
    let tls = config.tls.as_ref().map(tls::Tls::load).transpose()?;
    // The port first: a server that cannot listen has nothing to write.
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr().context("reading the bound address")?;

    // One server per SQLite file; a shared database needs no claim.
    let single_node = match &config.store {
        StorageConfig::Sqlite { path } => Some(single_node::claim(path)?),
        StorageConfig::Postgres(_) => None,
    };
    let stores = vireo_store::open(&config.store)
        .await
        .with_context(|| format!("opening the store {}", store_config::shown(&config.store)))?;
    let cipher = secrets::unlock(
        &config.master_key_file,
        stores.secrets.as_ref(),
        stores.master_key.as_ref(),
        &config.store,
    )
    .await?;
    if let Some(node) = &single_node {
        node.redeliver_orphans(stores.queue.as_ref()).await?;
    }

    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut services = Services::start(&config, stores, cipher, telemetry, listener, tls).await?;
    let stop_requested = signal::shutdown_requested();
    let owner = owner_address::OwnerAddress::write(&config.data_dir, address)?;
    announce(scheme, address)?;
    tracing::info!(%address, %scheme, data_dir = %config.data_dir.display(), store = %store_config::shown(&config.store), "vireo is ready");
    let ran = services.run_until(stop_requested).await;
    services.stop(config.shutdown_grace()).await;
    drop(owner);
    tracing::info!("stopped");
    drop(exporter);
    ran
}

/// The one line on stdout that scripts and tests wait for.
fn announce(scheme: &str, address: std::net::SocketAddr) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "vireo listening on {scheme}://{address}").context("writing to stdout")?;
    stdout.flush().context("writing to stdout")
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
