//! The server's configuration: defaults, an optional TOML file, `VIREO_*` variables and flags
//! (flag > env > file > default), all validated before a port is bound.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Deserialize;
use vireo_core::SettingsLimits;
use vireo_runtime::{EgressLimits, EngineSettings, MemoryReset, OutboundTrust};

use crate::ServeOptions;
use crate::admission::AdmissionSettings;
use crate::store_config::{self, StoreFileConfig};
use crate::tls::TlsFiles;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATA_DIR: &str = ".vireo";
/// The master key file's name in the data directory unless configured elsewhere.
pub const MASTER_KEY_FILE: &str = "master.key";

/// The config file. Every field is optional; unknown fields are an error, so typos surface.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    master_key_file: Option<PathBuf>,
    #[serde(default)]
    limits: LimitsConfig,
    #[serde(default)]
    scaling: ScalingConfig,
    #[serde(default)]
    engine: EngineConfig,
    #[serde(default, rename = "async")]
    async_queue: AsyncConfig,
    #[serde(default)]
    cron: CronConfig,
    #[serde(default)]
    sources: SourcesConfig,
    #[serde(default)]
    pricing: vireo_core::PricePlan,
    #[serde(default)]
    retention: RetentionConfig,
    #[serde(default)]
    tracing: TracingConfig,
    #[serde(default)]
    egress: EgressConfig,
    #[serde(default)]
    store: StoreFileConfig,
    #[serde(default)]
    tls: TlsFileConfig,
    #[serde(default)]
    key_value: vireo_core::KeyValueLimits,
    #[serde(default)]
    objects: vireo_core::ObjectLimits,
    #[serde(default)]
    ui: UiConfig,
    #[serde(default)]
    connections: vireo_core::ConnectionLimits,
    #[serde(default)]
    sqlite: vireo_core::SqliteLimits,
}

/// `[ui]` in the config file: the web dashboard under `/ui`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiConfig {
    /// Serve the dashboard (default true); false answers `/ui` with 404 like any unknown path.
    pub enabled: bool,
    /// How long a dashboard session lasts after logging in, seconds (default 8 hours).
    pub session_ttl_secs: u64,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            session_ttl_secs: 8 * 3600,
        }
    }
}

/// `[tls]` in the config file: serve HTTPS with this certificate chain and key (PEM).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFileConfig {
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
}

/// `[egress]` in the config file: bounds on functions' outgoing HTTP requests, so that no
/// invocation can take the server's file descriptors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    /// Outgoing requests one invocation may have open at once.
    pub max_concurrent_per_invocation: usize,
    /// Outgoing requests one invocation may send in all.
    pub max_requests_per_invocation: u32,
    /// Outgoing connections open at once, all invocations together; by default a quarter of the
    /// file descriptor limit (at most 16,384), and at most half of it.
    pub max_connections: Option<usize>,
    /// Certificate authorities (PEM) that functions' outgoing TLS trusts beside the Web PKI
    /// roots: HTTPS, PostgreSQL with `sslmode=require`, `rediss://`, `mqtts://`.
    pub ca_file: Option<PathBuf>,
}

impl Default for EgressConfig {
    fn default() -> Self {
        let limits = EgressLimits::default();
        Self {
            max_concurrent_per_invocation: limits.concurrent_per_invocation,
            max_requests_per_invocation: limits.requests_per_invocation,
            max_connections: None,
            ca_file: None,
        }
    }
}

/// `[tracing]` in the config file: export of spans to an OpenTelemetry collector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// OTLP/HTTP traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`; none (the default)
    /// exports nothing.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "vireo".to_string(),
        }
    }
}

/// `[retention]` in the config file: what is deleted, by age and size, in the background.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Log lines older than this are deleted, seconds (default 7 days).
    pub logs_max_age_secs: u64,
    /// Invocation records (the base of usage reports) and finished async invocations older than
    /// this are deleted, seconds (default 90 days).
    pub records_max_age_secs: u64,
    /// At most this much log text is kept, newest first, KiB (default 1 GiB).
    pub max_log_kib: u64,
    /// How often retention runs, milliseconds (default one minute).
    pub sweep_interval_ms: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        Self {
            logs_max_age_secs: 7 * 24 * 3600,
            records_max_age_secs: 90 * 24 * 3600,
            max_log_kib: 1024 * 1024,
            sweep_interval_ms: 60_000,
        }
    }
}

