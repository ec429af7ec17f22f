//! Key-value stores: every operation, paging under concurrent writes, increments and swaps that
//! race, the namespace quota, isolation between namespaces, and the totals each store keeps.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::join_all;
use vireo_core::{
    KeyValueStore, KvCursor, KvStoreId, KvVersion, Name, NamespaceQuotas, StoreError,
    encode_counter,
};

use super::support::{AT, assert_err, name};
use crate::Stores;

/// Concurrent tasks and increments each, in the increment races.
pub const INCREMENT_TASKS: usize = 8;
pub const INCREMENTS_PER_TASK: usize = 200;

/// The store `store` of the namespace `namespace`.
pub fn kv_store(namespace: &str, store: &str) -> KvStoreId {
    KvStoreId::new(name(namespace), name(store))
}

/// The `default` store of the `default` namespace.
pub fn default_store() -> KvStoreId {
    kv_store("default", "default")
}

/// Every key of the store with its value, read page by page.
async fn contents(kv: &dyn KeyValueStore, store: &KvStoreId) -> BTreeMap<String, Vec<u8>> {
    let keys = all_keys(kv, store, "", 1000).await;
    let values = kv.get_many(store, &keys).await.unwrap();
    keys.into_iter()
        .zip(values)
        .map(|(key, value)| (key, value.expect("a listed key has a value")))
        .collect()
}

async fn all_keys(
    kv: &dyn KeyValueStore,
    store: &KvStoreId,
    prefix: &str,
    page: u32,
) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = None;
    loop {
        let listed = kv
            .list_keys(store, prefix, cursor.as_ref(), page)
            .await
            .unwrap();
        keys.extend(listed.keys);
        match listed.cursor {
            Some(next) => cursor = Some(next),
            None => return keys,
        }
    }
}

/// The store's totals as listed: (keys, bytes).
async fn totals(stores: &Stores, store: &KvStoreId) -> (u64, u64) {
    let listed = stores
        .key_value
        .list_stores(&store.namespace)
        .await
        .unwrap();
    let info = listed
        .iter()
        .find(|info| info.name == store.store)
        .unwrap_or_else(|| panic!("{store} is listed"));
    (info.keys, info.bytes)
}

/// What the totals must be for what the store holds.
fn counted(contents: &BTreeMap<String, Vec<u8>>) -> (u64, u64) {
    let bytes = contents
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>();
    (contents.len() as u64, bytes as u64)
}

async fn namespace_with_quota(stores: &Stores, namespace: &str, max_kv_bytes: Option<u64>) {
    let quotas = NamespaceQuotas {
        max_kv_bytes,
        ..NamespaceQuotas::default()
    };
    stores
        .tenants
        .create_namespace(&name(namespace), &quotas, AT)
        .await
        .unwrap();
}

pub(super) async fn keys_are_set_read_checked_and_deleted(stores: &Stores) {
    let (kv, store) = (stores.key_value.as_ref(), default_store());
    assert_eq!(kv.get(&store, "greeting").await.unwrap(), None);
    assert!(!kv.exists(&store, "greeting").await.unwrap());
    kv.set(&store, "greeting", b"hello").await.unwrap();
    assert_eq!(kv.get(&store, "greeting").await.unwrap().unwrap(), b"hello");
    assert!(kv.exists(&store, "greeting").await.unwrap());
    kv.set(&store, "greeting", b"\0binary\xff").await.unwrap();
    assert_eq!(
        kv.get(&store, "greeting").await.unwrap().unwrap(),
        b"\0binary\xff",
        "an overwrite replaces, bytes kept exactly"
    );
    kv.set(&store, "empty", b"").await.unwrap();
    assert_eq!(kv.get(&store, "empty").await.unwrap().unwrap(), b"");
    assert!(kv.delete(&store, "greeting").await.unwrap(), "it existed");
    assert!(
        !kv.delete(&store, "greeting").await.unwrap(),
        "now it does not"
    );
    assert_eq!(kv.get(&store, "greeting").await.unwrap(), None);
    assert!(!kv.exists(&store, "greeting").await.unwrap());
}

