//! The route table the gateway matches requests against: read whole from the store at start
//! and again whenever the change feed says routes, host claims or functions changed, so a
//! request costs a lookup in memory, never a query.

use std::sync::Arc;

use vireo_core::{LiveRoutes, RouteStore, RouteTable};

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
