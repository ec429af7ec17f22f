//! Sealed secrets: stored, replaced, listed, sampled and deleted as opaque bytes.

use std::collections::BTreeSet;

use vireo_core::{Name, SealedSecret, SecretName, StoreError};

use super::support::name;
use crate::Stores;

fn secret(value: &str) -> SecretName {
    SecretName::parse(value).unwrap()
}

/// Distinct bytes per `n`, so a round trip shows which write was kept.
fn sealed(n: u8) -> SealedSecret {
    SealedSecret {
        nonce: vec![n; 24],
        ciphertext: vec![n, 0, 255, n],
    }
}

pub(super) async fn secrets_are_created_replaced_listed_and_deleted(stores: &Stores) {
    let ns = Name::default_namespace();
    let (db, api) = (secret("DB_PASSWORD"), secret("API_TOKEN"));
    assert!(
        stores
            .secrets
            .put_secret(&ns, &db, &sealed(1), 1_000)
            .await
            .unwrap()
    );
    assert!(
        stores
            .secrets
            .put_secret(&ns, &api, &sealed(2), 2_000)
            .await
            .unwrap()
    );
    assert!(
        !stores
            .secrets
            .put_secret(&ns, &db, &sealed(3), 3_000)
            .await
            .unwrap(),
        "a second put replaces"
    );

    let listed = stores.secrets.list_secrets(&ns).await.unwrap();
    let shown: Vec<_> = listed
        .iter()
        .map(|s| {
            (
                s.namespace.as_str(),
                s.name.as_str(),
                s.created_at_us,
                s.updated_at_us,
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("default", "API_TOKEN", 2_000, 2_000),
            ("default", "DB_PASSWORD", 1_000, 3_000),
        ],
        "by name; a replacement keeps its creation time"
    );

    let wanted = BTreeSet::from([db.clone(), secret("MISSING")]);
    let found = stores.secrets.sealed_secrets(&ns, &wanted).await.unwrap();
    assert_eq!(found.len(), 1, "only existing secrets come back");
    assert_eq!(found[&db], sealed(3), "the latest write, byte for byte");
    assert!(
        stores
            .secrets
            .sealed_secrets(&ns, &BTreeSet::new())
            .await
            .unwrap()
            .is_empty()
    );

    stores.secrets.delete_secret(&ns, &db).await.unwrap();
    let again = stores.secrets.delete_secret(&ns, &db).await;
    assert!(
        matches!(&again, Err(StoreError::SecretNotFound { name, .. }) if *name == db),
        "{again:?}"
    );
    let names: Vec<_> = stores
        .secrets
        .list_secrets(&ns)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, [api]);
}

pub(super) async fn secrets_of_unknown_namespaces_are_reported(stores: &Stores) {
    let (ns, db) = (name("nowhere"), secret("DB_PASSWORD"));
    let put = stores.secrets.put_secret(&ns, &db, &sealed(1), 1).await;
    assert!(
        matches!(put, Err(StoreError::NamespaceNotFound(_))),
        "{put:?}"
    );
    let listed = stores.secrets.list_secrets(&ns).await;
    assert!(
        matches!(listed, Err(StoreError::NamespaceNotFound(_))),
        "{listed:?}"
    );
    let deleted = stores.secrets.delete_secret(&ns, &db).await;
    assert!(
        matches!(deleted, Err(StoreError::NamespaceNotFound(_))),
        "{deleted:?}"
    );
    let found = stores
        .secrets
        .sealed_secrets(&ns, &BTreeSet::from([db]))
        .await;
    assert!(found.unwrap().is_empty());
}

pub(super) async fn a_sample_shows_the_newest_secrets_of_every_namespace(stores: &Stores) {
    assert_eq!(stores.secrets.sample_sealed(8).await.unwrap().total, 0);
    let ns = Name::default_namespace();
    for (n, value) in ["A", "B", "C"].into_iter().enumerate() {
        let at = 1_000 * i64::try_from(n).unwrap();
        let n = u8::try_from(n).unwrap();
        stores
            .secrets
            .put_secret(&ns, &secret(value), &sealed(n), at)
            .await
            .unwrap();
    }
    let sample = stores.secrets.sample_sealed(2).await.unwrap();
    assert_eq!(sample.total, 3);
    let names: Vec<&str> = sample
        .secrets
        .iter()
        .map(|(_, name, _)| name.as_str())
        .collect();
    assert_eq!(names, ["C", "B"], "newest first, at most the limit");
    assert_eq!(sample.secrets[0].0, ns);
    assert_eq!(sample.secrets[0].2, sealed(2));
}
