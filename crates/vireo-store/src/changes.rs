//! The change feed within one process: a broadcast every subscriber of the process hears. A
//! backend whose nodes share a process (SQLite, whose data directory one server holds) needs
//! nothing more; a networked one forwards what other nodes publish into the same broadcast.

use tokio::sync::broadcast;
use vireo_core::{Change, ChangeFeed, StoreError, Subscription};

/// Changes a subscriber may fall behind by before it is told it missed some. Changes come from
/// admin requests, so even a slow subscriber keeps up with far fewer.
const BUFFERED_CHANGES: usize = 1024;

#[derive(Debug)]
pub(crate) struct LocalFeed {
    changes: broadcast::Sender<Change>,
}

impl LocalFeed {
    pub(crate) fn new() -> Self {
        Self {
            changes: broadcast::Sender::new(BUFFERED_CHANGES),
        }
    }
}

#[async_trait::async_trait]
impl ChangeFeed for LocalFeed {
    async fn publish(&self, change: Change) -> Result<(), StoreError> {
        // Without subscribers there is no one to tell: not a failure.
        let _ = self.changes.send(change);
        Ok(())
    }

    fn subscribe(&self) -> Subscription {
        Subscription::new(self.changes.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use vireo_core::Missed;

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
}
