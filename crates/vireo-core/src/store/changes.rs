//! The change feed: how every node's in-memory copies (the route cache, the key and quota
//! directory, versions loaded with secrets) learn that another writer changed what they copy.
//! Every write through the stores' roles publishes the change it makes by itself (a backend
//! shared by several nodes records it in the write's own transaction, so a node that stops
//! right after a write cannot leave the others stale); every subscriber on every node on the
//! same store receives it, its own node's included. A subscriber that falls behind, or whose
//! node could not follow the store for longer than the feed keeps changes, is told it missed
//! some, and must then treat everything it copies as changed.

use tokio::sync::broadcast;

use super::StoreError;
use crate::names::Name;
use crate::secrets::SecretName;

/// What changed, as narrowly as the copies need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// What the function's selectors resolve to may differ: a deploy, an alias set or deleted,
    /// the function deleted.
    Routes { namespace: Name, function: Name },
    /// Namespaces, their quotas or the API keys changed.
    Tenants,
    /// Routes or host claims changed: the route table is read again.
    HttpRoutes,
    /// A secret was set or deleted; versions granted it must open it again.
    Secret { namespace: Name, name: SecretName },
}

#[async_trait::async_trait]
pub trait ChangeFeed: Send + Sync + 'static {
    /// Tells every subscriber of a change made outside the stores' own writes (those publish
    /// theirs); call it once the change is stored.
    async fn publish(&self, change: Change) -> Result<(), StoreError>;
    /// The changes published from now on, in order.
    fn subscribe(&self) -> Subscription;
}

/// One subscriber's view of a [`ChangeFeed`].
#[derive(Debug)]
pub struct Subscription {
    changes: broadcast::Receiver<Result<Change, Missed>>,
}

/// Changes a subscriber did not receive: it fell behind, or its node found them already pruned
/// from the store's change log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} changes were missed; assume anything changed")]
pub struct Missed(pub u64);

impl Subscription {
    /// A subscription to what a feed implementation broadcasts: changes, or how many it knows
    /// its subscribers missed (changes no longer kept when its node caught up).
    pub fn new(changes: broadcast::Receiver<Result<Change, Missed>>) -> Self {
        Self { changes }
    }

    /// The next change, or `Missed` when some were dropped before this subscriber took them;
    /// `None` once the feed is gone.
    pub async fn next(&mut self) -> Option<Result<Change, Missed>> {
        match self.changes.recv().await {
            Ok(delivered) => Some(delivered),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Err(Missed(missed))),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}
