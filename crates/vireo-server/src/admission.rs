//! Per-version concurrency limits: an invocation that would exceed `max_concurrency` is turned
//! away at once with 429 rather than queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vireo_core::{Name, VersionInfo};

#[derive(Default)]
pub struct Admission {
    limits: Mutex<HashMap<(Name, Name, u32), Arc<Semaphore>>>,
}

/// Held for the whole invocation, guest tail included; `None` when the version is unlimited.
pub type Slot = Option<OwnedSemaphorePermit>;

impl Admission {
    /// A slot for one invocation, or `None` if the version is at its limit.
    pub fn try_admit(&self, version: &VersionInfo) -> Option<Slot> {
        let Some(max) = version.settings.max_concurrency else {
            return Some(None);
        };
        let semaphore = {
            let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
            let key = (
                version.namespace.clone(),
                version.function.clone(),
                version.version,
            );
            limits
                .entry(key)
                .or_insert_with(|| Arc::new(Semaphore::new(max as usize)))
                .clone()
        };
        semaphore.try_acquire_owned().ok().map(Some)
    }

    pub fn forget_function(&self, namespace: &Name, function: &Name) {
        let mut limits = self.limits.lock().unwrap_or_else(|p| p.into_inner());
        limits.retain(|(ns, f, _), _| !(ns == namespace && f == function));
    }
}