impl RetentionConfig {
    /// The rules as of `now_us`.
    pub fn rules(&self, now_us: i64) -> vireo_core::Retention {
        let before = |secs: u64| {
            now_us.saturating_sub(i64::try_from(secs.saturating_mul(1_000_000)).unwrap_or(i64::MAX))
        };
        vireo_core::Retention {
            logs_before_us: before(self.logs_max_age_secs),
            records_before_us: before(self.records_max_age_secs),
            max_log_bytes: self.max_log_kib.saturating_mul(1024),
        }
    }
}

/// `[async]` in the config file: the durable queue behind `Prefer: respond-async` and cron.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AsyncConfig {
    /// Async attempts running at once in this server.
    pub concurrency: usize,
    /// How long a claimed invocation stays leased without a heartbeat, milliseconds; after a
    /// crash, other servers redeliver it after this (a restarted single server at once).
    pub lease_ms: u64,
    /// Longest wait before the worker looks for due work it was not told about, milliseconds.
    pub poll_interval_ms: u64,
    /// Backoff before the second attempt, doubling per attempt, unless the function's retry
    /// policy says otherwise; milliseconds.
    pub min_backoff_ms: u64,
    /// Longest backoff unless the function's retry policy says otherwise; milliseconds.
    pub max_backoff_ms: u64,
    /// Async invocations queued or running per namespace; beyond it requests get 429.
    pub max_pending_per_namespace: u64,
    /// Response body kept with each async invocation, KiB; the rest is dropped.
    pub max_stored_response_kib: usize,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        Self {
            concurrency: 64,
            lease_ms: 30_000,
            poll_interval_ms: 500,
            min_backoff_ms: 1_000,
            max_backoff_ms: 5 * 60 * 1000,
            max_pending_per_namespace: 100_000,
            max_stored_response_kib: 256,
        }
    }
}

/// `[cron]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CronConfig {
    /// How often the scheduler looks for due slots, milliseconds.
    pub tick_ms: u64,
    /// A slot found later than this after its time counts as missed (the server was down) and
    /// follows the schedule's missed-slot policy; milliseconds.
    pub misfire_grace_ms: u64,
}

impl Default for CronConfig {
    fn default() -> Self {
        Self {
            tick_ms: 200,
            misfire_grace_ms: 10_000,
        }
    }
}

/// `[sources]` in the config file: how each node follows the event sources.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    /// How often the node rereads the sources to start, pause or stop their runners, ms.
    pub poll_ms: u64,
    /// A message left unacknowledged this long by a consumer that went away (its node died)
    /// is taken over by another, ms. Longer than any commit takes, so a live node's messages
    /// are not taken.
    pub claim_idle_ms: u64,
}

impl Default for SourcesConfig {
    fn default() -> Self {
        Self {
            poll_ms: 1_000,
            claim_idle_ms: 30_000,
        }
    }
}

/// `[engine]` in the config file: how instance memory is reset between requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    pub memory_init_cow: bool,
    pub linear_memory_keep_resident_kib: usize,
    pub table_keep_resident_kib: usize,
    pub async_stack_keep_resident_kib: usize,
    pub decommit_batch_size: usize,
    pub pagemap_scan: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        let reset = MemoryReset::default();
        Self {
            memory_init_cow: reset.memory_init_cow,
            linear_memory_keep_resident_kib: reset.linear_memory_keep_resident >> 10,
            table_keep_resident_kib: reset.table_keep_resident >> 10,
            async_stack_keep_resident_kib: reset.async_stack_keep_resident >> 10,
            decommit_batch_size: reset.decommit_batch_size,
            pagemap_scan: reset.pagemap_scan,
        }
    }
}

/// `[scaling]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScalingConfig {
    /// A version unused this long drops its compiled state (scale to zero), milliseconds;
    /// instances kept for reuse are dropped after idling this long too.
    pub idle_ttl_ms: u64,
}

