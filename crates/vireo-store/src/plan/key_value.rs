//! The rules of key-value writes and listings: whether a store exists, what a write adds to its
//! store's totals, whether the namespace's quota admits it, and which keys a prefix covers.

use std::collections::{BTreeMap, HashMap};

use vireo_core::{KvStoreId, Name, StoreError};

/// What one write does to each key it names: a new value, or removal (`None`). A key named
/// twice in one call takes its last change.
pub(crate) type Changes<'a> = BTreeMap<&'a str, Option<&'a [u8]>>;

/// `NamespaceNotFound` or `KvStoreNotFound`, from what one snapshot said; `default` exists in
/// every namespace whether or not it has a row yet.
pub(crate) fn kv_store_found(
    store: &KvStoreId,
    namespace_exists: bool,
    store_exists: bool,
) -> Result<(), StoreError> {
    if !namespace_exists {
        return Err(StoreError::NamespaceNotFound(store.namespace.clone()));
    }
    if store_exists || store.is_default() {
        return Ok(());
    }
    Err(StoreError::KvStoreNotFound {
        namespace: store.namespace.clone(),
        store: store.store.clone(),
    })
}

/// What a write changes in its store's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct KvDelta {
    pub keys: i64,
    /// Keys (their UTF-8) plus values.
    pub bytes: i64,
}

/// The change to the totals of writing `changes` over keys whose stored values have the sizes
/// in `stored` (a key absent from it is not stored).
pub(crate) fn kv_delta(changes: &Changes<'_>, stored: &HashMap<String, i64>) -> KvDelta {
    let entry_bytes = |key: &str, value_bytes: i64| size(key.len()) + value_bytes;
    let mut delta = KvDelta::default();
    for (key, change) in changes {
        if let Some(&old) = stored.get(*key) {
            delta.keys -= 1;
            delta.bytes -= entry_bytes(key, old);
        }
        if let Some(value) = change {
            delta.keys += 1;
            delta.bytes += entry_bytes(key, size(value.len()));
        }
    }
    delta
}

/// Refuses a write that adds `added` bytes to a namespace holding `held` when that passes its
/// `max_kv_bytes` quota. A write that frees space is always admitted, even over a quota lowered
/// below what is held.
pub(crate) fn admit_kv_bytes(
    namespace: &Name,
    held: i64,
    added: i64,
    limit: u64,
) -> Result<(), StoreError> {
    if added <= 0 || i128::from(held) + i128::from(added) <= i128::from(limit) {
        return Ok(());
    }
    Err(StoreError::KvQuotaExceeded {
        namespace: namespace.clone(),
        limit,
    })
}

/// The least string after every string starting with `prefix`, in the order of their UTF-8
/// bytes (which is the order of their characters): `prefix` with its last character that has
/// a successor replaced by it and what follows dropped. The keys starting with `prefix` are
/// exactly those at or after it and before this; `None` when nothing bounds them (an empty
/// prefix, or one of only `char::MAX`).
pub(crate) fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        if let Some(next) = successor(last) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The next Unicode scalar value, skipping the surrogates.
fn successor(c: char) -> Option<char> {
    match u32::from(c) + 1 {
        0xD800 => Some('\u{E000}'),
        next => char::from_u32(next),
    }
}

/// A length, as the store's signed totals count it (no value is near 2^63 bytes).
fn size(len: usize) -> i64 {
    i64::try_from(len).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(name: &str) -> KvStoreId {
        KvStoreId::new(
            Name::default_namespace(),
            Name::parse("store", name).unwrap(),
        )
    }

    #[test]
    fn default_exists_wherever_its_namespace_does() {
        assert!(kv_store_found(&store("default"), true, false).is_ok());
        assert!(kv_store_found(&store("other"), true, true).is_ok());
        assert!(matches!(
            kv_store_found(&store("other"), true, false),
            Err(StoreError::KvStoreNotFound { .. })
        ));
        assert!(matches!(
            kv_store_found(&store("default"), false, false),
            Err(StoreError::NamespaceNotFound(_))
        ));
    }

    #[test]
    fn totals_count_keys_and_values_replaced_added_and_removed() {
        let stored = HashMap::from([("old".to_string(), 10), ("gone".to_string(), 4)]);
        let changes: Changes<'_> = BTreeMap::from([
            ("old", Some(&b"abc"[..])),
            ("gone", None),
            ("new", Some(&b"12345"[..])),
            ("never", None),
        ]);
        let delta = kv_delta(&changes, &stored);
        // old: 13 → 6; gone: −8; new: +8; never: nothing.
        assert_eq!(
            delta,
            KvDelta {
                keys: 0,
                bytes: -7 - 8 + 8
            }
        );
    }

    #[test]
    fn the_quota_refuses_only_growth_past_it() {
        let namespace = Name::default_namespace();
        assert!(admit_kv_bytes(&namespace, 90, 10, 100).is_ok());
        let refused = admit_kv_bytes(&namespace, 90, 11, 100).unwrap_err();
        assert!(matches!(
            refused,
            StoreError::KvQuotaExceeded { limit: 100, .. }
        ));
        assert!(
            admit_kv_bytes(&namespace, 500, -1, 100).is_ok(),
            "freeing space is allowed over a lowered quota"
        );
        assert!(admit_kv_bytes(&namespace, 500, 0, 100).is_ok());
        assert!(admit_kv_bytes(&namespace, i64::MAX, i64::MAX, u64::MAX).is_ok());
    }

    #[test]
    fn a_prefix_ends_before_the_first_key_it_does_not_start() {
        assert_eq!(prefix_end("user:").as_deref(), Some("user;"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end(""), None);
        assert_eq!(prefix_end("\u{10FFFF}\u{10FFFF}"), None);
        let end = prefix_end("ab").unwrap();
        for key in ["ab", "ab\0", "abz", "ab\u{10FFFF}x"] {
            assert!(key >= "ab" && key < end.as_str(), "{key:?} is in range");
        }
        for key in ["aa", "ac", "b"] {
            assert!(!(key >= "ab" && key < end.as_str()), "{key:?} is not");
        }
    }
}
