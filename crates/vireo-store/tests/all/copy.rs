//! `vireo_store::copy`: a populated SQLite store into an empty PostgreSQL database and back,
//! everything readable through the target's roles as it was through the source's, objects with
//! their bytes; a target that holds anything is refused, and so is a source whose object bytes
//! do not match their objects.

use vireo_core::{
    AliasName, AliasTarget, AsyncStatus, BucketId, KvStoreId, NamespaceQuotas, NewObject,
    SealedSecret, SecretName, encode_counter,
};
use vireo_store::conformance::support::{
    AT, NO_QUOTA, add_version, default_function, invocation_id, invocations, job, log, logs, name,
    record,
};
use vireo_store::{CopyReport, PostgresConfig, StorageConfig, Stores};

fn sqlite(dir: &tempfile::TempDir) -> StorageConfig {
    StorageConfig::Sqlite {
        path: dir.path().join("vireo.db"),
    }
}

fn postgres() -> StorageConfig {
    let url = vireo_testsvc::Postgres::shared()
        .create_database()
        .unwrap_or_else(|e| panic!("creating a test database: {e}"));
    StorageConfig::Postgres(PostgresConfig {
        max_connections: 4,
        ..PostgresConfig::new(url)
    })
}

/// A component, a function with a version, a sticky alias and a route on a claimed host, a record with two log lines, a queued
/// async invocation, a second namespace with quotas and a key-value store of its own, a key in
/// each namespace's stores, a secret, the master key's record, and a bucket with an empty
/// object, a small one and one of several PostgreSQL chunks.
async fn populate(stores: &Stores) {
    stores
        .objects
        .create_bucket(&name("default"), &name("uploads"), AT)
        .await
        .unwrap();
    for (key, bytes) in objects() {
        put_object(stores, key, bytes).await;
    }
    let sha = stores.components.put_component(b"\0asm app").await.unwrap();
    let (namespace, function) = default_function("app");
    add_version(stores, &namespace, &function, &sha).await;
    stores
        .catalog
        .set_alias(
            &namespace,
            &function,
            &AliasName::parse("prod").unwrap(),
            &sticky_prod(),
        )
        .await
        .unwrap();
    stores
        .http_routes
        .claim_host(&shop_host(), &namespace, 1)
        .await
        .unwrap();
    stores.http_routes.add_route(&shop_route()).await.unwrap();
    let ran = record(&function, 1);
    let lines = [log(&ran, 10, "first line"), log(&ran, 20, "second line")];
    stores
        .records
        .record_invocations(&[ran], &lines)
        .await
        .unwrap();
    stores
        .queue
        .enqueue(&[job(&function, 2, Some("k"))], NO_QUOTA)
        .await
        .unwrap();
    let quotas = NamespaceQuotas {
        max_functions: Some(3),
        ..NamespaceQuotas::default()
    };
    stores
        .tenants
        .create_namespace(&name("team"), &quotas, AT)
        .await
        .unwrap();
    stores
        .key_value
        .create_store(&name("team"), &name("cache"), AT)
        .await
        .unwrap();
    stores
        .key_value
        .set(&team_cache(), "page:/", b"\0<html>")
        .await
        .unwrap();
    stores
        .key_value
        .increment(&default_kv(), "hits", 41)
        .await
        .unwrap();
    let sealed = SealedSecret {
        nonce: vec![7; 24],
        ciphertext: vec![1, 2, 3],
    };
    let secret = SecretName::parse("TOKEN").unwrap();
    stores
        .secrets
        .put_secret(&namespace, &secret, &sealed, AT)
        .await
        .unwrap();
    stores
        .master_key
        .record_master_key(b"fingerprint")
        .await
        .unwrap();
}

fn team_cache() -> KvStoreId {
    KvStoreId::new(name("team"), name("cache"))
}

fn default_kv() -> KvStoreId {
    KvStoreId::new(name("default"), name("default"))
}

/// A split alias (one version, but sticky), so its split column travels too.
fn sticky_prod() -> AliasTarget {
    AliasTarget {
        sticky: Some(vireo_core::StickyKey::Header("x-user-id".into())),
        ..AliasTarget::single(1)
    }
}

fn shop_host() -> vireo_core::HostPattern {
    vireo_core::HostPattern::parse("*.shop.example").unwrap()
}

fn shop_route() -> vireo_core::HttpRoute {
    vireo_core::HttpRoute {
        namespace: name("default"),
        pattern: vireo_core::RoutePattern::parse("eu.shop.example/cart/*").unwrap(),
        function: name("app"),
        selector: vireo_core::VersionSelector::Alias(AliasName::parse("prod").unwrap()),
        invoke_auth: Some(vireo_core::InvokeAuth::Key),
        created_at_us: 2,
    }
}