impl Default for ScalingConfig {
    fn default() -> Self {
        Self {
            idle_ttl_ms: 5 * 60 * 1000,
        }
    }
}

/// `[limits]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest component upload, MiB.
    pub max_upload_mib: u64,
    /// Largest request body passed to a function, KiB.
    pub max_request_body_kib: u64,
    /// Largest memory limit a version may ask for, MiB.
    pub max_memory_mib: u32,
    /// Longest timeout a version may ask for, seconds.
    pub max_timeout_secs: u64,
    /// Guest output kept per invocation, KiB.
    pub max_log_kib: usize,
    /// Component instances alive at once, all functions together.
    pub max_instances: u32,
    /// How long a shutdown waits for in-flight invocations, seconds.
    pub shutdown_grace_secs: u64,
    /// Invocations running at once, all functions together (shared fairly between functions).
    pub max_concurrent_invocations: usize,
    /// Invocations of one function that may wait for a slot; more are refused with 503.
    pub max_queued_per_function: usize,
    /// How long an invocation waits for a slot before it is refused with 429, milliseconds.
    pub queue_timeout_ms: u64,
    /// A client must send a request's whole head within this, milliseconds; slower connections
    /// (slowloris) are closed.
    pub header_read_timeout_ms: u64,
    /// Largest request head (request line and headers), KiB; larger gets 431.
    pub max_header_kib: usize,
    /// Longest request target (path and query), bytes; longer gets 414.
    pub max_url_bytes: usize,
    /// How long, in all, a request body may keep its reader waiting before it has earned more
    /// by arriving, milliseconds; a slower body is answered 408 and its connection closed.
    pub body_read_timeout_ms: u64,
    /// Each this many bytes of a request body earn it one more second of waiting.
    pub body_min_bytes_per_sec: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_upload_mib: 50,
            max_request_body_kib: 6 * 1024,
            max_memory_mib: 1024,
            max_timeout_secs: 900,
            max_log_kib: 64,
            max_instances: 1000,
            shutdown_grace_secs: 30,
            max_concurrent_invocations: 1000,
            max_queued_per_function: 100,
            queue_timeout_ms: 5000,
            header_read_timeout_ms: 10_000,
            max_header_kib: 64,
            max_url_bytes: 8192,
            body_read_timeout_ms: 10_000,
            body_min_bytes_per_sec: 1024,
        }
    }
}

/// The validated configuration the server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The database holding the state.
    pub store: vireo_store::StorageConfig,
    /// Seals secrets; created at the first start if missing.
    pub master_key_file: PathBuf,
    pub limits: LimitsConfig,
    pub scaling: ScalingConfig,
    pub engine: EngineConfig,
    pub async_queue: AsyncConfig,
    pub cron: CronConfig,
    pub sources: SourcesConfig,
    pub pricing: vireo_core::PricePlan,
    pub retention: RetentionConfig,
    pub tracing: TracingConfig,
    pub egress: EgressConfig,
    /// The largest key and value of the key-value stores.
    pub key_value: vireo_core::KeyValueLimits,
    /// The largest object of the buckets.
    pub objects: vireo_core::ObjectLimits,
    /// Pools and limits of functions' connections to databases and brokers.
    pub connections: vireo_core::ConnectionLimits,
    /// Sizes and pools of functions' SQLite databases.
    pub sqlite: vireo_core::SqliteLimits,
    /// Components to deploy at start, as `(name, file)`.
    pub deploy: Vec<(vireo_core::Name, PathBuf)>,
    /// HTTPS instead of HTTP, with the certificate and key in these files.
    pub tls: Option<TlsFiles>,
    pub ui: UiConfig,
    /// Whom functions' outgoing TLS trusts: the Web PKI and `egress.ca_file`.
    pub outbound_trust: OutboundTrust,
}

