//! The catalog: functions, versions and aliases, and what each call reports for a namespace or
//! function that does not exist.

use vireo_core::{
    AliasName, AliasTarget, Name, StickyKey, StoreError, VersionSelector, WeightedVersion,
};

use super::support::{
    AT, add_version, assert_err, default_function, invocation_id, invocations, log, logs, name,
    new_version, record, resolved,
};
use crate::Stores;

fn alias(value: &str) -> AliasName {
    AliasName::parse(value).unwrap()
}

fn latest() -> VersionSelector {
    VersionSelector::Alias(AliasName::latest())
}

pub(super) async fn versions_number_from_one(stores: &Stores) {
    let (ns, function) = default_function("hello");
    for (expected, sha) in [(1, "a"), (2, "b"), (3, "c")] {
        let added = add_version(stores, &ns, &function, sha).await;
        assert_eq!(added.version, expected);
        assert_eq!(added.component_sha256, sha.repeat(64));
    }
    let versions = stores.catalog.list_versions(&ns, &function).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let expected = new_version("b");
    assert_eq!(versions[1].settings, expected.settings);
    assert_eq!(versions[1].component_size, expected.component_size);

    let info = stores.catalog.get_function(&ns, &function).await.unwrap();
    assert_eq!(info.latest_version, Some(3));
    assert_eq!(info.aliases, [("latest".to_string(), 3)].into());
}

pub(super) async fn latest_follows_the_newest_version(stores: &Stores) {
    let (ns, function) = default_function("hello");
    stores
        .catalog
        .create_function(&ns, &function, AT)
        .await
        .unwrap();
    let info = stores.catalog.get_function(&ns, &function).await.unwrap();
    assert_eq!((info.latest_version, info.aliases.len()), (None, 0));
    assert_err!(
        stores.catalog.resolve_version(&ns, &function, &latest()).await,
        StoreError::AliasNotFound { alias, .. } if alias.is_latest()
    );

    for expected in 1..=3 {
        add_version(stores, &ns, &function, "a").await;
        assert_eq!(
            resolved(stores, &ns, &function, &latest()).await.version,
            expected
        );
    }
    let second = resolved(stores, &ns, &function, &VersionSelector::Number(2)).await;
    assert_eq!(second.version, 2);
    assert_err!(
        stores
            .catalog
            .resolve_version(&ns, &function, &VersionSelector::Number(9))
            .await,
        StoreError::VersionNotFound { version: 9, .. }
    );
}

pub(super) async fn split_aliases_keep_their_weights(stores: &Stores) {
    let (ns, function) = default_function("hello");
    for sha in ["a", "b", "c"] {
        add_version(stores, &ns, &function, sha).await;
    }
    let prod = alias("prod");
    let canary = AliasTarget {
        versions: vec![
            WeightedVersion {
                version: 1,
                weight: 95,
            },
            WeightedVersion {
                version: 2,
                weight: 5,
            },
        ],
        sticky: Some(StickyKey::Cookie("session".into())),
    };
    let prod_target = async || {
        stores
            .catalog
            .get_alias(&ns, &function, &prod)
            .await
            .unwrap()
    };
    stores
        .catalog
        .set_alias(&ns, &function, &prod, &canary)
        .await
        .unwrap();
    assert_eq!(prod_target().await, canary);
    // Whatever needs one version for the alias gets the primary one.
    let by_prod = VersionSelector::Alias(prod.clone());
    assert_eq!(resolved(stores, &ns, &function, &by_prod).await.version, 1);
    let info = stores.catalog.get_function(&ns, &function).await.unwrap();
    assert_eq!(info.aliases["prod"], 1);
    assert_eq!(info.splits, [("prod".to_string(), canary.clone())].into());

    let mut missing = canary.clone();
    missing.versions[1].version = 9;
    assert_err!(
        stores
            .catalog
            .set_alias(&ns, &function, &prod, &missing)
            .await,
        StoreError::VersionNotFound { version: 9, .. }
    );
    assert_eq!(prod_target().await, canary);

    // Promoting to one version forgets the split.
    stores
        .catalog
        .set_alias(&ns, &function, &prod, &AliasTarget::single(2))
        .await
        .unwrap();
    assert_eq!(prod_target().await, AliasTarget::single(2));
    let info = stores.catalog.get_function(&ns, &function).await.unwrap();
    assert!(info.splits.is_empty());
    assert_eq!(
        stores
            .catalog
            .get_alias(&ns, &function, &AliasName::latest())
            .await
            .unwrap(),
        AliasTarget::single(3)
    );
    assert_err!(
        stores
            .catalog
            .get_alias(&ns, &function, &alias("nope"))
            .await,
        StoreError::AliasNotFound { .. }
    );
}

