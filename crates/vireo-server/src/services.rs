//! The server's running parts: started in dependency order over one set of stores, and stopped
//! in the order `stop` declares, all within the shutdown grace period.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vireo_core::{AsyncSubmitter, Deployer as _, Name};
use vireo_gateway::{AppState, SharedState, SourceServices};
use vireo_runtime::{EngineSettings, HostServices, Runtime};
use vireo_store::{RecordWriter, RecordWriterTask, Stores};
use vireo_triggers::sources::{BrokerTrust, Kinds, Statuses};
use vireo_triggers::{QueueWriter, WorkerHandle};

use crate::config::Config;
use crate::node::{Node, Peers};
use crate::platform::{self, Platform};
use crate::secrets::{Cipher, Vault};
use crate::telemetry::Telemetry;
use crate::tls::{self, Tls};
use crate::{changes, data_dir, descriptors, http, telemetry, tenants, upkeep};

/// How long shutdown waits to record the node as draining before it goes on regardless.
const DRAIN_NOTICE: Duration = Duration::from_secs(1);

/// The end of the shutdown grace period kept for writing what in-flight work produced
/// (results, records), at most; a quarter of the grace period when that is shorter.
const FINAL_WRITES: Duration = Duration::from_secs(2);
/// What the dashboard's cookie-signing key is derived for: from the master key, so every node
/// of a cluster signs and accepts the same sessions.
const DASHBOARD_COOKIE_KEY: &str = "vireo dashboard cookies v1";
const PRESIGN_KEY: &str = "vireo presigned object urls v1";

pub struct Services {
    stores: Stores,
    shutdown: CancellationToken,
    server: JoinHandle<()>,
    /// Loops that hold nothing to finish: stopped at once.
    upkeep: Vec<JoinHandle<()>>,
    scheduler: JoinHandle<()>,
    sources: JoinHandle<()>,
    worker: WorkerHandle,
    submitter: Arc<dyn AsyncSubmitter>,
    queue_writer: JoinHandle<()>,
    platform: Arc<Platform>,
    node: Node,
    records: RecordWriter,
    record_writer: RecordWriterTask,
}