impl Config {
    pub fn load(options: &ServeOptions) -> anyhow::Result<Self> {
        let file = match &options.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen_text = options
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen: SocketAddr = listen_text
            .parse()
            .with_context(|| format!("invalid listen address {listen_text:?}: expected IP:PORT such as 127.0.0.1:8080 (port 0 picks a free port)"))?;
        let data_dir = options
            .data
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let store = store_config::storage(options.store.as_deref(), &file.store, &data_dir)?;
        let master_key_file = options
            .master_key_file
            .clone()
            .or(file.master_key_file)
            .unwrap_or_else(|| data_dir.join(MASTER_KEY_FILE));
        let limits = file.limits;
        validate_limits(&limits)?;
        let scaling = file.scaling;
        if scaling.idle_ttl_ms == 0 {
            bail!("invalid config: scaling.idle_ttl_ms must be greater than 0");
        }
        validate_async(&file.async_queue, &file.cron)?;
        validate_sources(&file.sources)?;
        validate_egress(&file.egress)?;
        validate_key_value(&file.key_value)?;
        if file.objects.max_object_bytes == 0 || file.objects.max_object_bytes > i64::MAX as u64 {
            bail!(
                "invalid config: objects.max_object_bytes must be from 1 to {}",
                i64::MAX
            );
        }
        if let Some(zero) = file.connections.first_zero() {
            bail!("invalid config: {zero} must be greater than 0");
        }
        validate_sqlite(&file.sqlite)?;
        if let Some(endpoint) = &file.tracing.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            bail!(
                "invalid config: tracing.otlp_endpoint must be an http:// or https:// URL, got {endpoint:?}"
            );
        }
        if file.ui.session_ttl_secs == 0 {
            bail!("invalid config: ui.session_ttl_secs must be greater than 0");
        }
        if file.retention.sweep_interval_ms == 0 {
            bail!("invalid config: retention.sweep_interval_ms must be greater than 0");
        }
        file.pricing
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid config: {e}"))?;
        let tls = tls_files(
            options.tls_cert.clone().or(file.tls.cert),
            options.tls_key.clone().or(file.tls.key),
        )?;
        let outbound_trust = match &file.egress.ca_file {
            Some(path) => OutboundTrust::with_ca_file(path)
                .map_err(|e| anyhow::anyhow!("invalid config: egress.ca_file: {e}"))?,
            None => OutboundTrust::default(),
        };
        let deploy = options
            .deploy
            .iter()
            .map(|spec| parse_deploy(spec))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            listen,
            data_dir,
            store,
            master_key_file,
            limits,
            scaling,
            engine: file.engine,
            async_queue: file.async_queue,
            cron: file.cron,
            sources: file.sources,
            pricing: file.pricing,
            retention: file.retention,
            tracing: file.tracing,
            egress: file.egress,
            key_value: file.key_value,
            objects: file.objects,
            connections: file.connections,
            sqlite: file.sqlite,
            deploy,
            tls,
            ui: file.ui,
            outbound_trust,
        })
    }

    pub fn engine_settings(&self) -> EngineSettings {
        EngineSettings {
            max_memory_mib: self.limits.max_memory_mib,
            max_instances: self.limits.max_instances,
            max_log_bytes: self.limits.max_log_kib * 1024,
            idle_ttl: self.idle_ttl(),
            memory_reset: MemoryReset {
                memory_init_cow: self.engine.memory_init_cow,
                linear_memory_keep_resident: self.engine.linear_memory_keep_resident_kib << 10,
                table_keep_resident: self.engine.table_keep_resident_kib << 10,
                async_stack_keep_resident: self.engine.async_stack_keep_resident_kib << 10,
                decommit_batch_size: self.engine.decommit_batch_size,
                pagemap_scan: self.engine.pagemap_scan,
            },
            connections: self.connections,
            outbound_trust: self.outbound_trust.clone(),
            ..EngineSettings::default()
        }
    }

    /// The bounds on outgoing requests for a process that may open `descriptor_limit` files;
    /// an error if the configured connection cap leaves too few for everything else.
    pub fn egress_limits(&self, descriptor_limit: u64) -> anyhow::Result<EgressLimits> {
        Ok(EgressLimits {
            concurrent_per_invocation: self.egress.max_concurrent_per_invocation,
            requests_per_invocation: self.egress.max_requests_per_invocation,
            max_connections: crate::descriptors::outgoing_connection_cap(
                self.egress.max_connections,
                descriptor_limit,
            )?,
        })
    }

    pub fn settings_limits(&self) -> SettingsLimits {
        SettingsLimits {
            max_memory_mib: self.limits.max_memory_mib,
            max_timeout_ms: self.limits.max_timeout_secs * 1000,
        }
    }

    pub fn connection_limits(&self) -> crate::http::ConnectionLimits {
        crate::http::ConnectionLimits {
            header_read_timeout: Duration::from_millis(self.limits.header_read_timeout_ms),
            max_header_bytes: self.limits.max_header_kib << 10,
        }
    }

    pub fn gateway_limits(&self) -> vireo_gateway::GatewayLimits {
        vireo_gateway::GatewayLimits {
            max_upload_bytes: self.limits.max_upload_mib << 20,
            max_request_body_bytes: self.limits.max_request_body_kib << 10,
            max_url_bytes: self.limits.max_url_bytes,
            max_header_bytes: self.limits.max_header_kib << 10,
            body_pace: vireo_gateway::Pace {
                grace: Duration::from_millis(self.limits.body_read_timeout_ms),
                min_bytes_per_sec: self.limits.body_min_bytes_per_sec,
            },
            key_value: self.key_value,
            objects: self.objects,
            max_pending_per_namespace: self.async_queue.max_pending_per_namespace,
        }
    }

    pub fn admission_settings(&self) -> AdmissionSettings {
        AdmissionSettings {
            max_concurrent: self.limits.max_concurrent_invocations,
            max_queued_per_function: self.limits.max_queued_per_function,
            queue_timeout: Duration::from_millis(self.limits.queue_timeout_ms),
        }
    }

    pub fn worker_settings(&self) -> vireo_triggers::WorkerSettings {
        let queue = &self.async_queue;
        vireo_triggers::WorkerSettings {
            concurrency: queue.concurrency,
            lease: Duration::from_millis(queue.lease_ms),
            poll_interval: Duration::from_millis(queue.poll_interval_ms),
            delivery: vireo_triggers::DeliverySettings {
                min_backoff: Duration::from_millis(queue.min_backoff_ms),
                max_backoff: Duration::from_millis(queue.max_backoff_ms),
                max_stored_response_bytes: queue.max_stored_response_kib << 10,
            },
        }
    }

    pub fn source_settings(&self) -> vireo_triggers::sources::SourceSettings {
        vireo_triggers::sources::SourceSettings {
            poll: Duration::from_millis(self.sources.poll_ms),
            claim_idle: Duration::from_millis(self.sources.claim_idle_ms),
        }
    }

    pub fn scheduler_settings(&self) -> vireo_triggers::SchedulerSettings {
        vireo_triggers::SchedulerSettings {
            tick: Duration::from_millis(self.cron.tick_ms),
            misfire_grace: Duration::from_millis(self.cron.misfire_grace_ms),
        }
    }

    pub fn idle_ttl(&self) -> Duration {
        Duration::from_millis(self.scaling.idle_ttl_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.limits.shutdown_grace_secs)
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    if looks_like_project_manifest(&text) {
        bail!(
            "{} is a project manifest (what `vireo deploy` reads), not a server config file; \
             give `vireo serve --config` the server's own file, such as vireo-server.toml",
            path.display()
        );
    }
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// A project manifest names its component (or lists functions); no server config key does.
fn looks_like_project_manifest(text: &str) -> bool {
    toml::from_str::<toml::Table>(text)
        .is_ok_and(|table| table.contains_key("component") || table.contains_key("function"))
}

fn validate_limits(limits: &LimitsConfig) -> anyhow::Result<()> {
    let positive = [
        ("max_upload_mib", limits.max_upload_mib),
        ("max_request_body_kib", limits.max_request_body_kib),
        ("max_memory_mib", u64::from(limits.max_memory_mib)),
        ("max_timeout_secs", limits.max_timeout_secs),
        ("max_log_kib", limits.max_log_kib as u64),
        ("max_instances", u64::from(limits.max_instances)),
        (
            "max_concurrent_invocations",
            limits.max_concurrent_invocations as u64,
        ),
        ("header_read_timeout_ms", limits.header_read_timeout_ms),
        ("max_url_bytes", limits.max_url_bytes as u64),
        ("body_read_timeout_ms", limits.body_read_timeout_ms),
        ("body_min_bytes_per_sec", limits.body_min_bytes_per_sec),
    ];
    if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
        bail!("invalid config: limits.{name} must be greater than 0");
    }
    // hyper cannot read a head into less than 8 KiB.
    if limits.max_header_kib < 8 {
        bail!("invalid config: limits.max_header_kib must be at least 8");
    }
    if limits.max_memory_mib > 16 * 1024 {
        bail!("invalid config: limits.max_memory_mib is at most 16384 (16 GiB per instance)");
    }
    Ok(())
}

