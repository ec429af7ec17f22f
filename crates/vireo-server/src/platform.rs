//! The server's implementation of the core seams: `Deployer` (validate, compile, store),
//! `Invoker` (resolve, admit, load, execute, record) and `SecretManager` (seal, store, reload
//! the versions granted a changed secret). The store announces every change on its feed, and
//! [`Platform::apply`] takes in what the feed brings, from this node or another on the store.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use vireo_core::buckets::{Buckets, Verdict};
use vireo_core::invoke::{authorize_invocation, invoke_auth, requested_version};
use vireo_core::jwt::CLAIMS_HEADER;
use vireo_core::spin_http;
use vireo_core::{
    AliasName, AliasTarget, Body, Call, Catalog, Change, ComponentStore, DeployError, Deployed,
    Deployer, Directory, ErrorClass, InvocationStatus, InvokeAuth, InvokeError, Invoker, Name,
    NewVersion, Principal, RouteStore, SecretError, SecretInfo, SecretManager, SecretName,
    SecretOpener, SecretValue, SettingsLimits, StoreError, TraceContext, Unanswered,
    VERSION_HEADER, VersionInfo, VersionSelector, VersionSettings, trace,
};
use vireo_runtime::{Runtime, RuntimeError};
use vireo_store::RecordWriter;

use crate::admission::{Admission, AdmissionSettings, Refused, Ticket};
use crate::jwt::JwtVerifier;
use crate::metering::Meter;
use crate::otlp;
use crate::published::PublishedRoutes;
use crate::routes::{Route, RouteCache};
use crate::secrets::Vault;
use crate::tail::{self, Awaited, Finished, Tail};
use crate::telemetry;

pub struct Platform {
    catalog: Arc<dyn Catalog>,
    components: Arc<dyn ComponentStore>,
    records: RecordWriter,
    runtime: Runtime,
    settings_limits: SettingsLimits,
    vault: Vault,
    admission: Admission,
    /// Namespaces' quotas (and keys), kept in memory.
    directory: Arc<Directory>,
    function_buckets: Buckets<(Name, Name)>,
    routes: RouteCache,
    /// The routes (paths and hosts) that lead to functions.
    published: Arc<PublishedRoutes>,
    jwt: JwtVerifier,
    /// Guest tails still running after their response was sent; shutdown waits for them.
    in_flight: TaskTracker,
}

/// Where a platform keeps what it deploys and what ran.
pub struct Storage {
    pub catalog: Arc<dyn Catalog>,
    pub components: Arc<dyn ComponentStore>,
    pub records: RecordWriter,
    pub http_routes: Arc<dyn RouteStore>,
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
    pub fn new(storage: Storage, runtime: Runtime, limits: Limits, tenants: Tenants) -> Self {
        Self {
            catalog: storage.catalog,
            components: storage.components,
            records: storage.records,
            runtime,
            settings_limits: limits.settings,
            vault: tenants.vault,
            admission: Admission::new(limits.admission),
            directory: tenants.directory,
            function_buckets: Buckets::default(),
            routes: RouteCache::default(),
            published: Arc::new(PublishedRoutes::new(storage.http_routes)),
            jwt: JwtVerifier::new(),
            in_flight: TaskTracker::new(),
        }
    }

    /// The route table the gateway matches requests against.
    pub fn published_routes(&self) -> Arc<vireo_core::LiveRoutes> {
        self.published.live()
    }

    /// What rereads that table; the admin API's route writes go through it.
    pub fn route_publisher(&self) -> Arc<PublishedRoutes> {
        self.published.clone()
    }

    /// Reads the routes to functions (at start; changes keep them current afterwards).
    pub async fn load_published_routes(&self) {
        self.published.reload().await;
    }

