//! Remembers which version `function[@selector]` resolves to, so the invocation path does not
//! ask the store on every request. Changes invalidate it as the change feed brings them; the
//! short time-to-live bounds staleness for changes no feed reports (a restored backup).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use vireo_core::{Catalog, Name, StoreError, VersionInfo, VersionSelector};

const TIME_TO_LIVE: Duration = Duration::from_secs(1);

type RouteKey = (Name, Name, String);

#[derive(Default)]
pub struct RouteCache {
    routes: Mutex<HashMap<RouteKey, (VersionInfo, Instant)>>,
}

impl RouteCache {
    pub async fn resolve(
        &self,
        catalog: &dyn Catalog,
        namespace: &Name,
        function: &Name,
        selector: &VersionSelector,
    ) -> Result<VersionInfo, StoreError> {
        let key = (namespace.clone(), function.clone(), selector.to_string());
        if let Some((version, at)) = self.lock().get(&key)
            && at.elapsed() < TIME_TO_LIVE
        {
            return Ok(version.clone());
        }
        let version = catalog
            .resolve_version(namespace, function, selector)
            .await?;
        self.lock().insert(key, (version.clone(), Instant::now()));
        Ok(version)
    }

    /// Forgets every route of a function (after a deploy, an alias change or a delete).
    pub fn invalidate(&self, namespace: &Name, function: &Name) {
        self.lock()
            .retain(|(ns, f, _), _| !(ns == namespace && f == function));
    }

    /// Forgets every route (after changes went unheard).
    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RouteKey, (VersionInfo, Instant)>> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }
}