pub(super) async fn stores_are_created_listed_and_deleted_with_their_keys(stores: &Stores) {
    let kv = stores.key_value.as_ref();
    let ns = Name::default_namespace();
    let listed = kv.list_stores(&ns).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["default"], "default exists without being created");
    assert_eq!((listed[0].keys, listed[0].bytes), (0, 0));
    let namespace_created = stores
        .tenants
        .get_namespace(&ns)
        .await
        .unwrap()
        .created_at_us;
    assert_eq!(listed[0].created_at_us, namespace_created);

    let sessions = name("sessions");
    let created = kv.create_store(&ns, &sessions, AT).await.unwrap();
    assert_eq!(
        (
            created.name.as_str(),
            created.keys,
            created.bytes,
            created.created_at_us
        ),
        ("sessions", 0, 0, AT)
    );
    assert_err!(
        kv.create_store(&ns, &sessions, AT).await,
        StoreError::KvStoreExists { .. }
    );
    assert_err!(
        kv.create_store(&ns, &Name::default_kv_store(), AT).await,
        StoreError::KvStoreExists { .. }
    );
    kv.create_store(&ns, &name("archive"), AT + 1)
        .await
        .unwrap();
    let names: Vec<String> = kv
        .list_stores(&ns)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["archive", "default", "sessions"], "by name");
    for (namespace, store, exists) in [
        ("default", "sessions", true),
        ("default", "default", true),
        ("default", "nothing", false),
        ("nowhere", "default", false),
    ] {
        let found = kv.store_exists(&kv_store(namespace, store)).await.unwrap();
        assert_eq!(found, exists, "{namespace}/{store} exists: {exists}");
    }

    let store = KvStoreId::new(ns.clone(), sessions.clone());
    kv.set(&store, "user:1", b"one").await.unwrap();
    let refused = kv.delete_store(&ns, &Name::default_kv_store()).await;
    assert_err!(refused, StoreError::KvDefaultStore { .. });
    kv.delete_store(&ns, &sessions).await.unwrap();
    assert_err!(
        kv.delete_store(&ns, &sessions).await,
        StoreError::KvStoreNotFound { .. }
    );
    kv.create_store(&ns, &sessions, AT + 2).await.unwrap();
    assert_eq!(
        kv.get(&store, "user:1").await.unwrap(),
        None,
        "the keys went with the store"
    );
    assert_eq!(totals(stores, &store).await, (0, 0));
}

pub(super) async fn unknown_stores_and_namespaces_are_reported_by_every_operation(stores: &Stores) {
    let kv = stores.key_value.as_ref();
    let missing = kv_store("default", "missing");
    macro_rules! refused_by_all {
        ($store:expr, $pattern:pat) => {
            let store = &$store;
            assert_err!(kv.get(store, "k").await, $pattern);
            assert_err!(kv.set(store, "k", b"v").await, $pattern);
            assert_err!(kv.delete(store, "k").await, $pattern);
            assert_err!(kv.exists(store, "k").await, $pattern);
            assert_err!(kv.list_keys(store, "", None, 10).await, $pattern);
            assert_err!(kv.increment(store, "k", 1).await, $pattern);
            assert_err!(kv.get_versioned(store, "k").await, $pattern);
            assert_err!(kv.swap(store, "k", KvVersion::ABSENT, b"v").await, $pattern);
            assert_err!(kv.get_many(store, &["k".to_string()]).await, $pattern);
            assert_err!(
                kv.set_many(store, &[("k".to_string(), b"v".to_vec())])
                    .await,
                $pattern
            );
            assert_err!(kv.delete_many(store, &["k".to_string()]).await, $pattern);
        };
    }
    refused_by_all!(missing, StoreError::KvStoreNotFound { .. });
    refused_by_all!(
        kv_store("nowhere", "default"),
        StoreError::NamespaceNotFound(_)
    );
    let nowhere = name("nowhere");
    assert_err!(
        kv.list_stores(&nowhere).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        kv.create_store(&nowhere, &name("s"), AT).await,
        StoreError::NamespaceNotFound(_)
    );
    assert_err!(
        kv.delete_store(&nowhere, &name("s")).await,
        StoreError::NamespaceNotFound(_)
    );
    let names: Vec<String> = kv
        .list_stores(&Name::default_namespace())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["default"], "no refused write created a store");
}

