//! The server's implementation of the core seams: `Deployer` (validate, compile, store),
//! `Invoker` (resolve, admit, load, execute, record) and `SecretManager` (seal, store, reload
//! the versions granted a changed secret).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use vireo_core::buckets::{Buckets, Verdict};
use vireo_core::invoke::authorize_invocation;
use vireo_core::{
    AliasName, Body, Call, DeployError, Deployed, Deployer, Directory, InvocationStatus,
    InvokeError, Invoker, Name, NewVersion, SecretInfo, SecretManager, SecretName, SecretValue,
    SettingsLimits, Store, StoreError, TraceContext, VersionInfo, VersionSelector, VersionSettings,
    trace,
};
use vireo_runtime::{Runtime, RuntimeError};
use vireo_store::{BlobStore, RecordWriter};

use crate::admission::{Admission, AdmissionSettings, Refused};
use crate::metering::Meter;
use crate::otlp;
use crate::routes::RouteCache;
use crate::secrets::Vault;
use crate::tail::{self, Awaited, Finished, Tail};
use crate::telemetry;

pub struct Platform {
    pub store: Arc<dyn Store>,
    pub blobs: BlobStore,
    pub runtime: Runtime,
    pub records: RecordWriter,
    pub settings_limits: SettingsLimits,
    vault: Vault,
    admission: Admission,
    /// Namespaces' quotas (and keys), kept in memory.
    pub directory: Arc<Directory>,
    function_buckets: Buckets<(Name, Name)>,
    routes: RouteCache,
    /// Guest tails still running after their response was sent; shutdown waits for them.
    pub in_flight: TaskTracker,
}

/// The bounds a platform enforces: on deployed settings, and on running invocations.
pub struct Limits {
    pub settings: SettingsLimits,
    pub admission: AdmissionSettings,
}

/// Who the tenants are and what they keep secret.
pub struct Tenants {
    pub directory: Arc<Directory>,
    pub vault: Vault,
}

impl Platform {
    pub fn new(
        store: Arc<dyn Store>,
        blobs: BlobStore,
        runtime: Runtime,
        records: RecordWriter,
        limits: Limits,
        tenants: Tenants,
    ) -> Self {
        Self {
            store,
            blobs,
            runtime,
            records,
            settings_limits: limits.settings,
            vault: tenants.vault,
            admission: Admission::new(limits.admission),
            directory: tenants.directory,
            function_buckets: Buckets::default(),
            routes: RouteCache::default(),
            in_flight: TaskTracker::new(),
        }
    }

    /// Loads a version with `min_instances` and fills its ready instances, so its first request
    /// is neither a cold start nor an instantiation. Failures only cost that head start.
    pub async fn prewarm(&self, version: &VersionInfo) {
        if version.settings.min_instances == 0 {
            return;
        }
        match self.load(version).await {
            Ok(loaded) => self.runtime.refill(&loaded.version),
            Err(error) => {
                tracing::warn!(function = %version.function, version = version.version, %error, "pre-warming failed")
            }
        }
    }

    /// The version's compiled state and environment, loading both if needed.
    async fn load(&self, version: &VersionInfo) -> Result<vireo_runtime::Loaded, RuntimeError> {
        self.runtime
            .load(
                version,
                self.blobs.get(&version.component_sha256),
                self.vault.environment(version),
            )
            .await
    }

    /// Makes the versions of a namespace granted `secret` load again, so their next invocation
    /// sees its current value; pre-warmed ones are loaded again at once.
    async fn reload_granting(&self, namespace: &Name, secret: &SecretName) {
        for (_, function, number) in self.runtime.forget_granting(namespace, secret) {
            let selector = VersionSelector::Number(number);
            if let Ok(version) = self
                .store
                .resolve_version(namespace, &function, &selector)
                .await
            {
                self.prewarm(&version).await;
            }
        }
    }

