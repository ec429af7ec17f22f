//! The behaviour every store of namespaces and API keys must have, on an empty store.

use vireo_core::{
    ApiKey, Enqueued, NamespaceQuotas, Queue, RateLimit, Role, Store, StoreError, Tenancy,
};

use crate::queue_conformance::{deployed, job};
use crate::support::{name, new_version};

fn quotas() -> NamespaceQuotas {
    NamespaceQuotas {
        max_functions: Some(1),
        max_concurrency: Some(2),
        max_queued: Some(3),
        key_rate_limit: Some(RateLimit {
            per_second: 4,
            burst: 5,
        }),
    }
}

fn key(id: &str, role: Role, namespaces: &[&str]) -> ApiKey {
    ApiKey {
        id: id.to_string(),
        role,
        namespaces: namespaces.iter().map(|ns| name(ns)).collect(),
        description: Some("test".into()),
        created_at_us: 10,
        expires_at_us: Some(1_000),
        revoked_at_us: None,
        secret_sha256: "ab".repeat(32),
    }
}

pub async fn namespaces_are_created_listed_changed_and_deleted_when_empty<S: Store + Tenancy>(
    store: &S,
) {
    let team = name("team");
    let created = store.create_namespace(&team, &quotas()).await.unwrap();
    assert_eq!((created.quotas, created.functions), (quotas(), 0));
    assert!(matches!(
        store
            .create_namespace(&team, &NamespaceQuotas::default())
            .await,
        Err(StoreError::NamespaceExists(_))
    ));
    let names: Vec<String> = store
        .list_namespaces()
        .await
        .unwrap()
        .iter()
        .map(|ns| ns.name.to_string())
        .collect();
    assert_eq!(names, ["default", "team"]);

    let cleared = store
        .set_quotas(&team, &NamespaceQuotas::default())
        .await
        .unwrap();
    assert_eq!(cleared.quotas, NamespaceQuotas::default());
    assert!(matches!(
        store.set_quotas(&name("nope"), &quotas()).await,
        Err(StoreError::NamespaceNotFound(_))
    ));

    store
        .add_version(&team, &name("f"), new_version("ab"))
        .await
        .unwrap();
    assert_eq!(store.get_namespace(&team).await.unwrap().functions, 1);
    assert!(matches!(
        store.delete_namespace(&team).await,
        Err(StoreError::NamespaceNotEmpty { .. })
    ));
    store.delete_function(&team, &name("f")).await.unwrap();
    store.delete_namespace(&team).await.unwrap();
    assert!(matches!(
        store.get_namespace(&team).await,
        Err(StoreError::NamespaceNotFound(_))
    ));
}

pub async fn max_functions_refuses_only_new_functions<S: Store + Tenancy>(store: &S) {
    let team = name("team");
    store.create_namespace(&team, &quotas()).await.unwrap();
    store
        .add_version(&team, &name("one"), new_version("ab"))
        .await
        .unwrap();
    // A new version of a function it holds is no new function.
    store
        .add_version(&team, &name("one"), new_version("cd"))
        .await
        .unwrap();
    let refused = store
        .add_version(&team, &name("two"), new_version("ab"))
        .await;
    assert!(
        matches!(&refused, Err(StoreError::QuotaExceeded(message)) if message.contains("max_functions quota is 1")),
        "{refused:?}"
    );
    assert!(matches!(
        store.create_function(&team, &name("three")).await,
        Err(StoreError::QuotaExceeded(_))
    ));
    assert_eq!(store.list_functions(&team).await.unwrap().len(), 1);
}

pub async fn keys_round_trip_and_revoke_once<S: Store + Tenancy>(store: &S) {
    store
        .create_namespace(&name("team"), &NamespaceQuotas::default())
        .await
        .unwrap();
    let developer = key("k1", Role::Developer, &["team", "default"]);
    store.create_key(&developer).await.unwrap();
    store
        .create_key(&key("k2", Role::Admin, &[]))
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_key(&key("k3", Role::Viewer, &["missing"]))
            .await,
        Err(StoreError::NamespaceNotFound(_))
    ));
    let keys = store.list_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], developer);

    let revoked = store.revoke_key("k1", 50).await.unwrap();
    assert_eq!(revoked.revoked_at_us, Some(50));
    let again = store.revoke_key("k1", 90).await.unwrap();
    assert_eq!(again.revoked_at_us, Some(50), "the first revocation stands");
    assert!(matches!(
        store.revoke_key("nope", 1).await,
        Err(StoreError::KeyNotFound(_))
    ));
}

pub async fn deleting_a_namespace_revokes_its_keys<S: Store + Tenancy>(store: &S) {
    let team = name("team");
    store
        .create_namespace(&team, &NamespaceQuotas::default())
        .await
        .unwrap();
    store
        .create_key(&key("k1", Role::Developer, &["team"]))
        .await
        .unwrap();
    store
        .create_key(&key("k2", Role::Developer, &["default"]))
        .await
        .unwrap();
    store.delete_namespace(&team).await.unwrap();
    let keys = store.list_keys().await.unwrap();
    let revoked: Vec<bool> = keys.iter().map(|k| k.revoked_at_us.is_some()).collect();
    assert_eq!(revoked, [true, false]);
}

pub async fn max_queued_overrides_the_server_default<S: Store + Queue + Tenancy>(store: &S) {
    let function = deployed(store, "f").await;
    let default = vireo_core::Name::default_namespace();
    let one = NamespaceQuotas {
        max_queued: Some(1),
        ..NamespaceQuotas::default()
    };
    store.set_quotas(&default, &one).await.unwrap();
    let outcomes = store
        .enqueue(&[job(&function, 1, None), job(&function, 2, None)], 100)
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [Enqueued::Accepted, Enqueued::QueueFull { limit: 1 }]
    );
}