pub(super) async fn keys_list_in_byte_order_by_prefix_in_pages(stores: &Stores) {
    let (kv, store) = (stores.key_value.as_ref(), default_store());
    let keys = [
        "user:2", "user:10", "User:1", "user;", "user", "usés", "user:é", "a",
    ];
    for key in keys {
        kv.set(&store, key, key.as_bytes()).await.unwrap();
    }
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort_unstable();
    assert_eq!(
        all_keys(kv, &store, "", 3).await,
        sorted,
        "every key, byte order"
    );
    assert_eq!(
        all_keys(kv, &store, "user:", 2).await,
        ["user:10", "user:2", "user:é"],
        "only the prefix, uppercase and neighbours left out"
    );
    assert_eq!(
        all_keys(kv, &store, "nothing", 10).await,
        Vec::<String>::new()
    );

    let first = kv.list_keys(&store, "user", None, 2).await.unwrap();
    assert_eq!(first.keys, ["user", "user:10"]);
    let cursor = first.cursor.expect("more follow");
    let text = cursor.to_string();
    let second = kv
        .list_keys(&store, "user", Some(&KvCursor::parse(&text).unwrap()), 10)
        .await
        .unwrap();
    assert_eq!(second.keys, ["user:2", "user:é", "user;"]);
    assert_eq!(second.cursor, None, "the last page says so");
    let exact = kv.list_keys(&store, "user:", None, 3).await.unwrap();
    assert_eq!(exact.keys.len(), 3);
    assert_eq!(exact.cursor, None, "a full last page has no cursor either");
    let one = kv.list_keys(&store, "", None, 0).await.unwrap();
    assert_eq!(one.keys, ["User:1"], "a limit of 0 lists one key");
}

/// 1,000 keys listed 100 at a time while other keys are written and deleted around them, by a
/// writer running alongside and between the pages: each of the 1,000 is listed exactly once.
pub(super) async fn a_listing_pages_each_lasting_key_once_under_concurrent_writes(stores: &Stores) {
    let (kv, store) = (stores.key_value.as_ref(), default_store());
    let lasting: Vec<String> = (0..1000).map(|n| format!("key-{n:04}")).collect();
    let entries: Vec<(String, Vec<u8>)> = lasting
        .iter()
        .map(|key| (key.clone(), b"v".to_vec()))
        .collect();
    kv.set_many(&store, &entries).await.unwrap();

    let listing_done = AtomicBool::new(false);
    // Writes keys between the lasting ones (`key-0123-x`), before and after wherever the
    // listing is, and deletes them again.
    let churn = async {
        let mut writes = 0u32;
        for round in 0..20_000u32 {
            if listing_done.load(Ordering::Acquire) {
                break;
            }
            let key = format!("key-{:04}-x", (round * 37) % 1000);
            if round % 3 == 2 {
                kv.delete(&store, &key).await.unwrap();
            } else {
                kv.set(&store, &key, b"churn").await.unwrap();
            }
            writes += 1;
            tokio::task::yield_now().await;
        }
        writes
    };
    let listing = async {
        let mut seen = Vec::new();
        let mut cursor: Option<KvCursor> = None;
        let mut pages = 0;
        loop {
            let page = kv
                .list_keys(&store, "key-", cursor.as_ref(), 100)
                .await
                .unwrap();
            pages += 1;
            seen.extend(page.keys);
            // Between pages, keys just behind and just ahead of the cursor come and go.
            if let Some(last) = seen.last() {
                kv.set(&store, &format!("{last}-a"), b"behind")
                    .await
                    .unwrap();
                kv.delete(&store, &format!("{last}-a")).await.unwrap();
                kv.set(&store, &format!("{last}-b"), b"ahead")
                    .await
                    .unwrap();
            }
            match page.cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
            tokio::task::yield_now().await;
        }
        listing_done.store(true, Ordering::Release);
        (seen, pages)
    };
    let ((seen, pages), writes) = tokio::join!(listing, churn);
    assert!(writes > 0, "the writer ran during the listing");
    assert!(pages >= 10, "{pages} pages");
    let lasting_seen: Vec<&String> = seen.iter().filter(|key| key.len() == 8).collect();
    assert_eq!(
        lasting_seen,
        lasting.iter().collect::<Vec<_>>(),
        "each lasting key once, in order"
    );
    let distinct: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "no key listed twice");
}

