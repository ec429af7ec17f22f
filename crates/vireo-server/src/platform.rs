//! The server's implementation of the core seams: `Deployer` (validate, compile, store) and
//! `Invoker` (resolve, admit, load, execute, record).

use std::sync::Arc;

use bytes::Bytes;
use tokio_util::task::TaskTracker;
use vireo_core::{
    AliasName, Answer, Call, DeployError, Deployed, Deployer, InvocationId, InvocationRecord,
    InvocationStatus, InvokeError, InvokeErrorKind, Invoker, LogLine, Name, NewVersion,
    SettingsLimits, Store, StoreError, VersionInfo, VersionSelector, VersionSettings,
};
use vireo_runtime::{Completion, Runtime, RuntimeError};
use vireo_store::{BlobStore, RecordWriter};

use crate::admission::Admission;

pub struct Platform {
    pub store: Arc<dyn Store>,
    pub blobs: BlobStore,
    pub runtime: Runtime,
    pub records: RecordWriter,
    pub settings_limits: SettingsLimits,
    admission: Admission,
    /// Guest tails still running after their response was sent; shutdown waits for them.
    pub in_flight: TaskTracker,
}

impl Platform {
    pub fn new(
        store: Arc<dyn Store>,
        blobs: BlobStore,
        runtime: Runtime,
        records: RecordWriter,
        settings_limits: SettingsLimits,
    ) -> Self {
        Self {
            store,
            blobs,
            runtime,
            records,
            settings_limits,
            admission: Admission::default(),
            in_flight: TaskTracker::new(),
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

/// Hands a finished invocation to the batching record writer.
fn record(
    records: &RecordWriter,
    version: &VersionInfo,
    id: InvocationId,
    started_at_us: i64,
    cold: bool,
    http_status: Option<u16>,
    done: Completion,
) {
    let logs = done
        .logs
        .into_iter()
        .map(|line| LogLine {
            seq: 0,
            invocation_id: id.clone(),
            namespace: version.namespace.clone(),
            function: version.function.clone(),
            version: version.version,
            at_us: line.at_us,
            stream: line.stream,
            line: line.line,
        })
        .collect();
    let record = InvocationRecord {
        id,
        namespace: version.namespace.clone(),
        function: version.function.clone(),
        version: version.version,
        trigger: vireo_core::Trigger::Http,
        started_at_us,
        duration_us: u64::try_from(done.duration.as_micros()).unwrap_or(u64::MAX),
        status: done.status,
        http_status,
        cold,
        error: done.error,
    };
    records.submit(record, logs);
}

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
        if !self.store.namespace_exists(namespace).await? {
            return Err(StoreError::NamespaceNotFound(namespace.clone()).into());
        }
        let sha = BlobStore::sha256_hex(&component);
        self.runtime
            .prepare(&sha, component.clone())
            .await
            .map_err(|error| match error {
                RuntimeError::Rejected(rejection) => DeployError::Rejected(rejection.to_string()),
                internal @ RuntimeError::Internal { .. } => {
                    DeployError::Internal(internal.to_string())
                }
            })?;
        if let Some(latest) = self.latest(namespace, function).await?
            && latest.component_sha256 == sha
            && latest.settings == settings
        {
            return Ok(Deployed {
                version: latest,
                created: false,
            });
        }
        // The bytes are on disk before any version refers to them.
        self.blobs
            .put(&component)
            .await
            .map_err(|e| DeployError::Internal(format!("storing the component: {e}")))?;
        let new = NewVersion {
            component_sha256: sha,
            component_size: component.len() as u64,
            settings,
        };
        let version = self.store.add_version(namespace, function, new).await?;
        tracing::info!(namespace = %namespace, function = %function, version = version.version, "deployed");
        Ok(Deployed {
            version,
            created: true,
        })
    }

    async fn delete(&self, namespace: &Name, function: &Name) -> Result<(), StoreError> {
        self.store.delete_function(namespace, function).await?;
        self.runtime.forget_function(namespace, function);
        self.admission.forget_function(namespace, function);
        Ok(())
    }
}

#[async_trait::async_trait]
impl Invoker for Platform {
    async fn invoke(&self, call: Call) -> Result<Answer, InvokeError> {
        let version = self
            .store
            .resolve_version(&call.namespace, &call.function, &call.selector)
            .await
            .map_err(|error| {
                let kind = match error {
                    StoreError::Backend(_) => InvokeErrorKind::Unavailable(error.to_string()),
                    not_found => InvokeErrorKind::NotFound(not_found.to_string()),
                };
                InvokeError::new(None, kind)
            })?;
        let Some(slot) = self.admission.try_admit(&version) else {
            let message = format!(
                "{}/{} version {} is at its limit of {} concurrent invocations; retry shortly",
                version.namespace,
                version.function,
                version.version,
                version.settings.max_concurrency.unwrap_or_default()
            );
            return Err(InvokeError::new(
                None,
                InvokeErrorKind::Busy {
                    message,
                    retry_after_secs: 1,
                },
            ));
        };
        let loaded = self
            .runtime
            .load(&version, self.blobs.get(&version.component_sha256))
            .await
            .map_err(|e| {
                InvokeError::new(
                    None,
                    InvokeErrorKind::Unavailable(format!(
                        "cannot load {}/{} version {}: {e}",
                        version.namespace, version.function, version.version
                    )),
                )
            })?;

        let id = InvocationId::generate();
        let started_at_us = vireo_core::time::now_micros();
        let span = tracing::info_span!("invocation", function = %version.function, version = version.version, invocation_id = %id);
        let _entered = span.enter();
        let execution = self
            .runtime
            .execute(&loaded, &version.settings, call.request)
            .await;
        let http_status = match &execution.response {
            Ok(response) => Some(response.status().as_u16()),
            Err(failure) if failure.status == InvocationStatus::Timeout => Some(504),
            Err(_) => Some(500),
        };
        let completion = execution.completion;
        let tail_version = version.clone();
        let tail_id = id.clone();
        let cold = loaded.cold;
        let records = self.records.clone();
        self.in_flight.spawn(async move {
            let done = completion.await;
            drop(slot);
            record(
                &records,
                &tail_version,
                tail_id,
                started_at_us,
                cold,
                http_status,
                done,
            );
        });
        match execution.response {
            Ok(response) => Ok(Answer {
                invocation_id: id,
                response,
            }),
            Err(failure) => {
                let kind = match failure.status {
                    InvocationStatus::Timeout => InvokeErrorKind::Timeout(format!(
                        "the function timed out: {}",
                        failure.message
                    )),
                    _ => {
                        InvokeErrorKind::Failed(format!("the function failed: {}", failure.message))
                    }
                };
                Err(InvokeError::new(Some(id), kind))
            }
        }
    }
}