pub(super) async fn aliases_set_resolve_and_delete(stores: &Stores) {
    let (ns, function) = default_function("hello");
    for sha in ["a", "b", "c"] {
        add_version(stores, &ns, &function, sha).await;
    }
    let prod = alias("prod");
    let by_prod = VersionSelector::Alias(prod.clone());

    stores
        .catalog
        .set_alias(&ns, &function, &prod, &AliasTarget::single(1))
        .await
        .unwrap();
    assert_eq!(resolved(stores, &ns, &function, &by_prod).await.version, 1);
    stores
        .catalog
        .set_alias(&ns, &function, &prod, &AliasTarget::single(2))
        .await
        .unwrap();
    let by_alias = resolved(stores, &ns, &function, &by_prod).await;
    assert_eq!(
        (by_alias.version, by_alias.component_sha256),
        (2, "b".repeat(64))
    );
    let info = stores.catalog.get_function(&ns, &function).await.unwrap();
    assert_eq!(
        info.aliases,
        [("latest".to_string(), 3), ("prod".to_string(), 2)].into()
    );

    assert_err!(
        stores
            .catalog
            .set_alias(&ns, &function, &prod, &AliasTarget::single(7))
            .await,
        StoreError::VersionNotFound { version: 7, .. }
    );
    assert_eq!(resolved(stores, &ns, &function, &by_prod).await.version, 2);

    stores
        .catalog
        .delete_alias(&ns, &function, &prod)
        .await
        .unwrap();
    assert_err!(
        stores.catalog.resolve_version(&ns, &function, &by_prod).await,
        StoreError::AliasNotFound { alias, .. } if alias == prod
    );
    assert_err!(
        stores.catalog.delete_alias(&ns, &function, &prod).await,
        StoreError::AliasNotFound { .. }
    );
    let info = stores.catalog.get_function(&ns, &function).await.unwrap();
    assert_eq!(info.aliases, [("latest".to_string(), 3)].into());
}

pub(super) async fn create_function_refuses_duplicates(stores: &Stores) {
    let ns = Name::default_namespace();
    let created = stores
        .catalog
        .create_function(&ns, &name("b-func"), AT)
        .await
        .unwrap();
    assert_eq!(
        (created.name.as_str(), created.latest_version),
        ("b-func", None)
    );
    assert_err!(
        stores
            .catalog
            .create_function(&ns, &name("b-func"), AT)
            .await,
        StoreError::FunctionExists { .. }
    );
    add_version(stores, &ns, &name("a-func"), "a").await;
    assert_err!(
        stores
            .catalog
            .create_function(&ns, &name("a-func"), AT)
            .await,
        StoreError::FunctionExists { .. }
    );

    let listed = stores.catalog.list_functions(&ns).await.unwrap();
    let summary: Vec<_> = listed
        .iter()
        .map(|f| (f.name.as_str(), f.latest_version))
        .collect();
    assert_eq!(summary, [("a-func", Some(1)), ("b-func", None)]);
    // An explicitly created function still starts at version 1.
    assert_eq!(
        add_version(stores, &ns, &name("b-func"), "a").await.version,
        1
    );
}

pub(super) async fn unknown_namespace_is_reported_everywhere(stores: &Stores) {
    let (ns, function) = (name("nowhere"), name("hello"));
    assert!(
        stores
            .catalog
            .namespace_exists(&Name::default_namespace())
            .await
            .unwrap()
    );
    assert!(!stores.catalog.namespace_exists(&ns).await.unwrap());

    assert_err!(
        stores.catalog.create_function(&ns, &function, AT).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        stores.catalog.get_function(&ns, &function).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        stores.catalog.list_functions(&ns).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        stores.catalog.delete_function(&ns, &function).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        stores
            .catalog
            .add_version(&ns, &function, new_version("a"), AT)
            .await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        stores.catalog.list_versions(&ns, &function).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        stores
            .catalog
            .resolve_version(&ns, &function, &latest())
            .await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        stores
            .catalog
            .set_alias(&ns, &function, &alias("prod"), &AliasTarget::single(1))
            .await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        stores
            .catalog
            .delete_alias(&ns, &function, &alias("prod"))
            .await,
        StoreError::NamespaceNotFound(_)
    );
    let mut query = invocations(&function, None, 10);
    query.namespace = ns.clone();
    assert_err!(
        stores.records.list_invocations(&query).await,
        StoreError::NamespaceNotFound(_)
    );
    let mut query = logs(&function);
    query.namespace = ns.clone();
    assert_err!(
        stores.records.read_logs(&query).await,
        StoreError::NamespaceNotFound(_)
    );
}