pub(super) async fn concurrent_increments_never_lose_one(stores: &Stores) {
    let (kv, store) = (stores.key_value.as_ref(), default_store());
    let tasks = (0..INCREMENT_TASKS).map(|_| async {
        for _ in 0..INCREMENTS_PER_TASK {
            kv.increment(&store, "hits", 1).await.unwrap();
        }
    });
    join_all(tasks).await;
    let total = (INCREMENT_TASKS * INCREMENTS_PER_TASK) as i64;
    assert_eq!(kv.increment(&store, "hits", 0).await.unwrap(), total);
    assert_eq!(
        kv.get(&store, "hits").await.unwrap().unwrap(),
        encode_counter(total),
        "stored as 8 little-endian bytes"
    );
}

/// Writes made at once are committed together, yet each succeeds or fails on its own: a
/// failing write beside them (not a counter, an unknown store or namespace) takes nothing with
/// it, and later writes of a store see the earlier ones.
pub(super) async fn writes_at_once_succeed_or_fail_each_on_its_own(stores: &Stores) {
    let kv = stores.key_value.as_ref();
    let (default, other) = (default_store(), kv_store("default", "other"));
    kv.create_store(&other.namespace, &other.store, AT)
        .await
        .unwrap();
    kv.set(&default, "text", b"not a counter").await.unwrap();
    let sets = (0..50).map(|i| {
        let (default, other) = (&default, &other);
        async move {
            let key = format!("k{i}");
            kv.set(default, &key, key.as_bytes()).await.unwrap();
            kv.set(other, &key, b"o").await.unwrap();
            kv.increment(default, "hits", 1).await.unwrap()
        }
    });
    let missing_store = kv_store("default", "missing");
    let missing_namespace = kv_store("nowhere", "default");
    let (counters, not_a_counter, no_store, no_namespace) = tokio::join!(
        join_all(sets),
        kv.increment(&default, "text", 1),
        kv.set(&missing_store, "k", b"v"),
        kv.set(&missing_namespace, "k", b"v"),
    );
    let counters: BTreeSet<i64> = counters.into_iter().collect();
    assert_eq!(
        counters,
        (1..=50).collect(),
        "each increment saw the ones before"
    );
    assert_err!(not_a_counter, StoreError::KvNotACounter { .. });
    assert_err!(no_store, StoreError::KvStoreNotFound { .. });
    assert_err!(no_namespace, StoreError::NamespaceNotFound(_));
    let written = contents(kv, &default).await;
    assert_eq!(written.len(), 52, "50 keys, hits and text");
    assert_eq!(written["k7"], b"k7");
    assert_eq!(written["text"], b"not a counter");
    assert_eq!(contents(kv, &other).await.len(), 50);
    assert_eq!(totals(stores, &default).await, counted(&written));
}

/// What Spin's own store does: a counter written with `set` as 8 little-endian bytes
/// increments; a missing key starts at 0; anything else is an error that changes nothing.
pub(super) async fn increments_read_counters_as_spin_stores_them(stores: &Stores) {
    let (kv, store) = (stores.key_value.as_ref(), default_store());
    assert_eq!(kv.increment(&store, "fresh", -3).await.unwrap(), -3);
    kv.set(&store, "set", &encode_counter(40)).await.unwrap();
    assert_eq!(kv.increment(&store, "set", 2).await.unwrap(), 42);
    kv.set(&store, "text", b"42").await.unwrap();
    assert_err!(
        kv.increment(&store, "text", 1).await,
        StoreError::KvNotACounter { ref key, .. } if key == "text"
    );
    assert_eq!(kv.get(&store, "text").await.unwrap().unwrap(), b"42");
    kv.set(&store, "max", &encode_counter(i64::MAX))
        .await
        .unwrap();
    assert_err!(
        kv.increment(&store, "max", 1).await,
        StoreError::KvCounterOverflow { .. }
    );
    assert_eq!(
        kv.get(&store, "max").await.unwrap().unwrap(),
        encode_counter(i64::MAX)
    );
}

pub(super) async fn of_two_racing_swaps_exactly_one_wins(stores: &Stores) {
    let (kv, store) = (stores.key_value.as_ref(), default_store());
    kv.set(&store, "doc", b"v1").await.unwrap();
    let read = kv.get_versioned(&store, "doc").await.unwrap();
    assert_eq!(read.value.as_deref(), Some(&b"v1"[..]));
    let (left, right) = tokio::join!(
        kv.swap(&store, "doc", read.version, b"left"),
        kv.swap(&store, "doc", read.version, b"right"),
    );
    let (left, right) = (left.unwrap(), right.unwrap());
    assert!(left ^ right, "exactly one wins: {left} {right}");
    let winner: &[u8] = if left { b"left" } else { b"right" };
    assert_eq!(kv.get(&store, "doc").await.unwrap().unwrap(), winner);
    // The loser reads again and retries.
    let reread = kv.get_versioned(&store, "doc").await.unwrap();
    assert_ne!(reread.version, read.version);
    assert!(
        kv.swap(&store, "doc", reread.version, b"retried")
            .await
            .unwrap()
    );
    assert_eq!(kv.get(&store, "doc").await.unwrap().unwrap(), b"retried");
}

