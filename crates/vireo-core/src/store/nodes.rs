//! The nodes sharing a store: each records itself with a heartbeat, so an operator (and a load
//! balancer's health checks) can see which nodes are alive, what they run and how busy they are.

use super::StoreError;

/// One node as its last heartbeat described it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct NodeInfo {
    /// Chosen by the node at start; a restarted node is a new node.
    pub id: String,
    /// Where the node's HTTP server listens.
    pub address: String,
    /// The Vireo version the node runs.
    pub version: String,
    pub started_at_us: i64,
    pub heartbeat_at_us: i64,
    /// Invocations running on the node at its last heartbeat.
    pub in_flight: u64,
    /// The node is shutting down: it finishes what it runs and takes nothing new.
    pub draining: bool,
    /// The node's slot (see [`NodeRegistry::heartbeat`]), once a heartbeat gave it one. What
    /// a heartbeat is given here is ignored: the store hands slots out.
    pub slot: Option<u32>,
}

#[async_trait::async_trait]
pub trait NodeRegistry: Send + Sync + 'static {
    /// Records `node` as it is now (the first heartbeat adds it), forgets nodes whose last
    /// heartbeat is older than `forget_before_us` (they stopped without leaving), and returns
    /// the node's slot.
    ///
    /// A slot is a small number no other live node (one that beat at or after `bounds.live_since_us`)
    /// holds: the lowest free one at the node's first beat, kept while it stays live. A node
    /// that went silent loses its slot to the next node that needs one, so a restarted cluster
    /// reuses the same numbers; what a broker keeps per consumer (an MQTT session) is found
    /// again by the node that takes the slot over.
    async fn heartbeat(&self, node: &NodeInfo, bounds: &HeartbeatBounds)
    -> Result<u32, StoreError>;

    /// The nodes whose last heartbeat is at or after `since_us`, the longest running first.
    async fn nodes(&self, since_us: i64) -> Result<Vec<NodeInfo>, StoreError>;

    /// Removes the node `id` (it stopped cleanly); removing an unknown node is a no-op.
    async fn leave(&self, id: &str) -> Result<(), StoreError>;
}

/// Which other nodes a heartbeat counts as live, and which it forgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatBounds {
    /// A node whose last beat is older than this has lost its slot to whoever needs one.
    pub live_since_us: i64,
    /// A node whose last beat is older than this is forgotten.
    pub forget_before_us: i64,
    /// The node this one restarts (it ran from the same data directory): dead whatever its
    /// last beat, so its slot is this node's at once.
    pub predecessor: Option<String>,
}

/// How often a node beats, and for how long silence still counts as alive.
#[derive(Debug, Clone, Copy)]
pub struct NodeLiveness {
    pub heartbeat: std::time::Duration,
    /// Heartbeats a node may miss (a slow database, a pause) before it is not listed.
    pub missed_beats: u32,
    /// A node silent this long is forgotten.
    pub forget_after: std::time::Duration,
}

impl NodeLiveness {
    pub fn live_window_us(&self) -> i64 {
        i64::try_from((self.heartbeat * (self.missed_beats + 1)).as_micros()).unwrap_or(i64::MAX)
    }

    /// The bounds of a heartbeat made at `now_us`.
    pub fn bounds(&self, now_us: i64) -> HeartbeatBounds {
        let forget_after = i64::try_from(self.forget_after.as_micros()).unwrap_or(i64::MAX);
        HeartbeatBounds {
            live_since_us: now_us.saturating_sub(self.live_window_us()),
            forget_before_us: now_us.saturating_sub(forget_after),
            predecessor: None,
        }
    }
}

/// The one rule every node and every listing uses.
pub fn node_liveness() -> NodeLiveness {
    NodeLiveness {
        heartbeat: std::time::Duration::from_secs(2),
        missed_beats: 2,
        forget_after: std::time::Duration::from_secs(3600),
    }
}