pub(super) async fn unknown_function_is_reported_everywhere(stores: &Stores) {
    let (ns, function) = default_function("ghost");
    add_version(stores, &ns, &name("other"), "a").await;
    let missing = |result: Result<(), StoreError>| match result {
        Err(StoreError::FunctionNotFound { function: f, .. }) => assert_eq!(f, function),
        other => panic!("expected FunctionNotFound, got {other:?}"),
    };

    missing(stores.catalog.get_function(&ns, &function).await.map(drop));
    missing(stores.catalog.delete_function(&ns, &function).await);
    missing(stores.catalog.list_versions(&ns, &function).await.map(drop));
    missing(
        stores
            .catalog
            .resolve_version(&ns, &function, &latest())
            .await
            .map(drop),
    );
    missing(
        stores
            .catalog
            .resolve_version(&ns, &function, &VersionSelector::Number(1))
            .await
            .map(drop),
    );
    missing(
        stores
            .catalog
            .set_alias(&ns, &function, &alias("prod"), &AliasTarget::single(1))
            .await,
    );
    missing(
        stores
            .catalog
            .delete_alias(&ns, &function, &alias("prod"))
            .await,
    );
    missing(
        stores
            .records
            .list_invocations(&invocations(&function, None, 10))
            .await
            .map(drop),
    );
    missing(stores.records.read_logs(&logs(&function)).await.map(drop));
    assert!(
        stores
            .records
            .get_invocation(&invocation_id(1))
            .await
            .unwrap()
            .is_none()
    );
}

pub(super) async fn delete_function_cascades(stores: &Stores) {
    let (ns, function) = default_function("hello");
    let (_, other) = default_function("other");
    add_version(stores, &ns, &function, "a").await;
    add_version(stores, &ns, &function, "b").await;
    add_version(stores, &ns, &other, "c").await;
    stores
        .catalog
        .set_alias(&ns, &function, &alias("prod"), &AliasTarget::single(1))
        .await
        .unwrap();
    let (mine, theirs) = (record(&function, 1), record(&other, 2));
    stores
        .records
        .record_invocations(
            &[mine.clone(), theirs.clone()],
            &[log(&mine, 1, "mine"), log(&theirs, 2, "theirs")],
        )
        .await
        .unwrap();

    stores
        .catalog
        .delete_function(&ns, &function)
        .await
        .unwrap();
    assert_err!(
        stores.catalog.get_function(&ns, &function).await,
        StoreError::FunctionNotFound { .. }
    );
    assert!(
        stores
            .records
            .get_invocation(&mine.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        stores.catalog.component_hashes().await.unwrap(),
        ["c".repeat(64)]
    );

    // Re-created, it starts over: version 1, no aliases, no history.
    assert_eq!(add_version(stores, &ns, &function, "d").await.version, 1);
    let info = stores.catalog.get_function(&ns, &function).await.unwrap();
    assert_eq!(info.aliases, [("latest".to_string(), 1)].into());
    assert!(
        stores
            .records
            .list_invocations(&invocations(&function, None, 10))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        stores
            .records
            .read_logs(&logs(&function))
            .await
            .unwrap()
            .is_empty()
    );

    // The other function keeps everything.
    assert_eq!(
        stores.records.get_invocation(&theirs.id).await.unwrap(),
        Some(theirs)
    );
    assert_eq!(
        stores.records.read_logs(&logs(&other)).await.unwrap().len(),
        1
    );
}

pub(super) async fn component_hashes_are_distinct(stores: &Stores) {
    assert!(stores.catalog.component_hashes().await.unwrap().is_empty());
    let ns = Name::default_namespace();
    for (function, sha) in [("one", "a"), ("one", "b"), ("two", "a"), ("two", "a")] {
        add_version(stores, &ns, &name(function), sha).await;
    }
    let mut hashes = stores.catalog.component_hashes().await.unwrap();
    hashes.sort();
    assert_eq!(hashes, ["a".repeat(64), "b".repeat(64)]);
}

pub(super) async fn writes_are_stamped_with_the_time_they_are_given(stores: &Stores) {
    let (ns, function) = default_function("stamped");
    let created = stores
        .catalog
        .create_function(&ns, &function, 7_000)
        .await
        .unwrap();
    assert_eq!(created.created_at_us, 7_000);
    let added = stores
        .catalog
        .add_version(&ns, &function, new_version("a"), 8_000)
        .await
        .unwrap();
    assert_eq!(added.created_at_us, 8_000);
    let (_, implicit) = default_function("implicit");
    stores
        .catalog
        .add_version(&ns, &implicit, new_version("a"), 9_000)
        .await
        .unwrap();
    let stored = stores.catalog.list_functions(&ns).await.unwrap();
    let stamps: Vec<(&str, i64)> = stored
        .iter()
        .map(|f| (f.name.as_str(), f.created_at_us))
        .collect();
    assert_eq!(
        stamps,
        [("implicit", 9_000), ("stamped", 7_000)],
        "a function a deploy creates is stamped with the deploy's time"
    );
    let versions = stores.catalog.list_versions(&ns, &function).await.unwrap();
    assert_eq!(versions[0].created_at_us, 8_000);
}