fn validate_sources(sources: &SourcesConfig) -> anyhow::Result<()> {
    if sources.poll_ms == 0 {
        bail!("invalid config: sources.poll_ms must be greater than 0");
    }
    // Below a second, a slow commit on a live node would hand its messages to another.
    if sources.claim_idle_ms < 1_000 {
        bail!("invalid config: sources.claim_idle_ms must be at least 1000");
    }
    Ok(())
}

fn validate_async(queue: &AsyncConfig, cron: &CronConfig) -> anyhow::Result<()> {
    let positive = [
        ("async.concurrency", queue.concurrency as u64),
        ("async.lease_ms", queue.lease_ms),
        ("async.poll_interval_ms", queue.poll_interval_ms),
        ("async.min_backoff_ms", queue.min_backoff_ms),
        (
            "async.max_pending_per_namespace",
            queue.max_pending_per_namespace,
        ),
        ("cron.tick_ms", cron.tick_ms),
    ];
    if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
        bail!("invalid config: {name} must be greater than 0");
    }
    if queue.min_backoff_ms > queue.max_backoff_ms {
        bail!("invalid config: async.min_backoff_ms must not exceed async.max_backoff_ms");
    }
    // Heartbeats run every third of the lease; shorter leases would spend the store on them.
    if queue.lease_ms < 300 {
        bail!("invalid config: async.lease_ms must be at least 300");
    }
    if cron.misfire_grace_ms < cron.tick_ms {
        bail!("invalid config: cron.misfire_grace_ms must be at least cron.tick_ms");
    }
    Ok(())
}

