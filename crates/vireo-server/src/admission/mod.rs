//! Admission control: an invocation needs a slot of its version's `max_concurrency` (if set),
//! one of its namespace's `max_concurrency` quota (if set) and one of the server-wide limit, shared fairly between functions. It waits for them in a
//! bounded per-function queue for at most `queue_timeout`, then is refused with 429; when the
//! queue is full it is refused at once with 503.

mod fair;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use vireo_core::{Name, VersionInfo};

type FunctionKey = (Name, Name);

/// Held for the whole invocation, guest tail included.
pub struct Ticket {
    _version: Option<OwnedSemaphorePermit>,
    _namespace: Option<OwnedSemaphorePermit>,
    _server: fair::Slot<FunctionKey>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Waited `queue_timeout` without getting a slot.
    TimedOut(Duration),
    /// Waited `queue_timeout` for a slot of the namespace's `max_concurrency` quota.
    NamespaceAtQuota { limit: u32, waited: Duration },
    /// `max_queued` invocations of this function are already waiting.
    QueueFull(usize),
}

#[derive(Debug, Clone, Copy)]
pub struct AdmissionSettings {
    pub max_concurrent: usize,
    pub max_queued_per_function: usize,
    pub queue_timeout: Duration,
}

pub struct Admission {
    settings: AdmissionSettings,
    server: Arc<fair::FairGate<FunctionKey>>,
    versions: Mutex<HashMap<(Name, Name, u32), Arc<Semaphore>>>,
    /// Each namespace's quota with its semaphore; a changed quota gets a fresh semaphore.
    namespaces: Mutex<HashMap<Name, (u32, Arc<Semaphore>)>>,
    queued: Arc<Mutex<HashMap<FunctionKey, usize>>>,
}

impl Admission {
    pub fn new(settings: AdmissionSettings) -> Self {
        Self {
            settings,
            server: fair::FairGate::new(settings.max_concurrent),
            versions: Mutex::new(HashMap::new()),
            namespaces: Mutex::new(HashMap::new()),
            queued: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// `namespace_limit` is the namespace's `max_concurrency` quota, if it has one.
    pub async fn admit(
        &self,
        version: &VersionInfo,
        namespace_limit: Option<u32>,
    ) -> Result<Ticket, Refused> {
        let function = (version.namespace.clone(), version.function.clone());
        let _place = self.join_queue(&function)?;
        let deadline = Instant::now() + self.settings.queue_timeout;
        let timed_out = |_| Refused::TimedOut(self.settings.queue_timeout);
        let version_permit = match self.version_limit(version) {
            Some(limit) => Some(
                tokio::time::timeout_at(deadline, limit.acquire_owned())
                    .await
                    .map_err(timed_out)?
                    .expect("version semaphores are never closed"),
            ),
            None => None,
        };
        let namespace_permit = match namespace_limit {
            Some(limit) => Some(
                tokio::time::timeout_at(
                    deadline,
                    self.namespace_limit(&version.namespace, limit)
                        .acquire_owned(),
                )
                .await
                .map_err(|_| Refused::NamespaceAtQuota {
                    limit,
                    waited: self.settings.queue_timeout,
                })?
                .expect("namespace semaphores are never closed"),
            ),
            None => None,
        };
        let server = tokio::time::timeout_at(deadline, self.server.acquire(&function))
            .await
            .map_err(timed_out)?;
        Ok(Ticket {
            _version: version_permit,
            _namespace: namespace_permit,
            _server: server,
        })
    }

    /// Invocations holding a slot now (running, guest tails included).
    pub fn running(&self) -> usize {
        self.server.in_use()
    }

    pub fn forget_function(&self, namespace: &Name, function: &Name) {
        let mut versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        versions.retain(|(ns, f, _), _| !(ns == namespace && f == function));
    }

    fn version_limit(&self, version: &VersionInfo) -> Option<Arc<Semaphore>> {
        let max = version.settings.max_concurrency?;
        let mut versions = self.versions.lock().unwrap_or_else(|p| p.into_inner());
        let key = (
            version.namespace.clone(),
            version.function.clone(),
            version.version,
        );
        Some(
            versions
                .entry(key)
                .or_insert_with(|| Arc::new(Semaphore::new(max as usize)))
                .clone(),
        )
    }

    fn namespace_limit(&self, namespace: &Name, limit: u32) -> Arc<Semaphore> {
        let mut namespaces = self.namespaces.lock().unwrap_or_else(|p| p.into_inner());
        match namespaces.get(namespace) {
            Some((configured, semaphore)) if *configured == limit => semaphore.clone(),
            _ => {
                let semaphore = Arc::new(Semaphore::new(limit as usize));
                namespaces.insert(namespace.clone(), (limit, semaphore.clone()));
                semaphore
            }
        }
    }

    fn join_queue(&self, function: &FunctionKey) -> Result<QueuePlace, Refused> {
        let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        let count = queued.entry(function.clone()).or_default();
        if *count >= self.settings.max_queued_per_function {
            return Err(Refused::QueueFull(*count));
        }
        *count += 1;
        Ok(QueuePlace {
            queued: self.queued.clone(),
            function: function.clone(),
        })
    }
}

/// Counts an invocation as waiting for admission until dropped.
struct QueuePlace {
    queued: Arc<Mutex<HashMap<FunctionKey, usize>>>,
    function: FunctionKey,
}

impl Drop for QueuePlace {
    fn drop(&mut self) {
        let mut queued = self.queued.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = queued.get_mut(&self.function) {
            *count -= 1;
            if *count == 0 {
                queued.remove(&self.function);
            }
        }
    }
}