    async fn latest(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<Option<VersionInfo>, StoreError> {
        match self
            .store
            .resolve_version(
                namespace,
                function,
                &VersionSelector::Alias(AliasName::latest()),
            )
            .await
        {
            Ok(version) => Ok(Some(version)),
            Err(StoreError::FunctionNotFound { .. } | StoreError::AliasNotFound { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// What is known about an invocation when its response goes out; completed into a record when
/// the guest finishes.
#[async_trait::async_trait]
impl Deployer for Platform {
    async fn deploy(
        &self,
        namespace: &Name,
        function: &Name,
        component: Bytes,
        settings: VersionSettings,
    ) -> Result<Deployed, DeployError> {
        settings
            .validate(&self.settings_limits)
            .map_err(|e| DeployError::InvalidSettings(e.to_string()))?;
        // What the settings ask of the capabilities (allowed_outbound_hosts) is theirs to check.
        self.runtime
            .validate_settings(&settings)
            .map_err(|e| DeployError::InvalidSettings(e.to_string()))?;
        if !self.store.namespace_exists(namespace).await? {
            return Err(StoreError::NamespaceNotFound(namespace.clone()).into());
        }
        let missing = self.vault.missing(namespace, &settings.secrets).await?;
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(SecretName::as_str).collect();
            return Err(DeployError::InvalidSettings(format!(
                "granted secrets that do not exist in namespace {namespace}: {}; set each with `vireo secrets set {namespace}/NAME`",
                names.join(", ")
            )));
        }
        let sha = BlobStore::sha256_hex(&component);
        let compile_time = self
            .runtime
            .prepare(&sha, component.clone())
            .await
            .map_err(|error| match error {
                RuntimeError::Rejected(rejection) => DeployError::Rejected(rejection.to_string()),
                internal @ RuntimeError::Internal { .. } => {
                    DeployError::Internal(internal.to_string())
                }
            })?;
        if let Some(took) = compile_time {
            telemetry::compiled(took);
        }
        // The bytes are on disk before any version refers to them; storing them again, also for
        // an unchanged deploy, repairs a damaged copy.
        self.blobs
            .put(&component)
            .await
            .map_err(|e| DeployError::Internal(format!("storing the component: {e}")))?;
        if let Some(latest) = self.latest(namespace, function).await?
            && latest.component_sha256 == sha
            && latest.settings == settings
        {
            return Ok(Deployed {
                version: latest,
                created: false,
            });
        }
        let new = NewVersion {
            component_sha256: sha,
            component_size: component.len() as u64,
            settings,
        };
        let version = self.store.add_version(namespace, function, new).await?;
        self.routes.invalidate(namespace, function);
        self.prewarm(&version).await;
        tracing::info!(namespace = %namespace, function = %function, version = version.version, "deployed");
        Ok(Deployed {
            version,
            created: true,
        })
    }

    async fn set_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
        version: u32,
    ) -> Result<(), StoreError> {
        self.store
            .set_alias(namespace, function, alias, version)
            .await?;
        self.routes.invalidate(namespace, function);
        Ok(())
    }

    async fn delete_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
    ) -> Result<(), StoreError> {
        self.store.delete_alias(namespace, function, alias).await?;
        self.routes.invalidate(namespace, function);
        Ok(())
    }

    fn warm_versions(&self, namespace: &Name, function: &Name) -> Vec<u32> {
        self.runtime.warm_versions(namespace, function)
    }

    async fn delete(&self, namespace: &Name, function: &Name) -> Result<(), StoreError> {
        self.store.delete_function(namespace, function).await?;
        self.routes.invalidate(namespace, function);
        self.runtime.forget_function(namespace, function);
        self.admission.forget_function(namespace, function);
        self.function_buckets
            .retain(|(ns, f)| !(ns == namespace && f == function));
        Ok(())
    }
}

#[async_trait::async_trait]
impl SecretManager for Platform {
    async fn set_secret(
        &self,
        namespace: &Name,
        name: &SecretName,
        value: SecretValue,
    ) -> Result<bool, StoreError> {
        let created = self.vault.put(namespace, name, &value).await?;
        self.reload_granting(namespace, name).await;
        tracing::info!(%namespace, secret = %name, created, "secret set");
        Ok(created)
    }

    async fn list_secrets(&self, namespace: &Name) -> Result<Vec<SecretInfo>, StoreError> {
        self.vault.list(namespace).await
    }

    async fn delete_secret(&self, namespace: &Name, name: &SecretName) -> Result<(), StoreError> {
        self.vault.delete(namespace, name).await?;
        self.reload_granting(namespace, name).await;
        tracing::info!(%namespace, secret = %name, "secret deleted");
        Ok(())
    }
}

#[async_trait::async_trait]
impl Invoker for Platform {
    async fn invoke(&self, mut call: Call) -> Result<http::Response<Body>, InvokeError> {
        let headers = call.request.headers_mut();
        let caller = caller_trace(headers);
        let span = tracing::info_span!(
            "invocation",
            function = %call.function,
            invocation_id = %call.id,
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        let fallback = caller.map_or_else(TraceContext::root, |caller| caller.child());
        let invocation = otlp::link(&span, caller, fallback);
        span.record("trace_id", invocation.trace_id());
        span.record("span_id", invocation.span_id());
        // The function's parent span is this invocation.
        if let Ok(value) = http::HeaderValue::from_str(&invocation.to_string()) {
            headers.insert(trace::TRACEPARENT, value);
        }
        self.run(call).instrument(span).await
    }

    async fn resolve(
        &self,
        namespace: &Name,
        function: &Name,
        selector: &VersionSelector,
    ) -> Result<VersionInfo, StoreError> {
        self.routes
            .resolve(self.store.as_ref(), namespace, function, selector)
            .await
    }
}

/// The caller's W3C trace, if its `traceparent` is valid; an invalid one goes, and its
/// `tracestate` with it, as the W3C rules ask. Without one the invocation starts a trace.
fn caller_trace(headers: &mut http::HeaderMap) -> Option<TraceContext> {
    let caller = headers
        .get(trace::TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceContext::parse);
    if caller.is_none() {
        headers.remove(trace::TRACEPARENT);
        headers.remove("tracestate");
    }
    caller
}

impl Platform {
    /// The function's own rate limit, shared by all its callers.
    fn take_rate_token(&self, version: &VersionInfo) -> Result<(), InvokeError> {
        let Some(limit) = version.settings.rate_limit else {
            return Ok(());
        };
        let function = (version.namespace.clone(), version.function.clone());
        match self.function_buckets.check(&function, limit) {
            Verdict::Allowed { .. } => Ok(()),
            Verdict::Limited { limit, retry_after } => {
                telemetry::admission_refused(&version.namespace, &version.function, "rate_limit");
                Err(InvokeError::RateLimited {
                    message: format!(
                        "{}/{} is rate limited to {} requests per second (bursts of {}); retry after the time in Retry-After",
                        version.namespace, version.function, limit.per_second, limit.burst
                    ),
                    limit,
                    retry_after,
                })
            }
        }
    }

    async fn run(&self, call: Call) -> Result<http::Response<Body>, InvokeError> {
        let version = self
            .routes
            .resolve(
                self.store.as_ref(),
                &call.namespace,
                &call.function,
                &call.selector,
            )
            .await
            .map_err(|error| match error {
                StoreError::Backend(_) => InvokeError::Unavailable(error.to_string()),
                not_found => InvokeError::NotFound(not_found.to_string()),
            })?;
        // Browsers send preflights without credentials, so they are answered before auth.
        let cors = version.settings.cors.clone();
        if let Some(answer) = cors
            .as_ref()
            .and_then(|cors| cors.preflight(call.request.method(), call.request.headers()))
        {
            let body = http_body_util::Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed_unsync();
            return Ok(http::Response::from_parts(answer, body));
        }
        let origin = call.request.headers().get(http::header::ORIGIN).cloned();
        authorize_invocation(&call.principal, &version)?;
        self.take_rate_token(&version)?;
        let quota = self.directory.quotas(&version.namespace).max_concurrency;
        let ticket = self.admission.admit(&version, quota).await.map_err(|refused| {
            let target = format!(
                "{}/{} version {}",
                version.namespace, version.function, version.version
            );
            let reason = match &refused {
                Refused::TimedOut(_) => "timeout",
                Refused::NamespaceAtQuota { .. } => "namespace_quota",
                Refused::QueueFull(_) => "queue_full",
            };
            telemetry::admission_refused(&version.namespace, &version.function, reason);
            match refused {
                Refused::TimedOut(waited) => InvokeError::Busy {
                    message: format!(
                        "{target} had no free slot within {} ms; retry shortly",
                        waited.as_millis()
                    ),
                    retry_after_secs: 1,
                },
                Refused::NamespaceAtQuota { limit, waited } => InvokeError::Busy {
                    message: format!(
                        "namespace {} is at its max_concurrency quota of {limit} and no slot freed within {} ms; retry shortly",
                        version.namespace,
                        waited.as_millis()
                    ),
                    retry_after_secs: 1,
                },
                Refused::QueueFull(queued) => InvokeError::Overloaded {
                    message: format!(
                        "{target} already has {queued} invocations waiting; retry shortly"
                    ),
                    retry_after_secs: 1,
                },
            }
        })?;
        let loaded = self.load(&version).await.map_err(|e| {
            InvokeError::Unavailable(format!(
                "cannot load {}/{} version {}: {e}",
                version.namespace, version.function, version.version
            ))
        })?;

        let started_at_us = vireo_core::time::now_micros();
        if loaded.cold {
            telemetry::cold_start(&version.namespace, &version.function);
        }
        let meter = Meter::default();
        let request = meter.request(call.request);
        let tail = Tail {
            ticket,
            in_flight: telemetry::InFlight::start(),
            finished: Finished {
                id: call.id,
                trigger: call.trigger,
                version,
                started_at_us,
                cold: loaded.cold,
                load_time: loaded.load_time,
                http_status: None,
                meter,
            },
            records: self.records.clone(),
        };
        let awaited = Awaited::new(
            self.runtime.execute(&loaded, request),
            tail,
            self.in_flight.clone(),
        );
        let (execution, mut tail) = awaited.answered().await;
        tail.finished.http_status = Some(tail::http_status(&execution, &tail.finished.meter));
        // A record counts the response bytes sent, so it waits for the body too.
        let (sent, response_sent) = oneshot::channel();
        let fault =
            execution.response.as_ref().err().and_then(|failure| {
                tail::client_fault(failure.status, &tail.finished.meter).cloned()
            });
        let response = execution.response.map(|mut response| {
            if let Some(cors) = &cors {
                cors.decorate(origin.as_ref(), response.headers_mut());
            }
            tail.finished.meter.response(response, sent)
        });
        self.in_flight.spawn(
            tail.finish(execution.completion, Some(response_sent))
                .in_current_span(),
        );
        response.map_err(|failure| match (fault, failure.status) {
            (Some(fault), _) => InvokeError::RequestBody(fault),
            (None, InvocationStatus::Timeout) => {
                InvokeError::Timeout(format!("the function timed out: {}", failure.message))
            }
            (None, _) => InvokeError::Failed(format!("the function failed: {}", failure.message)),
        })
    }
}