fn validate_egress(egress: &EgressConfig) -> anyhow::Result<()> {
    let positive = [
        (
            "egress.max_concurrent_per_invocation",
            egress.max_concurrent_per_invocation as u64,
        ),
        (
            "egress.max_requests_per_invocation",
            u64::from(egress.max_requests_per_invocation),
        ),
        (
            "egress.max_connections",
            egress.max_connections.map_or(1, |n| n as u64),
        ),
    ];
    if let Some((name, _)) = positive.iter().find(|(_, value)| *value == 0) {
        bail!("invalid config: {name} must be greater than 0");
    }
    Ok(())
}

/// The largest key a store can index on PostgreSQL: a B-tree entry (the namespace, store and key
/// together) must fit in a third of a page, about 2,700 bytes.
const MAX_KV_KEY_BYTES: usize = 2048;
/// A value is held whole in memory and written as one database row.
const MAX_KV_VALUE_BYTES: usize = 64 << 20;

fn validate_key_value(limits: &vireo_core::KeyValueLimits) -> anyhow::Result<()> {
    if limits.max_key_bytes == 0 || limits.max_value_bytes == 0 {
        bail!(
            "invalid config: key_value.max_key_bytes and key_value.max_value_bytes must be greater than 0"
        );
    }
    if limits.max_key_bytes > MAX_KV_KEY_BYTES {
        bail!(
            "invalid config: key_value.max_key_bytes is at most {MAX_KV_KEY_BYTES} (PostgreSQL indexes keys)"
        );
    }
    if limits.max_value_bytes > MAX_KV_VALUE_BYTES {
        bail!("invalid config: key_value.max_value_bytes is at most {MAX_KV_VALUE_BYTES} (64 MiB)");
    }
    Ok(())
}

