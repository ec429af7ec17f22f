//! This node in the store's node registry: a heartbeat every period says it is alive, what it
//! runs and how busy it is, and tells `/readyz` whether the store answers; at shutdown it says
//! it is draining, and once stopped it leaves.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use vireo_core::backoff::Retry;
use vireo_core::time::now_micros;
use vireo_core::{NodeInfo, NodeRegistry, node_liveness};

use crate::platform::Platform;

/// Whether the store answered the last heartbeat; `Err` says why not.
pub type StoreHealth = watch::Receiver<Result<(), String>>;

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
}

impl Node {
    /// Starts beating for a node listening on `address`; the store just opened, so it counts
    /// as healthy until a heartbeat fails.
    pub fn start(
        registry: Arc<dyn NodeRegistry>,
        platform: &Arc<Platform>,
        address: std::net::SocketAddr,
    ) -> (Self, StoreHealth) {
        let now = now_micros();
        let identity = NodeInfo {
            id: uuid::Uuid::now_v7().simple().to_string(),
            address: address.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at_us: now,
            heartbeat_at_us: now,
            in_flight: 0,
            draining: false,
        };
        let (health, watched) = watch::channel(Ok(()));
        let beats = Arc::new(Beats {
            registry,
            platform: Arc::downgrade(platform),
            identity,
            health,
        });
        let task = tokio::spawn(beats.clone().beat_until_stopped());
        (Self { beats, task }, watched)
    }

    pub fn id(&self) -> &str {
        &self.beats.identity.id
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
        let forget_before = now.saturating_sub(node_liveness().forget_after.as_micros() as i64);
        let beat = self.registry.heartbeat(&node, forget_before).await;
        let outcome = beat.as_ref().map(drop).map_err(ToString::to_string);
        self.health.send_modify(|health| *health = outcome);
        beat
    }
}
