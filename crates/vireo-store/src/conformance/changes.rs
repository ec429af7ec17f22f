//! The change feed: what one writer publishes, and every write to what nodes copy, every
//! subscriber hears.

use vireo_core::auth::{ApiKey, Role};
use vireo_core::{AliasName, AliasTarget, Change, NamespaceQuotas, SealedSecret, SecretName};

use super::support::{AT, deployed, name, receive};
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

pub(super) async fn writes_publish_what_they_change(stores: &Stores) {
    let function = deployed(stores, "copied").await;
    let namespace = name("default");
    let routes = Change::Routes {
        namespace: namespace.clone(),
        function: function.clone(),
    };
    let mut subscriber = stores.changes.subscribe();
    let prod = AliasName::parse("prod").unwrap();
    stores
        .catalog
        .set_alias(&namespace, &function, &prod, &AliasTarget::single(1))
        .await
        .unwrap();
    receive(&mut subscriber, &routes).await;
    stores
        .catalog
        .delete_function(&namespace, &function)
        .await
        .unwrap();
    receive(&mut subscriber, &routes).await;

    stores
        .tenants
        .create_namespace(&name("team"), &NamespaceQuotas::default(), AT)
        .await
        .unwrap();
    receive(&mut subscriber, &Change::Tenants).await;
    let key = ApiKey {
        id: "k1".to_string(),
        role: Role::Viewer,
        namespaces: vec![],
        description: None,
        created_at_us: AT,
        expires_at_us: None,
        revoked_at_us: None,
        secret_sha256: "00".repeat(32),
    };
    stores.tenants.create_key(&key).await.unwrap();
    stores.tenants.revoke_key("k1", AT).await.unwrap();
    receive(&mut subscriber, &Change::Tenants).await;
    receive(&mut subscriber, &Change::Tenants).await;

    let token = SecretName::parse("TOKEN").unwrap();
    let sealed = SealedSecret {
        nonce: vec![1; 24],
        ciphertext: vec![2; 8],
    };
    stores
        .secrets
        .put_secret(&namespace, &token, &sealed, AT)
        .await
        .unwrap();
    let secret = Change::Secret {
        namespace: namespace.clone(),
        name: token.clone(),
    };
    receive(&mut subscriber, &secret).await;
    stores
        .secrets
        .delete_secret(&namespace, &token)
        .await
        .unwrap();
    receive(&mut subscriber, &secret).await;
}
