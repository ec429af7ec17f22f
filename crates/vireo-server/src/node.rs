//! This node in the store's node registry: a heartbeat every period says it is alive, what it
//! runs and how busy it is, and tells `/readyz` whether the store answers; its answer is the
//! node's slot (see [`NodeRegistry::heartbeat`]). At shutdown it says it is draining, and once
//! stopped it leaves.

use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use vireo_core::backoff::Retry;
use vireo_core::time::now_micros;
use vireo_core::{HeartbeatBounds, NodeInfo, NodeRegistry, node_liveness};

use crate::platform::Platform;

/// Whether the store answered the last heartbeat; `Err` says why not.
pub type StoreHealth = watch::Receiver<Result<(), String>>;
/// This node's slot, once a heartbeat has given it one.
pub type NodeSlot = watch::Receiver<Option<u32>>;

/// The heartbeat loop of this node.
pub struct Node {
    beats: Arc<Beats>,
    task: JoinHandle<()>,
}

struct Beats {
    registry: Arc<dyn NodeRegistry>,
    /// Weak: shutdown waits for the platform's last handle to go (it holds the record
    /// writer), and the node outlives it to leave the registry last.
    platform: Weak<Platform>,
    /// What every heartbeat repeats; the time, load and state are filled in per beat.
    identity: NodeInfo,
    health: watch::Sender<Result<(), String>>,
    slot: watch::Sender<Option<u32>>,
    /// Who else may be live, for the slot a heartbeat hands out.
    peers: Peers,
}

/// What a node knows at start about the nodes before it.
pub struct Peers {
    /// The node that last ran from this data directory: it has stopped (a data directory
    /// serves one node at a time), so its slot passes to this one at once rather than after
    /// its heartbeat ages out.
    pub predecessor: Option<String>,
    /// The store serves this node alone (SQLite, the data directory locked): any node whose
    /// last beat came before this one started is gone.
    pub alone: bool,
}

/// The file in the data directory naming the node that runs from it.
const NODE_ID_FILE: &str = "node-id";

impl Peers {
    /// Reads the previous node's id from `<data_dir>/node-id` and writes `id` in its place.
    /// A file that cannot be read or written costs only the quick slot handover, so it is
    /// logged, not fatal.
    pub fn succeed(data_dir: &Path, id: &str, alone: bool) -> Self {
        let path = data_dir.join(NODE_ID_FILE);
        let predecessor = std::fs::read_to_string(&path)
            .ok()
            .map(|text| text.trim().to_string())
            .filter(|previous| !previous.is_empty() && previous != id);
        if let Err(error) = std::fs::write(&path, format!("{id}\n")) {
            tracing::warn!(path = %path.display(), %error, "could not record this node's id");
        }
        Self { predecessor, alone }
    }
}

impl Node {
    /// A fresh node id.
    pub fn new_id() -> String {
        uuid::Uuid::now_v7().simple().to_string()
    }

    /// Starts beating as node `id` listening on `address`; the store just opened, so it
    /// counts as healthy until a heartbeat fails.
    pub fn start(
        registry: Arc<dyn NodeRegistry>,
        platform: &Arc<Platform>,
        id: String,
        address: std::net::SocketAddr,
        peers: Peers,
    ) -> (Self, StoreHealth) {
        let now = now_micros();
        let identity = NodeInfo {
            id,
            address: address.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at_us: now,
            heartbeat_at_us: now,
            in_flight: 0,
            draining: false,
            slot: None,
        };
        let (health, watched) = watch::channel(Ok(()));
        let beats = Arc::new(Beats {
            registry,
            platform: Arc::downgrade(platform),
            identity,
            health,
            slot: watch::channel(None).0,
            peers,
        });
        let task = tokio::spawn(beats.clone().beat_until_stopped());
        (Self { beats, task }, watched)
    }

    pub fn id(&self) -> &str {
        &self.beats.identity.id
    }

    pub fn slot(&self) -> NodeSlot {
        self.beats.slot.subscribe()
    }

    /// Stops the loop and records the node as draining, within `within`.
    pub async fn drain(&self, within: Duration) {
        self.task.abort();
        if tokio::time::timeout(within, self.beats.beat(true))
            .await
            .is_err()
        {
            tracing::warn!("could not mark this node draining in the store in time");
        }
    }

    /// Removes the node from the registry, within `within`; a node that cannot is forgotten
    /// once its heartbeat is old.
    pub async fn leave(self, within: Duration) {
        let left = tokio::time::timeout(within, self.beats.registry.leave(self.id())).await;
        if !matches!(left, Ok(Ok(()))) {
            tracing::warn!(
                "could not remove this node from the store's node list; it drops out when its heartbeat is old"
            );
        }
    }
}

impl Beats {
    async fn beat_until_stopped(self: Arc<Self>) {
        let period = node_liveness().heartbeat;
        let mut retry = Retry::new("the node's heartbeat").capped_at(period);
        loop {
            let wait = match tokio::time::timeout(period, self.beat(false)).await {
                Ok(Ok(())) => {
                    retry.succeeded();
                    period
                }
                Ok(Err(error)) => retry.failed(&error),
                Err(_) => {
                    let late = format!("the store did not answer within {period:?}");
                    let wait = retry.failed(&late);
                    self.health.send_modify(|health| *health = Err(late));
                    wait
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    fn bounds(&self, now: i64) -> HeartbeatBounds {
        let mut bounds = node_liveness().bounds(now);
        if self.peers.alone {
            bounds.live_since_us = bounds.live_since_us.max(self.identity.started_at_us);
        }
        bounds.predecessor = self.peers.predecessor.clone();
        bounds
    }

    /// One heartbeat; its outcome is the store's health.
    async fn beat(&self, draining: bool) -> Result<(), vireo_core::StoreError> {
        let now = now_micros();
        let node = NodeInfo {
            heartbeat_at_us: now,
            in_flight: self
                .platform
                .upgrade()
                .map_or(0, |platform| platform.running()) as u64,
            draining,
            ..self.identity.clone()
        };
        let beat = self.registry.heartbeat(&node, &self.bounds(now)).await;
        let outcome = beat.as_ref().map(drop).map_err(ToString::to_string);
        self.health.send_modify(|health| *health = outcome);
        let slot = beat?;
        self.slot.send_if_modified(|held| {
            let changed = *held != Some(slot);
            if changed {
                tracing::info!(slot, "this node's slot");
            }
            *held = Some(slot);
            changed
        });
        Ok(())
    }
}