pub(super) async fn a_swap_fails_after_any_write_even_back_to_the_same_value(stores: &Stores) {
    let (kv, store) = (stores.key_value.as_ref(), default_store());
    let absent = kv.get_versioned(&store, "new").await.unwrap();
    assert_eq!((absent.value, absent.version), (None, KvVersion::ABSENT));
    assert!(
        kv.swap(&store, "new", KvVersion::ABSENT, b"first")
            .await
            .unwrap()
    );
    assert!(
        !kv.swap(&store, "new", KvVersion::ABSENT, b"second")
            .await
            .unwrap(),
        "created meanwhile"
    );
    let read = kv.get_versioned(&store, "new").await.unwrap();
    kv.delete(&store, "new").await.unwrap();
    kv.set(&store, "new", b"first").await.unwrap();
    assert!(
        !kv.swap(&store, "new", read.version, b"stale")
            .await
            .unwrap(),
        "deleted and written again with the same value is still a change"
    );
    kv.set(&store, "other", b"x").await.unwrap();
    let read = kv.get_versioned(&store, "new").await.unwrap();
    kv.set(&store, "other", b"y").await.unwrap();
    assert!(
        kv.swap(&store, "new", read.version, b"fine").await.unwrap(),
        "a write to another key is no change to this one"
    );
    assert_eq!(kv.get(&store, "new").await.unwrap().unwrap(), b"fine");
}

pub(super) async fn batches_read_and_write_many_keys_at_once(stores: &Stores) {
    let (kv, store) = (stores.key_value.as_ref(), default_store());
    let entries = [
        ("a".to_string(), b"1".to_vec()),
        ("b".to_string(), b"2".to_vec()),
        ("a".to_string(), b"3".to_vec()),
    ];
    kv.set_many(&store, &entries).await.unwrap();
    let asked = ["b", "missing", "a", "b"].map(String::from);
    assert_eq!(
        kv.get_many(&store, &asked).await.unwrap(),
        [
            Some(b"2".to_vec()),
            None,
            Some(b"3".to_vec()),
            Some(b"2".to_vec())
        ],
        "in the order asked; a key given twice took its last value"
    );
    assert_eq!(
        kv.get_many(&store, &[]).await.unwrap(),
        Vec::<Option<Vec<u8>>>::new()
    );
    kv.delete_many(&store, &["a".to_string(), "missing".to_string()])
        .await
        .unwrap();
    assert_eq!(
        contents(kv, &store).await,
        BTreeMap::from([("b".to_string(), b"2".to_vec())])
    );
    kv.set_many(&store, &[]).await.unwrap();
    kv.delete_many(&store, &[]).await.unwrap();
    assert_eq!(totals(stores, &store).await, (1, 2));
}

/// More keys in one batch than one query may bind parameters for (SQLite numbers them up to
/// 32,766; a stored key takes five): written, counted and deleted whole.
pub(super) async fn a_batch_of_thousands_of_keys_is_written_whole(stores: &Stores) {
    const KEYS: usize = 7_000;
    let (kv, store) = (stores.key_value.as_ref(), default_store());
    let entries: Vec<(String, Vec<u8>)> = (0..KEYS)
        .map(|i| (format!("key-{i:05}"), i.to_string().into_bytes()))
        .collect();
    kv.set_many(&store, &entries).await.unwrap();
    let written = contents(kv, &store).await;
    assert_eq!(written, entries.iter().cloned().collect::<BTreeMap<_, _>>());
    assert_eq!(totals(stores, &store).await, counted(&written));
    let keys: Vec<String> = entries.into_iter().map(|(key, _)| key).collect();
    kv.delete_many(&store, &keys).await.unwrap();
    assert!(contents(kv, &store).await.is_empty());
    assert_eq!(totals(stores, &store).await, (0, 0));
}