/// The objects [`populate`] puts into `uploads`.
fn objects() -> [(&'static str, Vec<u8>); 3] {
    let large = (0..2_500_000_u32).map(|n| (n % 251) as u8).collect();
    [
        ("empty", Vec::new()),
        ("images/cat.png", b"\x89PNG".to_vec()),
        ("large.bin", large),
    ]
}

fn uploads() -> BucketId {
    BucketId::new(name("default"), name("uploads"))
}

async fn put_object(stores: &Stores, key: &str, bytes: Vec<u8>) {
    let body = futures::stream::iter([Ok(bytes::Bytes::from(bytes))]);
    let object = NewObject {
        content_type: "application/octet-stream".into(),
        metadata: Default::default(),
        at_us: AT,
        max_bytes: 10 << 20,
        events: vireo_core::EventBounds::outside_chains(10),
    };
    stores
        .objects
        .put_object(&uploads(), key, object, Box::pin(body))
        .await
        .unwrap();
}

async fn object_bytes(stores: &Stores, key: &str) -> Vec<u8> {
    let read = stores
        .objects
        .get_object(&uploads(), key, None)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("object {key} is missing"));
    let chunks: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(read.body).await.unwrap();
    chunks.concat()
}

/// What [`populate`] stored, read back through `stores`.
async fn assert_populated(stores: &Stores) {
    let bucket = stores.objects.bucket(&uploads()).await.unwrap();
    assert_eq!((bucket.objects, bucket.created_at_us), (3, AT));
    for (key, bytes) in objects() {
        assert!(object_bytes(stores, key).await == bytes, "{key}'s bytes");
    }
    let (namespace, function) = default_function("app");
    let prod = stores
        .catalog
        .resolve_version(
            &namespace,
            &function,
            &vireo_core::VersionSelector::Alias(AliasName::parse("prod").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(prod.version, 1);
    let split = stores
        .catalog
        .get_alias(&namespace, &function, &AliasName::parse("prod").unwrap())
        .await
        .unwrap();
    assert_eq!(split, sticky_prod());
    let routes = stores.http_routes.list_routes(None).await.unwrap();
    assert_eq!(routes, [shop_route()]);
    let claims = stores.http_routes.list_host_claims().await.unwrap();
    assert_eq!(claims[0].host, shop_host().to_string());
    let bytes = stores
        .components
        .component(&prod.component_sha256)
        .await
        .unwrap();
    assert_eq!(bytes, b"\0asm app");
    let listed = stores
        .records
        .list_invocations(&invocations(&function, None, 10))
        .await
        .unwrap();
    assert_eq!(listed, [record(&function, 1)]);
    let read: Vec<String> = stores
        .records
        .read_logs(&logs(&function))
        .await
        .unwrap()
        .into_iter()
        .map(|line| line.line)
        .collect();
    assert_eq!(read, ["first line", "second line"]);
    let queued = stores
        .queue_admin
        .get_async(&invocation_id(2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queued.status, AsyncStatus::Queued);
    let team = stores.tenants.get_namespace(&name("team")).await.unwrap();
    assert_eq!(team.quotas.max_functions, Some(3));
    let cached = stores.key_value.get(&team_cache(), "page:/").await.unwrap();
    assert_eq!(cached.as_deref(), Some(&b"\0<html>"[..]));
    let listed = stores.key_value.list_stores(&name("team")).await.unwrap();
    let cache = listed.iter().find(|s| s.name.as_str() == "cache").unwrap();
    assert_eq!((cache.keys, cache.bytes, cache.created_at_us), (1, 13, AT));
    let hits = stores.key_value.get(&default_kv(), "hits").await.unwrap();
    assert_eq!(hits.as_deref(), Some(&encode_counter(41)[..]));
    let sample = stores.secrets.sample_sealed(10).await.unwrap();
    assert_eq!(sample.total, 1);
    assert_eq!(sample.secrets[0].2.ciphertext, [1, 2, 3]);
    let recorded = stores
        .master_key
        .record_master_key(b"another")
        .await
        .unwrap();
    assert_eq!(recorded, b"fingerprint");
}

fn expected_report() -> CopyReport {
    let rows = [
        ("namespaces", 2),
        ("functions", 1),
        ("versions", 1),
        ("aliases", 1),
        ("host_claims", 1),
        ("http_routes", 1),
        ("invocations", 1),
        ("logs", 2),
        ("async_invocations", 1),
        ("idempotency_keys", 1),
        ("schedules", 0),
        ("sources", 0),
        ("api_keys", 0),
        ("secrets", 1),
        ("kv_stores", 2),
        ("kv_entries", 2),
        ("buckets", 1),
        ("objects", 3),
        ("bucket_notifications", 0),
        ("master_key", 1),
    ];
    CopyReport {
        tables: rows.iter().map(|(t, n)| (t.to_string(), *n)).collect(),
        components: 1,
        component_bytes: 8,
        objects: 3,
        object_bytes: 2_500_004,
    }
}

#[tokio::test]
async fn sqlite_copies_into_postgres_and_back_whole() {
    let (source_dir, back_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (source, cluster, back) = (sqlite(&source_dir), postgres(), sqlite(&back_dir));
    let stores = vireo_store::open(&source).await.unwrap();
    populate(&stores).await;
    stores.close().await;

    let progress = |_: vireo_store::CopyProgress<'_>| {};
    let report = vireo_store::copy(&source, &cluster, &progress)
        .await
        .unwrap();
    assert_eq!(report, expected_report());
    let copied = vireo_store::open(&cluster).await.unwrap();
    assert_populated(&copied).await;
    copied.close().await;

    let report = vireo_store::copy(&cluster, &back, &progress).await.unwrap();
    assert_eq!(report.components, 1);
    let round_trip = vireo_store::open(&back).await.unwrap();
    assert_populated(&round_trip).await;

    let copied = vireo_store::open(&cluster).await.unwrap();
    // Counters and swaps go on from the copied values and versions.
    let read = copied
        .key_value
        .get_versioned(&default_kv(), "hits")
        .await
        .unwrap();
    assert_eq!(
        copied
            .key_value
            .increment(&default_kv(), "hits", 1)
            .await
            .unwrap(),
        42
    );
    assert!(
        !copied
            .key_value
            .swap(&default_kv(), "hits", read.version, b"stale")
            .await
            .unwrap()
    );
    // Log lines written after the copy number on from the copied ones.
    let (_, function) = default_function("app");
    let later = record(&function, 3);
    copied
        .records
        .record_invocations(
            std::slice::from_ref(&later),
            &[log(&later, 30, "after the copy")],
        )
        .await
        .unwrap();
    let seqs: Vec<i64> = copied
        .records
        .read_logs(&logs(&function))
        .await
        .unwrap()
        .iter()
        .map(|line| line.seq)
        .collect();
    assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
}

#[tokio::test]
async fn a_target_that_holds_anything_is_refused_and_left_alone() {
    let (source_dir, target_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (source, target) = (sqlite(&source_dir), sqlite(&target_dir));
    populate(&vireo_store::open(&source).await.unwrap()).await;
    let existing = vireo_store::open(&target).await.unwrap();
    let (namespace, function) = default_function("kept");
    add_version(&existing, &namespace, &function, "ab").await;

    let refused = vireo_store::copy(&source, &target, &|_| {})
        .await
        .unwrap_err();
    let message = refused.to_string();
    assert!(
        message.contains("already holds data (functions: 1, versions: 1)"),
        "{message}"
    );
    let functions = existing.catalog.list_functions(&namespace).await.unwrap();
    assert_eq!(
        functions.len(),
        1,
        "the target keeps what it had and gains nothing"
    );
}

#[tokio::test]
async fn object_bytes_that_do_not_match_their_object_fail_the_copy() {
    let (source_dir, target_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (source, target) = (sqlite(&source_dir), sqlite(&target_dir));
    let stores = vireo_store::open(&source).await.unwrap();
    populate(&stores).await;
    stores.close().await;
    // Damage the small object's file, keeping its length.
    let files = std::fs::read_dir(source_dir.path().join(vireo_store::OBJECTS_DIR)).unwrap();
    let damaged = files
        .map(|entry| entry.unwrap().path())
        .find(|path| std::fs::metadata(path).unwrap().len() == 4)
        .expect("the small object's file");
    std::fs::write(&damaged, b"GIF8").unwrap();

    let refused = vireo_store::copy(&source, &target, &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(refused.contains("the source store is damaged"), "{refused}");
    let copied = vireo_store::open(&target).await.unwrap();
    assert!(
        copied
            .objects
            .list_buckets(&name("default"))
            .await
            .unwrap()
            .is_empty(),
        "nothing was copied"
    );
    let left: Vec<_> = std::fs::read_dir(target_dir.path().join(vireo_store::OBJECTS_DIR))
        .unwrap()
        .collect();
    assert!(
        left.is_empty(),
        "the target's next opening removed the bytes no object names"
    );
}
