//! Namespaces with their quotas, and API keys.

use vireo_core::{ApiKey, Enqueued, NamespaceQuotas, RateLimit, Role, StoreError};

use super::support::{AT, add_version, deployed, job, name, new_version};
use crate::Stores;

fn quotas() -> NamespaceQuotas {
    NamespaceQuotas {
        max_functions: Some(1),
        max_concurrency: Some(2),
        max_queued: Some(3),
        key_rate_limit: Some(RateLimit {
            per_second: 4,
            burst: 5,
        }),
        max_kv_bytes: Some(6),
        max_object_bytes: Some(7),
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

pub(super) async fn namespaces_are_created_listed_changed_and_deleted_when_empty(stores: &Stores) {
    let team = name("team");
    let created = stores
        .tenants
        .create_namespace(&team, &quotas(), AT)
        .await
        .unwrap();
    assert_eq!((created.quotas, created.functions), (quotas(), 0));
    assert!(matches!(
        stores
            .tenants
            .create_namespace(&team, &NamespaceQuotas::default(), AT)
            .await,
        Err(StoreError::NamespaceExists(_))
    ));
    let names: Vec<String> = stores
        .tenants
        .list_namespaces()
        .await
        .unwrap()
        .iter()
        .map(|ns| ns.name.to_string())
        .collect();
    assert_eq!(names, ["default", "team"]);

    let cleared = stores
        .tenants
        .set_quotas(&team, &NamespaceQuotas::default())
        .await
        .unwrap();
    assert_eq!(cleared.quotas, NamespaceQuotas::default());
    assert!(matches!(
        stores.tenants.set_quotas(&name("nope"), &quotas()).await,
        Err(StoreError::NamespaceNotFound(_))
    ));

    add_version(stores, &team, &name("f"), "ab").await;
    assert_eq!(
        stores.tenants.get_namespace(&team).await.unwrap().functions,
        1
    );
    assert!(matches!(
        stores.tenants.delete_namespace(&team, AT).await,
        Err(StoreError::NamespaceNotEmpty { .. })
    ));
    stores
        .catalog
        .delete_function(&team, &name("f"))
        .await
        .unwrap();
    stores.tenants.delete_namespace(&team, AT).await.unwrap();
    assert!(matches!(
        stores.tenants.get_namespace(&team).await,
        Err(StoreError::NamespaceNotFound(_))
    ));
}

pub(super) async fn max_functions_refuses_only_new_functions(stores: &Stores) {
    let team = name("team");
    stores
        .tenants
        .create_namespace(&team, &quotas(), AT)
        .await
        .unwrap();
    add_version(stores, &team, &name("one"), "ab").await;
    // A new version of a function it holds is no new function.
    add_version(stores, &team, &name("one"), "cd").await;
    let refused = stores
        .catalog
        .add_version(&team, &name("two"), new_version("ab"), AT)
        .await;
    assert!(
        matches!(&refused, Err(StoreError::QuotaExceeded(message)) if message.contains("max_functions quota is 1")),
        "{refused:?}"
    );
    assert!(matches!(
        stores
            .catalog
            .create_function(&team, &name("three"), AT)
            .await,
        Err(StoreError::QuotaExceeded(_))
    ));
    assert_eq!(stores.catalog.list_functions(&team).await.unwrap().len(), 1);
}

pub(super) async fn keys_round_trip_and_revoke_once(stores: &Stores) {
    stores
        .tenants
        .create_namespace(&name("team"), &NamespaceQuotas::default(), AT)
        .await
        .unwrap();
    let developer = key("k1", Role::Developer, &["team", "default"]);
    stores.tenants.create_key(&developer).await.unwrap();
    stores
        .tenants
        .create_key(&key("k2", Role::Admin, &[]))
        .await
        .unwrap();
    assert!(matches!(
        stores
            .tenants
            .create_key(&key("k3", Role::Viewer, &["missing"]))
            .await,
        Err(StoreError::NamespaceNotFound(_))
    ));
    let keys = stores.tenants.list_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], developer);

    let revoked = stores.tenants.revoke_key("k1", 50).await.unwrap();
    assert_eq!(revoked.revoked_at_us, Some(50));
    let again = stores.tenants.revoke_key("k1", 90).await.unwrap();
    assert_eq!(again.revoked_at_us, Some(50), "the first revocation stands");
    assert!(matches!(
        stores.tenants.revoke_key("nope", 1).await,
        Err(StoreError::KeyNotFound(_))
    ));
}

pub(super) async fn deleting_a_namespace_revokes_its_keys(stores: &Stores) {
    let team = name("team");
    stores
        .tenants
        .create_namespace(&team, &NamespaceQuotas::default(), AT)
        .await
        .unwrap();
    stores
        .tenants
        .create_key(&key("k1", Role::Developer, &["team"]))
        .await
        .unwrap();
    stores
        .tenants
        .create_key(&key("k2", Role::Developer, &["default"]))
        .await
        .unwrap();
    stores.tenants.delete_namespace(&team, AT).await.unwrap();
    let keys = stores.tenants.list_keys().await.unwrap();
    let revoked: Vec<bool> = keys.iter().map(|k| k.revoked_at_us.is_some()).collect();
    assert_eq!(revoked, [true, false]);
}

pub(super) async fn max_queued_overrides_the_server_default(stores: &Stores) {
    let function = deployed(stores, "f").await;
    let default = vireo_core::Name::default_namespace();
    let one = NamespaceQuotas {
        max_queued: Some(1),
        ..NamespaceQuotas::default()
    };
    stores.tenants.set_quotas(&default, &one).await.unwrap();
    let outcomes = stores
        .queue
        .enqueue(&[job(&function, 1, None), job(&function, 2, None)], 100)
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [Enqueued::Accepted, Enqueued::QueueFull { limit: 1 }]
    );
}

pub(super) async fn namespace_writes_are_stamped_with_the_time_they_are_given(stores: &Stores) {
    let team = name("team");
    let created = stores
        .tenants
        .create_namespace(&team, &NamespaceQuotas::default(), 5_000)
        .await
        .unwrap();
    assert_eq!(created.created_at_us, 5_000);
    assert_eq!(
        stores
            .tenants
            .get_namespace(&team)
            .await
            .unwrap()
            .created_at_us,
        5_000
    );
    stores
        .tenants
        .create_key(&key("k1", Role::Developer, &["team"]))
        .await
        .unwrap();
    stores.tenants.delete_namespace(&team, 6_000).await.unwrap();
    let keys = stores.tenants.list_keys().await.unwrap();
    assert_eq!(
        keys[0].revoked_at_us,
        Some(6_000),
        "its keys are revoked at the deletion's time"
    );
}