fn validate_sqlite(limits: &vireo_core::SqliteLimits) -> anyhow::Result<()> {
    for (name, value) in [
        ("sqlite.max_database_mib", limits.max_database_mib),
        (
            "sqlite.max_databases_per_namespace",
            limits.max_databases_per_namespace as u64,
        ),
        ("sqlite.pool_size", limits.pool_size as u64),
    ] {
        if value == 0 {
            bail!("invalid config: {name} must be greater than 0");
        }
    }
    // SQLite counts pages in a 32-bit integer: 4 KiB pages reach 8 TiB.
    if limits.max_database_mib > 8 << 20 {
        bail!("invalid config: sqlite.max_database_mib is at most 8388608 (8 TiB)");
    }
    Ok(())
}

/// Both files or neither: a certificate is no use without its key.
fn tls_files(cert: Option<PathBuf>, key: Option<PathBuf>) -> anyhow::Result<Option<TlsFiles>> {
    match (cert, key) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        (Some(cert), None) => bail!(
            "TLS needs both files: the certificate {} was given but no key; pass --tls-key FILE \
             (or VIREO_TLS_KEY, or tls.key in the config file)",
            cert.display()
        ),
        (None, Some(key)) => bail!(
            "TLS needs both files: the key {} was given but no certificate; pass --tls-cert FILE \
             (or VIREO_TLS_CERT, or tls.cert in the config file)",
            key.display()
        ),
    }
}

