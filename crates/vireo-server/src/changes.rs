//! Follows the change feed for the life of the server, so this node's copies (routes, keys and
//! quotas, versions loaded with secrets) take in every change made to the same store, through
//! this node or another.

use std::sync::Arc;

use vireo_core::Subscription;

use crate::platform::Platform;

pub async fn follow(mut feed: Subscription, platform: Arc<Platform>) {
    while let Some(next) = feed.next().await {
        match next {
            Ok(change) => platform.apply(&change).await,
            Err(missed) => {
                tracing::warn!(%missed, "reloading every in-memory copy of stored state");
                platform.apply_everything().await;
            }
        }
    }
}
