//! The change feed: how every node's in-memory copies (the route cache, the key and quota
//! directory, versions loaded with secrets) learn that another writer changed what they copy.
//! A node publishes each change after storing it; every subscriber on every node on the same
//! store receives it, its own node's included. A subscriber that falls behind is told it
//! missed some, and must then treat everything it copies as changed.

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
    /// A secret was set or deleted; versions granted it must open it again.
    Secret { namespace: Name, name: SecretName },
}

#[async_trait::async_trait]
pub trait ChangeFeed: Send + Sync + 'static {
    /// Tells every subscriber of a change; call it once the change is stored.
    async fn publish(&self, change: Change) -> Result<(), StoreError>;
    /// The changes published from now on, in order.
    fn subscribe(&self) -> Subscription;
}

/// Publishes a change that is already stored. A failure is logged, not returned: the write it
/// describes succeeded, and a feed that lost a change tells its subscribers they missed some.
pub async fn announce(feed: &dyn ChangeFeed, change: Change) {
    if let Err(error) = feed.publish(change.clone()).await {
        tracing::warn!(%error, ?change, "could not tell other copies of a change");
    }
}

/// One subscriber's view of a [`ChangeFeed`].
#[derive(Debug)]
pub struct Subscription {
    changes: broadcast::Receiver<Change>,
}

/// Changes a subscriber did not receive because it fell behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0} changes were missed; assume anything changed")]
pub struct Missed(pub u64);

impl Subscription {
    /// A subscription to what a feed implementation broadcasts.
    pub fn new(changes: broadcast::Receiver<Change>) -> Self {
        Self { changes }
    }

    /// The next change, or `Missed` when some were dropped before this subscriber took them;
    /// `None` once the feed is gone.
    pub async fn next(&mut self) -> Option<Result<Change, Missed>> {
        match self.changes.recv().await {
            Ok(change) => Some(Ok(change)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(Err(Missed(missed))),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}