/// `NAME=FILE` for `--deploy`.
fn parse_deploy(spec: &str) -> anyhow::Result<(vireo_core::Name, PathBuf)> {
    let (name, file) = spec
        .split_once('=')
        .with_context(|| format!("invalid --deploy {spec:?}: expected NAME=FILE"))?;
    let name = vireo_core::Name::parse("function", name)?;
    let file = PathBuf::from(file);
    if !file.is_file() {
        bail!(
            "invalid --deploy {spec:?}: {} is not a file",
            file.display()
        );
    }
    Ok((name, file))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_with(file: &str, options: ServeOptions) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("vireo-server.toml");
        std::fs::write(&path, file)?;
        Config::load(&ServeOptions {
            config: Some(path),
            ..options
        })
    }

    #[test]
    fn defaults_apply_without_a_file() {
        let config = Config::load(&ServeOptions::default()).unwrap();
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(config.limits.max_upload_mib, 50);
        assert_eq!(config.limits.max_request_body_kib, 6 * 1024);
        assert_eq!(config.key_value, vireo_core::KeyValueLimits::default());
        let pace = config.gateway_limits().body_pace;
        assert_eq!(pace.grace, Duration::from_secs(10));
        assert_eq!(pace.min_bytes_per_sec, 1024);
    }

    #[test]
    fn flags_win_over_the_file() {
        let file = "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/from-file\"\n[limits]\nmax_upload_mib = 5\n";
        let config = load_with(
            file,
            ServeOptions {
                listen: Some("127.0.0.1:0".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:0");
        assert_eq!(config.data_dir, PathBuf::from("/tmp/from-file"));
        assert_eq!(
            config.master_key_file,
            PathBuf::from("/tmp/from-file/master.key")
        );
        assert_eq!(config.limits.max_upload_mib, 5);
    }

    #[test]
    fn the_dashboard_is_on_unless_turned_off() {
        let config = Config::load(&ServeOptions::default()).unwrap();
        assert!(config.ui.enabled);
        let config = load_with("[ui]\nenabled = false\n", ServeOptions::default()).unwrap();
        assert!(!config.ui.enabled);
        let refused = load_with("[ui]\nsession_ttl_secs = 0\n", ServeOptions::default());
        assert!(
            refused
                .unwrap_err()
                .to_string()
                .contains("ui.session_ttl_secs")
        );
    }

    #[test]
    fn the_master_key_file_can_live_elsewhere() {
        let file = "master_key_file = \"/keys/from-file.key\"";
        let config = load_with(file, ServeOptions::default()).unwrap();
        assert_eq!(config.master_key_file, PathBuf::from("/keys/from-file.key"));
        let options = ServeOptions {
            master_key_file: Some("/run/flag.key".into()),
            ..Default::default()
        };
        let config = load_with(file, options).unwrap();
        assert_eq!(config.master_key_file, PathBuf::from("/run/flag.key"));
    }

    #[test]
    fn tls_files_come_in_pairs_from_flags_or_the_file() {
        let file = "[tls]\ncert = \"/etc/vireo/cert.pem\"\nkey = \"/etc/vireo/key.pem\"\n";
        let config = load_with(file, ServeOptions::default()).unwrap();
        assert_eq!(
            config.tls,
            Some(TlsFiles {
                cert: "/etc/vireo/cert.pem".into(),
                key: "/etc/vireo/key.pem".into(),
            })
        );
        let flagged = ServeOptions {
            tls_cert: Some("/run/cert.pem".into()),
            ..Default::default()
        };
        let config = load_with(file, flagged.clone()).unwrap();
        assert_eq!(config.tls.unwrap().cert, PathBuf::from("/run/cert.pem"));
        let err = Config::load(&flagged).unwrap_err();
        assert!(
            format!("{err:#}").contains("no key; pass --tls-key"),
            "{err:#}"
        );
        assert_eq!(Config::load(&ServeOptions::default()).unwrap().tls, None);
        let err = load_with("[tls]\ncert_file = \"x\"", ServeOptions::default()).unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
    }

    #[test]
    fn mistakes_are_named() {
        let err = load_with("listen = \"nowhere\"", ServeOptions::default()).unwrap_err();
        assert!(
            format!("{err:#}").contains("invalid listen address"),
            "{err:#}"
        );
        let err = load_with("[limits]\nmax_uplod_mib = 5", ServeOptions::default()).unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
        let err = load_with("[limits]\nmax_instances = 0", ServeOptions::default()).unwrap_err();
        assert!(format!("{err:#}").contains("max_instances"), "{err:#}");
        let err = load_with(
            "[limits]\nbody_min_bytes_per_sec = 0",
            ServeOptions::default(),
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("body_min_bytes_per_sec"),
            "{err:#}"
        );
        let err = load_with("[connections]\npool_size = 0", ServeOptions::default()).unwrap_err();
        assert!(
            format!("{err:#}").contains("connections.pool_size must be greater than 0"),
            "{err:#}"
        );
        let config = load_with("[connections]\npool_size = 3", ServeOptions::default()).unwrap();
        assert_eq!(config.engine_settings().connections.pool_size, 3);
        let err = load_with("[egress]\nmax_connections = 0", ServeOptions::default()).unwrap_err();
        assert!(
            format!("{err:#}").contains("egress.max_connections"),
            "{err:#}"
        );
        let err = load_with(
            "[egress]\nca_file = \"/nonexistent/ca.pem\"",
            ServeOptions::default(),
        )
        .unwrap_err();
        assert!(
            format!("{err:#}").contains("egress.ca_file: reading /nonexistent/ca.pem"),
            "{err:#}"
        );
        let err =
            load_with("[key_value]\nmax_key_bytes = 4096", ServeOptions::default()).unwrap_err();
        assert!(
            format!("{err:#}").contains("key_value.max_key_bytes is at most 2048"),
            "{err:#}"
        );
        let err =
            load_with("[key_value]\nmax_value_bytes = 0", ServeOptions::default()).unwrap_err();
        assert!(format!("{err:#}").contains("key_value"), "{err:#}");
        let err = load_with("[key_value]\nmax_keys = 1", ServeOptions::default()).unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
        let err = Config::load(&ServeOptions {
            deploy: vec!["hello".into()],
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("NAME=FILE"), "{err:#}");
    }

    #[test]
    fn a_project_manifest_is_refused_as_server_config() {
        let manifest = "name = \"greet\"\ncomponent = \"dist/greet.wasm\"\n";
        let err = load_with(manifest, ServeOptions::default()).unwrap_err();
        assert!(
            format!("{err:#}").contains("is a project manifest"),
            "{err:#}"
        );
    }
}
