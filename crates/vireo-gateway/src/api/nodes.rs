//! `/v1/nodes` (admin only): the nodes serving this store, as their heartbeats describe them.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use vireo_core::time::{now_micros, rfc3339};
use vireo_core::{NodeInfo, NodeRegistry, node_liveness};

use crate::error::{ApiError, ErrorBody};

#[derive(Serialize, ToSchema)]
pub struct NodeView {
    pub id: String,
    /// Where the node's HTTP server listens.
    pub address: String,
    /// The Vireo version it runs.
    pub version: String,
    pub started_at: String,
    pub last_heartbeat: String,
    /// Invocations running on it at its last heartbeat.
    pub in_flight: u64,
    /// `ready`, or `draining` while it shuts down.
    pub state: &'static str,
    /// The number no other live node holds, which names what a broker keeps for the node (its
    /// MQTT sessions); null until its first heartbeat is stored.
    pub slot: Option<u32>,
}

impl From<NodeInfo> for NodeView {
    fn from(node: NodeInfo) -> Self {
        Self {
            id: node.id,
            address: node.address,
            version: node.version,
            started_at: rfc3339(node.started_at_us),
            last_heartbeat: rfc3339(node.heartbeat_at_us),
            in_flight: node.in_flight,
            state: if node.draining { "draining" } else { "ready" },
            slot: node.slot,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct NodeList {
    /// Nodes heard from recently, the longest running first.
    pub nodes: Vec<NodeView>,
}

#[utoipa::path(get, path = "/v1/nodes", tag = "nodes",
    responses((status = 200, body = NodeList), (status = 503, body = ErrorBody)))]
pub async fn list(
    State(registry): State<Arc<dyn NodeRegistry>>,
) -> Result<Json<NodeList>, ApiError> {
    let since = now_micros().saturating_sub(node_liveness().live_window_us());
    let nodes = registry.nodes(since).await?;
    Ok(Json(NodeList {
        nodes: nodes.into_iter().map(NodeView::from).collect(),
    }))
}
