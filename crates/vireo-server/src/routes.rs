//! Remembers what `function[@selector]` resolves to — one version, or the versions of a split
//! alias with their weights — so the invocation path does not ask the store on every request;
//! picking a version of a split is then arithmetic on what is cached. Changes invalidate it as
//! the change feed brings them; the short time-to-live bounds staleness for changes no feed
//! reports (a restored backup).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vireo_core::{AliasTarget, Catalog, Name, StoreError, VersionInfo, VersionSelector};

const TIME_TO_LIVE: Duration = Duration::from_secs(1);

type RouteKey = (Name, Name, String);

/// The versions a selector reaches and how traffic is split between them.
#[derive(Debug)]
pub struct Route {
    pub target: AliasTarget,
    /// One per entry of `target.versions`, in the same order.
    versions: Vec<VersionInfo>,
}

impl Route {
    /// The version `number` of the route; the primary one if `number` is not among them.
    pub fn version(&self, number: u32) -> &VersionInfo {
        self.versions
            .iter()
            .find(|version| version.version == number)
            .unwrap_or_else(|| self.primary())
    }

    /// The version that stands for the route where one must (the one with the largest share).
    pub fn primary(&self) -> &VersionInfo {
        let primary = self.target.primary();
        self.versions
            .iter()
            .find(|version| version.version == primary)
            .unwrap_or(&self.versions[0])
    }
}

#[derive(Default)]
pub struct RouteCache {
    routes: Mutex<HashMap<RouteKey, (Arc<Route>, Instant)>>,
}

impl RouteCache {
    pub async fn resolve(
        &self,
        catalog: &dyn Catalog,
        namespace: &Name,
        function: &Name,
        selector: &VersionSelector,
    ) -> Result<Arc<Route>, StoreError> {
        let key = (namespace.clone(), function.clone(), selector.to_string());
        if let Some((route, at)) = self.lock().get(&key)
            && at.elapsed() < TIME_TO_LIVE
        {
            return Ok(route.clone());
        }
        let route = Arc::new(compile(catalog, namespace, function, selector).await?);
        self.lock().insert(key, (route.clone(), Instant::now()));
        Ok(route)
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RouteKey, (Arc<Route>, Instant)>> {
        self.routes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Reads what a selector names and every version it reaches.
async fn compile(
    catalog: &dyn Catalog,
    namespace: &Name,
    function: &Name,
    selector: &VersionSelector,
) -> Result<Route, StoreError> {
    let target = match selector {
        VersionSelector::Number(number) => AliasTarget::single(*number),
        VersionSelector::Alias(alias) => catalog.get_alias(namespace, function, alias).await?,
    };
    let mut versions = Vec::with_capacity(target.versions.len());
    for arm in &target.versions {
        let number = VersionSelector::Number(arm.version);
        versions.push(
            catalog
                .resolve_version(namespace, function, &number)
                .await?,
        );
    }
    Ok(Route { target, versions })
}
