//! Event sources: created, read, listed, paused and deleted, and gone with their function.

use vireo_core::{
    AliasName, Name, NewSource, SecretName, SourceKind, SourceSpec, StoreError, VersionSelector,
};

use super::support::{deployed, name};
use crate::Stores;

fn source(function: &Name, name_: &str) -> NewSource {
    NewSource {
        namespace: Name::default_namespace(),
        name: name(name_),
        function: function.clone(),
        selector: VersionSelector::Alias(AliasName::latest()),
        spec: SourceSpec {
            kind: SourceKind::Nats,
            url: "nats://127.0.0.1:4222".to_string(),
            stream: "orders".to_string(),
            subject: Some("orders.eu".to_string()),
            password_secret: Some(SecretName::parse("NATS_PASSWORD").unwrap()),
            batch_size: 250,
            batch_window_ms: Some(400),
            filter: Some(
                serde_json::from_value(serde_json::json!({"type": ["order.created"]}))
                    .expect("a valid filter"),
            ),
            qos: None,
        },
        created_at_us: 7,
    }
}

pub(super) async fn sources_round_trip_pause_and_go_with_their_function(stores: &Stores) {
    let function = deployed(stores, "consumer").await;
    let namespace = Name::default_namespace();
    let sources = &stores.sources;
    let created = sources
        .create_source(&source(&function, "orders"))
        .await
        .unwrap();
    assert_eq!(created.spec, source(&function, "orders").spec);
    assert!(!created.paused);
    assert_eq!(created.created_at_us, 7);
    assert!(matches!(
        sources.create_source(&source(&function, "orders")).await,
        Err(StoreError::SourceExists { .. })
    ));
    assert!(matches!(
        sources.create_source(&source(&name("nope"), "x")).await,
        Err(StoreError::FunctionNotFound { .. })
    ));
    // The store keeps every setting, an MQTT source's QoS too.
    let mut audit = source(&function, "audit");
    audit.spec.kind = SourceKind::Mqtt;
    audit.spec.qos = Some(0);
    let created = sources.create_source(&audit).await.unwrap();
    assert_eq!(created.spec, audit.spec);
    let listed: Vec<_> = sources
        .list_sources(&namespace)
        .await
        .unwrap()
        .into_iter()
        .map(|source| source.name.to_string())
        .collect();
    assert_eq!(listed, ["audit", "orders"]);
    assert_eq!(sources.all_sources().await.unwrap().len(), 2);

    let paused = sources
        .set_source_paused(&namespace, &name("orders"), true)
        .await
        .unwrap();
    assert!(paused.paused);
    assert_eq!(
        sources
            .get_source(&namespace, &name("orders"))
            .await
            .unwrap(),
        paused
    );
    assert!(
        !sources
            .set_source_paused(&namespace, &name("orders"), false)
            .await
            .unwrap()
            .paused
    );

    sources
        .delete_source(&namespace, &name("audit"))
        .await
        .unwrap();
    assert!(matches!(
        sources.get_source(&namespace, &name("audit")).await,
        Err(StoreError::SourceNotFound { .. })
    ));
    assert!(matches!(
        sources.delete_source(&namespace, &name("audit")).await,
        Err(StoreError::SourceNotFound { .. })
    ));
    stores
        .catalog
        .delete_function(&namespace, &function)
        .await
        .unwrap();
    assert!(sources.all_sources().await.unwrap().is_empty());
}