    /// Pre-warms every stored version with `min_instances`, so their first requests after a
    /// start are warm too.
    pub async fn prewarm_all(&self) {
        let namespaces = match self.directory.store().list_namespaces().await {
            Ok(namespaces) => namespaces,
            Err(error) => {
                tracing::warn!(%error, "cannot list namespaces to pre-warm");
                return;
            }
        };
        for namespace in namespaces {
            let Ok(functions) = self.catalog.list_functions(&namespace.name).await else {
                continue;
            };
            for function in functions {
                let Ok(versions) = self
                    .catalog
                    .list_versions(&namespace.name, &function.name)
                    .await
                else {
                    continue;
                };
                for version in versions {
                    self.prewarm(&version).await;
                }
            }
        }
    }

    /// Scale to zero: drops idle versions' compiled state; returns what went.
    pub fn evict_idle(&self) -> Vec<(Name, Name, u32)> {
        self.runtime.evict_idle()
    }

    /// Takes no more guest tails and waits for the running ones until `deadline`; false if
    /// some were still running then.
    pub async fn finish_in_flight(&self, deadline: tokio::time::Instant) -> bool {
        self.in_flight.close();
        tokio::time::timeout_at(deadline, self.in_flight.wait())
            .await
            .is_ok()
    }

    /// Invocations running on this node now.
    pub fn running(&self) -> usize {
        self.admission.running()
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
                self.components.component(&version.component_sha256),
                self.vault.open(version),
            )
            .await
    }

    /// Makes the versions of a namespace granted `secret` load again, so their next invocation
    /// sees its current value; pre-warmed ones are loaded again at once.
    async fn reload_granting(&self, namespace: &Name, secret: &SecretName) {
        for (_, function, number) in self.runtime.forget_granting(namespace, secret) {
            self.reload_version(namespace, &function, number).await;
        }
    }

    /// Pre-warms a forgotten version again if it still exists and asks for it.
    async fn reload_version(&self, namespace: &Name, function: &Name, number: u32) {
        let selector = VersionSelector::Number(number);
        if let Ok(version) = self
            .catalog
            .resolve_version(namespace, function, &selector)
            .await
        {
            self.prewarm(&version).await;
        }
    }

    /// Applies a change made through this node at once, so its next request sees it; the
    /// store's feed brings it back too, and applying a change twice is harmless.
    async fn changed(&self, change: Change) {
        self.apply(&change).await;
    }

    /// Brings this node's copies up to date with a stored change.
    pub async fn apply(&self, change: &Change) {
        match change {
            Change::Routes {
                namespace,
                function,
            } => {
                self.routes.invalidate(namespace, function);
                self.forget_if_deleted(namespace, function).await;
            }
            Change::Tenants => self.reload_directory().await,
            Change::HttpRoutes => self.published.reload().await,
            Change::Secret { namespace, name } => self.reload_granting(namespace, name).await,
        }
    }

    /// Drops what this node keeps for a function that no longer exists (deleted here or on
    /// another node): its loaded versions, admission state, rate-limit bucket and metric series.
    async fn forget_if_deleted(&self, namespace: &Name, function: &Name) {
        let gone = matches!(
            self.catalog.get_function(namespace, function).await,
            Err(StoreError::FunctionNotFound { .. } | StoreError::NamespaceNotFound(_))
        );
        if gone {
            self.runtime.forget_function(namespace, function);
            self.admission.forget_function(namespace, function);
            self.function_buckets
                .retain(|(ns, f)| !(ns == namespace && f == function));
            telemetry::function_deleted(namespace, function);
            // Its routes went with it.
            self.published.reload().await;
        }
    }

    /// After changes went unheard: every copy may be stale, so all are read again.
    pub async fn apply_everything(&self) {
        self.routes.clear();
        self.published.reload().await;
        self.reload_directory().await;
        for (namespace, function, number) in self.runtime.forget_secret_holders() {
            self.reload_version(&namespace, &function, number).await;
        }
    }

    async fn reload_directory(&self) {
        if let Err(error) = self.directory.reload().await {
            tracing::warn!(%error, "could not reload namespaces and keys after a change");
        }
    }

    async fn latest(
        &self,
        namespace: &Name,
        function: &Name,
    ) -> Result<Option<VersionInfo>, StoreError> {
        match self
            .catalog
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
        // What the component imports first: settings are moot for a component Vireo cannot run.
        let unimplemented_imports = self
            .runtime
            .check_imports(&component, &settings)
            .map_err(|rejection| DeployError::Rejected(rejection.to_string()))?;
        settings
            .validate(&self.settings_limits)
            .map_err(|e| DeployError::InvalidSettings(e.to_string()))?;
        // What the settings ask of the capabilities (allowed_outbound_hosts) is theirs to check.
        self.runtime
            .validate_settings(&settings)
            .map_err(|e| DeployError::InvalidSettings(e.to_string()))?;
        if !self.catalog.namespace_exists(namespace).await? {
            return Err(StoreError::NamespaceNotFound(namespace.clone()).into());
        }
        let missing = self
            .vault
            .missing(namespace, &settings.granted_secrets())
            .await?;
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(SecretName::as_str).collect();
            return Err(DeployError::InvalidSettings(format!(
                "granted secrets that do not exist in namespace {namespace}: {}; set each with `vireo secrets set {namespace}/NAME`",
                names.join(", ")
            )));
        }
        let sha = vireo_core::component_sha256(&component);
        let compile_time = self
            .runtime
            .prepare(&sha, component.clone(), &settings)
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
        self.components
            .put_component(&component)
            .await
            .map_err(|e| DeployError::Internal(format!("storing the component: {e}")))?;
        if let Some(latest) = self.latest(namespace, function).await?
            && latest.component_sha256 == sha
            && latest.settings == settings
        {
            let warnings = self.reuse_warnings(&latest);
            return Ok(Deployed {
                version: latest,
                created: false,
                unimplemented_imports,
                warnings,
            });
        }
        let new = NewVersion {
            component_sha256: sha,
            component_size: component.len() as u64,
            settings,
        };
        let version = self
            .catalog
            .add_version(namespace, function, new, vireo_core::time::now_micros())
            .await?;
        self.changed(routes_of(namespace, function)).await;
        self.prewarm(&version).await;
        tracing::info!(namespace = %namespace, function = %function, version = version.version, "deployed");
        Ok(Deployed {
            warnings: self.reuse_warnings(&version),
            version,
            created: true,
            unimplemented_imports,
        })
    }

    async fn reconfigure(
        &self,
        from: &VersionInfo,
        settings: VersionSettings,
    ) -> Result<Deployed, DeployError> {
        let component = self
            .components
            .component(&from.component_sha256)
            .await
            .map_err(|e| {
                DeployError::Internal(format!(
                    "reading the component of {}/{} version {}: {e}",
                    from.namespace, from.function, from.version
                ))
            })?;
        self.deploy(&from.namespace, &from.function, component.into(), settings)
            .await
    }

    async fn set_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
        target: &AliasTarget,
    ) -> Result<(), StoreError> {
        self.catalog
            .set_alias(namespace, function, alias, target)
            .await?;
        self.changed(routes_of(namespace, function)).await;
        Ok(())
    }

    async fn delete_alias(
        &self,
        namespace: &Name,
        function: &Name,
        alias: &AliasName,
    ) -> Result<(), StoreError> {
        self.catalog
            .delete_alias(namespace, function, alias)
            .await?;
        self.changed(routes_of(namespace, function)).await;
        Ok(())
    }

    fn warm_versions(&self, namespace: &Name, function: &Name) -> Vec<u32> {
        self.runtime.warm_versions(namespace, function)
    }

    fn reuse_fallback_versions(&self, namespace: &Name, function: &Name) -> Vec<u32> {
        self.runtime.reuse_fallback_versions(namespace, function)
    }

    async fn delete(&self, namespace: &Name, function: &Name) -> Result<(), StoreError> {
        self.catalog.delete_function(namespace, function).await?;
        self.changed(routes_of(namespace, function)).await;
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
    ) -> Result<bool, SecretError> {
        let created = self.vault.put(namespace, name, &value).await?;
        self.changed(secret_of(namespace, name)).await;
        tracing::info!(%namespace, secret = %name, created, "secret set");
        Ok(created)
    }

    async fn list_secrets(&self, namespace: &Name) -> Result<Vec<SecretInfo>, StoreError> {
        self.vault.list(namespace).await
    }

    async fn delete_secret(&self, namespace: &Name, name: &SecretName) -> Result<(), StoreError> {
        self.vault.delete(namespace, name).await?;
        self.changed(secret_of(namespace, name)).await;
        tracing::info!(%namespace, secret = %name, "secret deleted");
        Ok(())
    }
}