impl Services {
    /// Starts everything over `stores`, serving HTTP on `listener`; returns once the server
    /// accepts requests.
    pub async fn start(
        config: &Config,
        stores: Stores,
        cipher: Cipher,
        telemetry: Telemetry,
        listener: tokio::net::TcpListener,
        tls: Option<Tls>,
    ) -> anyhow::Result<Self> {
        // Subscribed before anything writes, so no change goes unheard.
        let feed = stores.changes.subscribe();
        let directory =
            Arc::new(tenants::open_directory(stores.tenants.clone(), &config.data_dir).await?);
        let ui = config.ui.enabled.then(|| vireo_gateway::UiSettings {
            cookie_key: *cipher.derive_key(DASHBOARD_COOKIE_KEY),
            session_ttl: Duration::from_secs(config.ui.session_ttl_secs),
            secure_cookies: tls.is_some(),
        });
        let presign_key = vireo_gateway::PresignKey::new(*cipher.derive_key(PRESIGN_KEY));
        let (records, record_writer) = RecordWriter::spawn(stores.records.clone());
        // The queue worker's wake-up: a write through the API or a function that may have
        // queued a bucket event starts its delivery at once.
        let wake = Arc::new(Notify::new());
        let objects = Arc::new(crate::bucket_events::WakingObjects {
            inner: stores.objects.clone(),
            wake: wake.clone(),
        });
        // Files on this node: only a server alone on its store can offer them.
        let sqlite: Option<Arc<dyn vireo_core::SqliteDatabases>> = match config.store {
            vireo_store::StorageConfig::Sqlite { .. } => Some(Arc::new(
                vireo_store::FunctionDatabases::new(&config.data_dir, config.sqlite),
            )),
            vireo_store::StorageConfig::Postgres(_) => None,
        };
        let platform = Arc::new(Platform::new(
            platform::Storage {
                catalog: stores.catalog.clone(),
                components: stores.components.clone(),
                records: records.clone(),
                http_routes: stores.http_routes.clone(),
            },
            start_runtime(config, &stores, objects.clone(), sqlite.clone())?,
            platform::Limits {
                settings: config.settings_limits(),
                admission: config.admission_settings(),
            },
            platform::Tenants {
                directory: directory.clone(),
                vault: Vault::new(stores.secrets.clone(), cipher),
            },
        ));
        let address = listener.local_addr().context("reading the bound address")?;
        let node_id = Node::new_id();
        let alone = matches!(config.store, vireo_store::StorageConfig::Sqlite { .. });
        let peers = Peers::succeed(&config.data_dir, &node_id, alone);
        let (node, store_health) =
            Node::start(stores.nodes.clone(), &platform, node_id, address, peers);
        deploy_at_start(&platform, &config.deploy).await?;
        platform.load_published_routes().await;
        platform.prewarm_all().await;
        let mut upkeep = vec![
            tokio::spawn(changes::follow(feed, platform.clone())),
            tokio::spawn(upkeep::scale_to_zero(platform.clone(), config.idle_ttl())),
            tokio::spawn(upkeep::apply_retention(
                stores.records.clone(),
                config.retention.clone(),
            )),
        ];

        let (writer, queue_writer) = QueueWriter::spawn(
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
        let kinds = Arc::new(Kinds::new(
            config.source_settings().claim_idle,
            BrokerTrust {
                config: config.outbound_trust.config(),
                extra_pem: config.outbound_trust.extra_pem().map(str::to_string),
            },
        ));
        let statuses = Statuses::default();
        let sources = tokio::spawn(vireo_triggers::sources::supervisor::run(
            vireo_triggers::sources::supervisor::Parts {
                store: stores.sources.clone(),
                secrets: platform.clone(),
                submitter: submitter.clone(),
                kinds: kinds.clone(),
                statuses: statuses.clone(),
                consumer: format!("vireo-{}", node.id()),
                slot: node.slot(),
            },
            config.source_settings(),
            shutdown.clone(),
        ));
        let state = AppState::new(SharedState {
            catalog: stores.catalog.clone(),
            records: stores.records.clone(),
            deployer: platform.clone(),
            invoker: platform.clone(),
            queue: stores.queue_admin.clone(),
            schedules: stores.schedules.clone(),
            sources: SourceServices {
                store: stores.sources.clone(),
                probe: kinds,
                monitor: Arc::new(statuses),
                secrets: platform.clone(),
            },
            http_routes: Arc::new(crate::published::RereadingRoutes {
                inner: stores.http_routes.clone(),
                published: platform.route_publisher(),
            }),
            published: platform.published_routes(),
            secrets: platform.clone(),
            key_value: stores.key_value.clone(),
            objects,
            sqlite,
            submitter: submitter.clone(),
            log_events: records.subscribe(),
            shutdown: shutdown.clone(),
            nodes: stores.nodes.clone(),
            store_health,
            render_metrics: Arc::new(move || telemetry.render()),
            directory,
            key_buckets: Arc::default(),
            pricing: config.pricing,
            limits: config.gateway_limits(),
            ui,
            presign_key,
        });
        let acceptor = tls.as_ref().map(|tls| tls.acceptor.clone());
        if let Some(tls) = tls {
            upkeep.push(tokio::spawn(tls::watch(tls)));
        }
        let server = tokio::spawn(http::serve(
            listener,
            acceptor,
            vireo_gateway::router(state),
            config.connection_limits(),
            shutdown.clone(),
        ));
        Ok(Self {
            stores,
            shutdown,
            server,
            upkeep,
            scheduler,
            sources,
            worker,
            submitter,
            queue_writer,
            platform,
            node,
            records,
            record_writer,
        })
    }

    /// Waits until `stop_requested` completes, or the HTTP server ends by itself (an error).
    pub async fn run_until(
        &mut self,
        stop_requested: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::select! {
            () = stop_requested => Ok(()),
            finished = &mut self.server => finished.context("the HTTP server task failed"),
        }
    }

    /// Stops within `grace`: no new connections; in-flight requests, schedules, async attempts
    /// and guest tails finish until a little before the deadline; then what they produced is
    /// written (queue results, records) and the store closes.
    pub async fn stop(self, grace: Duration) {
        let mut server = self.server;
        tracing::info!(
            ?grace,
            "shutting down: no new connections, finishing in-flight invocations"
        );
        // Load balancers and the other nodes learn first that this node is going.
        self.node.drain(DRAIN_NOTICE.min(grace / 4)).await;
        self.shutdown.cancel();
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
        for task in self.upkeep {
            task.abort();
        }
        finish_by(work_deadline, self.scheduler, "the cron scheduler").await;
        finish_by(work_deadline, self.sources, "the event sources").await;
        let remaining = work_deadline.saturating_duration_since(tokio::time::Instant::now());
        if !self.worker.stop(remaining).await {
            tracing::warn!(
                "grace period over: unfinished async attempts will be redelivered after the next start"
            );
        }
        if !self.platform.finish_in_flight(work_deadline).await {
            tracing::warn!(
                "grace period over: some invocations did not finish and are not recorded"
            );
        }
        // Attempts still running past the grace period hold a handle; their results are not
        // waited for (they are redelivered), only what was already sent is written.
        drop(self.submitter);
        finish_by(deadline, self.queue_writer, "the async queue writer").await;
        drop(self.platform);
        let _ = tokio::time::timeout_at(deadline, self.records.flush()).await;
        drop(self.records);
        self.record_writer.finish(deadline).await;
        self.node
            .leave(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await;
        if tokio::time::timeout_at(deadline, self.stores.close())
            .await
            .is_err()
        {
            tracing::warn!(
                "grace period over: the database was not closed cleanly (it recovers at the next start)"
            );
        }
    }
}

/// The runtime, with outgoing connections capped by what the descriptor limit allows, and the
/// stores its host interfaces use.
fn start_runtime(
    config: &Config,
    stores: &Stores,
    objects: Arc<dyn vireo_core::ObjectStore>,
    sqlite: Option<Arc<dyn vireo_core::SqliteDatabases>>,
) -> anyhow::Result<Runtime> {
    let descriptor_limit = descriptors::raise_limit();
    let egress = config.egress_limits(descriptor_limit)?;
    tracing::info!(
        max_connections = egress.max_connections,
        per_invocation = egress.concurrent_per_invocation,
        "outgoing connections capped"
    );
    Runtime::new(
        &EngineSettings {
            egress,
            ..config.engine_settings()
        },
        &HostServices {
            key_value: Some(stores.key_value.clone()),
            key_value_limits: config.key_value,
            key_value_observer: Some(Arc::new(telemetry::kv_operation)),
            objects: Some(objects),
            object_limits: config.objects,
            sqlite,
            max_pending_per_namespace: config.async_queue.max_pending_per_namespace,
        },
        &config.data_dir.join(data_dir::ARTIFACTS),
    )
    .context("starting the runtime")
}

/// Waits for `task` until `deadline`, then ends it.
async fn finish_by(deadline: tokio::time::Instant, mut task: JoinHandle<()>, what: &str) {
    if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
        tracing::warn!("grace period over: stopping {what} before it finished");
        task.abort();
    }
}

/// Deploys the `--deploy NAME=FILE` components in the default namespace (an unchanged file
/// keeps its version).
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
