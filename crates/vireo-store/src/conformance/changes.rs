//! The change feed: what one writer publishes, every subscriber hears.

use vireo_core::{Change, SecretName};

use super::support::name;
use crate::Stores;

pub(super) async fn published_changes_reach_every_subscriber_in_order(stores: &Stores) {
    let mut first = stores.changes.subscribe();
    let mut second = stores.changes.subscribe();
    let changes = [
        Change::Routes {
            namespace: name("default"),
            function: name("hello"),
        },
        Change::Tenants,
        Change::Secret {
            namespace: name("default"),
            name: SecretName::parse("TOKEN").unwrap(),
        },
    ];
    for change in &changes {
        stores.changes.publish(change.clone()).await.unwrap();
    }
    for subscriber in [&mut first, &mut second] {
        for change in &changes {
            assert_eq!(subscriber.next().await, Some(Ok(change.clone())));
        }
    }
    let mut late = stores.changes.subscribe();
    stores.changes.publish(Change::Tenants).await.unwrap();
    assert_eq!(
        late.next().await,
        Some(Ok(Change::Tenants)),
        "a subscriber hears what is published after it subscribed, not before"
    );
}
