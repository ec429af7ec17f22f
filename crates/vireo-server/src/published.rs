//! The route table the gateway matches requests against: read whole from the store at start
//! and again whenever the change feed says routes, host claims or functions changed, so a
//! request costs a lookup in memory, never a query.

use std::sync::Arc;

use vireo_core::{
    HostClaim, HostPattern, HttpRoute, LiveRoutes, Name, RoutePattern, RouteStore, RouteTable,
    StoreError,
};

pub struct PublishedRoutes {
    store: Arc<dyn RouteStore>,
    live: Arc<LiveRoutes>,
}

impl PublishedRoutes {
    pub fn new(store: Arc<dyn RouteStore>) -> Self {
        Self {
            store,
            live: Arc::default(),
        }
    }

    /// What the gateway reads.
    pub fn live(&self) -> Arc<LiveRoutes> {
        self.live.clone()
    }

    /// Reads every route again; on failure the previous table stays (and the next change, or
    /// the next missed-changes sweep, tries again).
    pub async fn reload(&self) {
        match self.store.list_routes(None).await {
            Ok(routes) => self.live.replace(RouteTable::new(routes)),
            Err(error) => tracing::warn!(%error, "could not read the routes after a change"),
        }
    }
}

/// The route store the admin API writes through: after each change this node reads the routes
/// again before it answers, so a route it accepted serves its very next request (the change
/// feed brings the other nodes, and this one too, up to date shortly after).
pub struct RereadingRoutes {
    pub inner: Arc<dyn RouteStore>,
    pub published: Arc<PublishedRoutes>,
}

#[async_trait::async_trait]
impl RouteStore for RereadingRoutes {
    async fn add_route(&self, route: &HttpRoute) -> Result<(), StoreError> {
        self.inner.add_route(route).await?;
        self.published.reload().await;
        Ok(())
    }

    async fn list_routes(&self, namespace: Option<&Name>) -> Result<Vec<HttpRoute>, StoreError> {
        self.inner.list_routes(namespace).await
    }

    async fn delete_route(
        &self,
        namespace: &Name,
        pattern: &RoutePattern,
    ) -> Result<(), StoreError> {
        self.inner.delete_route(namespace, pattern).await?;
        self.published.reload().await;
        Ok(())
    }

    async fn claim_host(
        &self,
        host: &HostPattern,
        namespace: &Name,
        at_us: i64,
    ) -> Result<(), StoreError> {
        self.inner.claim_host(host, namespace, at_us).await?;
        self.published.reload().await;
        Ok(())
    }

    async fn list_host_claims(&self) -> Result<Vec<HostClaim>, StoreError> {
        self.inner.list_host_claims().await
    }

    async fn release_host(&self, host: &HostPattern) -> Result<(), StoreError> {
        self.inner.release_host(host).await?;
        self.published.reload().await;
        Ok(())
    }
}