#[async_trait::async_trait]
impl SecretOpener for Platform {
    async fn open_secret(
        &self,
        namespace: &Name,
        name: &SecretName,
    ) -> Result<SecretValue, StoreError> {
        self.vault.open_one(namespace, name).await
    }
}

#[async_trait::async_trait]
impl Invoker for Platform {
    async fn invoke(&self, mut call: Call) -> Result<http::Response<Body>, Unanswered> {
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

    async fn check_credentials(
        &self,
        auth: &InvokeAuth,
        principal: &Principal,
        headers: &mut http::HeaderMap,
    ) -> Result<(), InvokeError> {
        if *principal == Principal::System {
            return Ok(());
        }
        // Claims come from Vireo's verification only, never from the caller.
        headers.remove(CLAIMS_HEADER);
        match auth {
            InvokeAuth::Jwt(auth) => self.jwt.admit(auth, headers).await,
            InvokeAuth::Public | InvokeAuth::Key => Ok(()),
        }
    }

    async fn resolve(
        &self,
        namespace: &Name,
        function: &Name,
        selector: &VersionSelector,
    ) -> Result<VersionInfo, StoreError> {
        let route = self
            .routes
            .resolve(self.catalog.as_ref(), namespace, function, selector)
            .await?;
        Ok(route.primary().clone())
    }
}

fn routes_of(namespace: &Name, function: &Name) -> Change {
    Change::Routes {
        namespace: namespace.clone(),
        function: function.clone(),
    }
}

fn secret_of(namespace: &Name, name: &SecretName) -> Change {
    Change::Secret {
        namespace: namespace.clone(),
        name: name.clone(),
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
    /// A deploy asking for `instance_reuse` of a component this server has seen fail to serve
    /// a second request on one instance: reuse will fall back to fresh instances.
    fn reuse_warnings(&self, version: &VersionInfo) -> Vec<String> {
        if version.settings.instance_reuse > 1
            && self.runtime.serves_once(&version.component_sha256)
        {
            vec![format!(
                "instance_reuse {} will not take effect: this component returned without answering when an instance served it a second time (componentize-js components do), so each request gets a fresh instance",
                version.settings.instance_reuse
            )]
        } else {
            Vec::new()
        }
    }

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

    /// One invocation, step by step: resolve, pick a version of a split, answer a preflight,
    /// authorize, then run it on that version.
    async fn run(&self, call: Call) -> Result<http::Response<Body>, Unanswered> {
        let route = self
            .resolve_call(&call.namespace, &call.function, &call.selector)
            .await?;
        let mut call = call;
        let headers = call.request.headers();
        let mut version = route.version(route.target.choose(headers));
        // Browsers send preflights without credentials, so they are answered before auth.
        let cors = version.settings.cors.clone();
        if let Some(answer) = cors
            .as_ref()
            .and_then(|cors| cors.preflight(call.request.method(), headers))
        {
            return Ok(preflight_answer(answer));
        }
        let origin = headers.get(http::header::ORIGIN).cloned();
        authorize_invocation(
            &call.principal,
            version,
            invoke_auth(call.route_auth.as_ref(), version),
        )?;
        // Asked for after the caller proved it may call the function at all, so a key of
        // another namespace learns no more than before.
        if let Some(requested) = requested_version(
            &call.principal,
            &call.namespace,
            &call.function,
            headers,
            &route.target,
        )? {
            version = route.version(requested);
            authorize_invocation(
                &call.principal,
                version,
                invoke_auth(call.route_auth.as_ref(), version),
            )?;
        }
        let version = version.clone();
        self.check_credentials(
            invoke_auth(call.route_auth.as_ref(), &version),
            &call.principal,
            call.request.headers_mut(),
        )
        .await?;
        if version.settings.spin_http {
            spin_http::shape(&mut call.request, call.arrival.as_ref());
        }
        // From here on the caller may call the version, so every answer names it, refusals
        // and failures too, and errors can be compared per version of a split.
        let number = version.version;
        let mut response = self
            .run_version(call, version)
            .await
            .map_err(|error| Unanswered {
                error,
                version: Some(number),
            })?;
        if let Some(cors) = &cors {
            cors.decorate(origin.as_ref(), response.headers_mut());
        }
        response
            .headers_mut()
            .insert(VERSION_HEADER, http::HeaderValue::from(number));
        Ok(response)
    }

    /// The authorized call on its chosen version: take a rate token, admit, load, execute.
    async fn run_version(
        &self,
        call: Call,
        version: VersionInfo,
    ) -> Result<http::Response<Body>, InvokeError> {
        self.take_rate_token(&version)?;
        let quota = self.directory.quotas(&version.namespace).max_concurrency;
        let ticket = self
            .admission
            .admit(&version, quota)
            .await
            .map_err(|refused| refusal(&version, refused))?;
        let loaded = self.load(&version).await.map_err(|e| {
            InvokeError::Unavailable(format!(
                "cannot load {}/{} version {}: {e}",
                version.namespace, version.function, version.version
            ))
        })?;
        self.execute(call, version, ticket, &loaded).await
    }

    /// What a call's selector names, through the route cache.
    async fn resolve_call(
        &self,
        namespace: &Name,
        function: &Name,
        selector: &VersionSelector,
    ) -> Result<Arc<Route>, InvokeError> {
        self.routes
            .resolve(self.catalog.as_ref(), namespace, function, selector)
            .await
            .map_err(|error| match error.class() {
                ErrorClass::NotFound => InvokeError::NotFound(error.to_string()),
                // Resolving writes nothing, so nothing else is expected; none of it means the
                // function is missing.
                ErrorClass::Conflict
                | ErrorClass::QuotaExceeded
                | ErrorClass::Unavailable { .. } => InvokeError::Unavailable(error.to_string()),
            })
    }

    /// Runs the admitted call on the loaded version and answers once its response head is
    /// ready; the rest (body, record, ticket) finishes in a tail that shutdown waits for.
    async fn execute(
        &self,
        call: Call,
        version: VersionInfo,
        ticket: Ticket,
        loaded: &vireo_runtime::Loaded,
    ) -> Result<http::Response<Body>, InvokeError> {
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
            self.runtime.execute(loaded, request),
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
        let response = execution
            .response
            .map(|response| tail.finished.meter.response(response, sent));
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

/// The answer to a CORS preflight: its head, no body.
fn preflight_answer(answer: http::response::Parts) -> http::Response<Body> {
    let body = http_body_util::Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync();
    http::Response::from_parts(answer, body)
}

/// What a caller is told when admission refuses: busy (retry soon) or overloaded.
fn refusal(version: &VersionInfo, refused: Refused) -> InvokeError {
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
            message: format!("{target} already has {queued} invocations waiting; retry shortly"),
            retry_after_secs: 1,
        },
    }
}