pub(super) async fn store_totals_count_keys_and_bytes_exactly(stores: &Stores) {
    let kv = stores.key_value.as_ref();
    let ns = Name::default_namespace();
    kv.create_store(&ns, &name("counted"), AT).await.unwrap();
    let store = kv_store("default", "counted");
    let check = |step: &'static str| {
        let store = store.clone();
        async move {
            let held = contents(kv, &store).await;
            assert_eq!(totals(stores, &store).await, counted(&held), "after {step}");
        }
    };
    kv.set(&store, "alpha", b"12345").await.unwrap();
    kv.set(&store, "ключ", b"").await.unwrap();
    check("sets").await;
    assert_eq!(totals(stores, &store).await, (2, 5 + 5 + 8));
    kv.set(&store, "alpha", b"1").await.unwrap();
    check("a smaller overwrite").await;
    kv.set(&store, "alpha", &[7; 300]).await.unwrap();
    check("a larger overwrite").await;
    kv.delete(&store, "ключ").await.unwrap();
    kv.delete(&store, "never").await.unwrap();
    check("deletes").await;
    let entries: Vec<(String, Vec<u8>)> = (0..10)
        .map(|n| (format!("many-{n}"), vec![n; n as usize]))
        .chain([("alpha".to_string(), b"again".to_vec())])
        .collect();
    kv.set_many(&store, &entries).await.unwrap();
    check("set_many").await;
    kv.delete_many(&store, &["many-1", "many-2", "nope"].map(String::from))
        .await
        .unwrap();
    check("delete_many").await;
    kv.increment(&store, "count", 5).await.unwrap();
    kv.increment(&store, "count", 5).await.unwrap();
    check("increments").await;
    let read = kv.get_versioned(&store, "alpha").await.unwrap();
    assert!(
        kv.swap(&store, "alpha", read.version, b"swapped!")
            .await
            .unwrap()
    );
    check("a swap").await;
    assert_eq!(
        totals(stores, &kv_store("default", "default")).await,
        (0, 0),
        "other stores untouched"
    );
}

pub(super) async fn the_namespace_quota_refuses_growth_and_deleting_frees_it(stores: &Stores) {
    let kv = stores.key_value.as_ref();
    namespace_with_quota(stores, "capped", Some(100)).await;
    let (first, second) = (kv_store("capped", "default"), kv_store("capped", "second"));
    kv.create_store(&name("capped"), &name("second"), AT)
        .await
        .unwrap();
    // "a" and 49 bytes: 50 of the 100.
    kv.set(&first, "a", &[1; 49]).await.unwrap();
    kv.set(&second, "b", &[2; 49]).await.unwrap();
    let refused = kv.set(&second, "c", b"").await;
    assert_err!(
        refused,
        StoreError::KvQuotaExceeded { ref namespace, limit: 100 } if namespace.as_str() == "capped"
    );
    assert_err!(
        kv.set_many(&first, &[("d".into(), vec![]), ("e".into(), vec![])])
            .await,
        StoreError::KvQuotaExceeded { .. }
    );
    assert_err!(
        kv.increment(&first, "n", 1).await,
        StoreError::KvQuotaExceeded { .. }
    );
    assert_err!(
        kv.swap(&first, "n", KvVersion::ABSENT, b"x").await,
        StoreError::KvQuotaExceeded { .. }
    );
    assert_err!(
        kv.set(&first, "a", &[1; 50]).await,
        StoreError::KvQuotaExceeded { .. }
    );
    for (store, key) in [(&second, "c"), (&first, "d"), (&first, "e"), (&first, "n")] {
        assert!(
            !kv.exists(store, key).await.unwrap(),
            "{key} was not written"
        );
    }
    assert_eq!(kv.get(&first, "a").await.unwrap().unwrap(), [1; 49]);
    assert_eq!(totals(stores, &first).await, (1, 50));
    assert_eq!(totals(stores, &second).await, (1, 50));

    kv.set(&first, "a", &[1; 9]).await.unwrap();
    kv.set(&second, "c", &[3; 39]).await.unwrap();
    assert_err!(
        kv.set(&second, "d", b"").await,
        StoreError::KvQuotaExceeded { .. }
    );
    kv.delete(&second, "b").await.unwrap();
    kv.set(&second, "d", &[4; 49]).await.unwrap();
    kv.delete_store(&name("capped"), &name("second"))
        .await
        .unwrap();
    kv.set(&first, "z", &[5; 89]).await.unwrap();
    assert_eq!(
        totals(stores, &first).await,
        (2, 100),
        "exactly at the quota"
    );

    // A quota lowered below what is held still lets writes free space.
    stores
        .tenants
        .set_quotas(
            &name("capped"),
            &NamespaceQuotas {
                max_kv_bytes: Some(10),
                ..NamespaceQuotas::default()
            },
        )
        .await
        .unwrap();
    kv.set(&first, "z", b"").await.unwrap();
    assert_err!(
        kv.set(&first, "y", b"").await,
        StoreError::KvQuotaExceeded { .. }
    );
    assert!(kv.delete(&first, "a").await.unwrap());
    kv.set(&first, "y", b"").await.unwrap();
    assert_eq!(totals(stores, &first).await, (2, 2));
    // Without a quota, nothing is refused.
    kv.set(&default_store(), "big", &[0; 10_000]).await.unwrap();
}

