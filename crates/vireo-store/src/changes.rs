//! The change feed within one process: a broadcast every subscriber of the process hears. A
//! backend whose nodes share a process (SQLite, whose data directory one server holds) needs
//! nothing more; a networked one forwards what every node publishes into the same broadcast.

use tokio::sync::broadcast;
use vireo_core::{Change, ChangeFeed, Missed, Name, SecretName, StoreError, Subscription};

/// Changes a subscriber may fall behind by before it is told it missed some. Changes come from
/// admin requests, so even a slow subscriber keeps up with far fewer.
const BUFFERED_CHANGES: usize = 1024;

/// What a write to a function's versions or aliases changes.
pub(crate) fn routes(namespace: &Name, function: &Name) -> Change {
    Change::Routes {
        namespace: namespace.clone(),
        function: function.clone(),
    }
}

/// What a write to a secret changes.
pub(crate) fn secret(namespace: &Name, name: &SecretName) -> Change {
    Change::Secret {
        namespace: namespace.clone(),
        name: name.clone(),
    }
}

#[derive(Debug)]
pub(crate) struct LocalFeed {
    changes: broadcast::Sender<Result<Change, Missed>>,
}

impl LocalFeed {
    pub(crate) fn new() -> Self {
        Self {
            changes: broadcast::Sender::new(BUFFERED_CHANGES),
        }
    }

    /// Tells this process's subscribers of a change.
    pub(crate) fn announce(&self, change: Change) {
        // Without subscribers there is no one to tell: not a failure.
        let _ = self.changes.send(Ok(change));
    }

    /// Tells this process's subscribers that changes went by unseen.
    pub(crate) fn announce_missed(&self, missed: Missed) {
        let _ = self.changes.send(Err(missed));
    }

    pub(crate) fn subscribe(&self) -> Subscription {
        Subscription::new(self.changes.subscribe())
    }
}

#[async_trait::async_trait]
impl ChangeFeed for LocalFeed {
    async fn publish(&self, change: Change) -> Result<(), StoreError> {
        self.announce(change);
        Ok(())
    }

    fn subscribe(&self) -> Subscription {
        LocalFeed::subscribe(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_it_missed_changes() {
        let feed = LocalFeed::new();
        let mut slow = feed.subscribe();
        for _ in 0..BUFFERED_CHANGES + 3 {
            feed.publish(Change::Tenants).await.unwrap();
        }
        assert_eq!(slow.next().await, Some(Err(Missed(3))));
        assert_eq!(slow.next().await, Some(Ok(Change::Tenants)));
        drop(feed);
        for _ in 0..BUFFERED_CHANGES - 1 {
            slow.next().await;
        }
        assert_eq!(slow.next().await, None, "the feed is gone");
    }

    #[tokio::test]
    async fn a_feed_passes_on_changes_its_node_missed() {
        let feed = LocalFeed::new();
        let mut subscriber = feed.subscribe();
        feed.announce_missed(Missed(7));
        feed.announce(Change::Tenants);
        assert_eq!(subscriber.next().await, Some(Err(Missed(7))));
        assert_eq!(subscriber.next().await, Some(Ok(Change::Tenants)));
    }
}