pub(super) async fn namespaces_never_see_each_others_keys(stores: &Stores) {
    let kv = stores.key_value.as_ref();
    for namespace in ["team-a", "team-b"] {
        namespace_with_quota(stores, namespace, None).await;
        kv.create_store(&name(namespace), &name("shared"), AT)
            .await
            .unwrap();
    }
    let (a, b) = (kv_store("team-a", "shared"), kv_store("team-b", "shared"));
    let (a_default, b_default) = (kv_store("team-a", "default"), kv_store("team-b", "default"));
    kv.set(&a, "key", b"a's").await.unwrap();
    kv.set(&a_default, "key", b"a's default").await.unwrap();
    kv.set(&b, "other", b"b's").await.unwrap();
    assert_eq!(kv.get(&b, "key").await.unwrap(), None);
    assert!(!kv.exists(&b, "key").await.unwrap());
    assert_eq!(kv.get(&b_default, "key").await.unwrap(), None);
    assert_eq!(all_keys(kv, &b, "", 10).await, ["other"]);
    assert_eq!(
        kv.get_many(&b, &["key".to_string()]).await.unwrap(),
        [None::<Vec<u8>>]
    );
    assert!(!kv.delete(&b, "key").await.unwrap());
    kv.delete_many(&b, &["key".to_string()]).await.unwrap();
    assert_eq!(kv.increment(&b, "n", 1).await.unwrap(), 1);
    assert_eq!(kv.get(&a, "key").await.unwrap().unwrap(), b"a's");
    assert_eq!(
        kv.get(&a_default, "key").await.unwrap().unwrap(),
        b"a's default"
    );
    assert_eq!(kv.get(&a, "n").await.unwrap(), None);
    kv.set(&b, "key", b"b's now").await.unwrap();
    assert_eq!(kv.get(&a, "key").await.unwrap().unwrap(), b"a's");
    kv.delete_store(&name("team-b"), &name("shared"))
        .await
        .unwrap();
    assert_eq!(all_keys(kv, &a, "", 10).await, ["key"]);
    assert_eq!(totals(stores, &a).await, (1, 6));
    assert_eq!(
        kv.list_stores(&Name::default_namespace())
            .await
            .unwrap()
            .len(),
        1,
        "the default namespace has only its own default"
    );
}

pub(super) async fn deleting_a_namespace_deletes_its_stores_and_keys(stores: &Stores) {
    let kv = stores.key_value.as_ref();
    namespace_with_quota(stores, "doomed", None).await;
    let ns = name("doomed");
    kv.create_store(&ns, &name("cache"), AT).await.unwrap();
    kv.set(&kv_store("doomed", "cache"), "k", b"v")
        .await
        .unwrap();
    kv.set(&kv_store("doomed", "default"), "k", b"v")
        .await
        .unwrap();
    stores.tenants.delete_namespace(&ns, AT).await.unwrap();
    assert_err!(kv.list_stores(&ns).await, StoreError::NamespaceNotFound(_));
    namespace_with_quota(stores, "doomed", None).await;
    let listed = kv.list_stores(&ns).await.unwrap();
    assert_eq!(listed.len(), 1, "only the default, which is new");
    assert_eq!((listed[0].keys, listed[0].bytes), (0, 0));
    assert_eq!(
        kv.get(&kv_store("doomed", "default"), "k").await.unwrap(),
        None
    );
    assert_err!(
        kv.get(&kv_store("doomed", "cache"), "k").await,
        StoreError::KvStoreNotFound { .. }
    );
}
