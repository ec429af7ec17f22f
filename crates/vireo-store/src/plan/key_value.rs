//! The rules of key-value writes and listings: whether a store exists, what a batch of writes
//! does to a store and its totals, whether the namespace's quota admits each, and which keys a
//! prefix covers.

use std::collections::{BTreeMap, HashMap};

use vireo_core::{KvStoreId, KvVersion, Name, StoreError, decode_counter, encode_counter};

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

/// What writes change in their store's totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct KvDelta {
    pub keys: i64,
    /// Keys (their UTF-8) plus values.
    pub bytes: i64,
}

impl KvDelta {
    fn add(&mut self, other: KvDelta) {
        self.keys += other.keys;
        self.bytes += other.bytes;
    }
}

/// One write a caller asked of a store; each is applied whole or not at all.
#[derive(Debug)]
pub(crate) enum KvWrite {
    /// `set` and `set_many`.
    Put(Vec<(String, Vec<u8>)>),
    /// `delete` and `delete_many`.
    Delete(Vec<String>),
    Increment {
        key: String,
        delta: i64,
    },
    Swap {
        key: String,
        expected: KvVersion,
        value: Vec<u8>,
    },
}

impl KvWrite {
    /// The keys the write reads or changes.
    pub(crate) fn keys(&self) -> Vec<&str> {
        match self {
            KvWrite::Put(entries) => entries.iter().map(|(key, _)| key.as_str()).collect(),
            KvWrite::Delete(keys) => keys.iter().map(String::as_str).collect(),
            KvWrite::Increment { key, .. } | KvWrite::Swap { key, .. } => vec![key.as_str()],
        }
    }

    /// The key whose stored value (not only its size) the write needs.
    pub(crate) fn reads_value(&self) -> Option<&str> {
        match self {
            KvWrite::Increment { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KvWritten {
    /// A put or delete; whether any key it named was stored before it.
    Done { existed: bool },
    /// An increment; the counter's new value.
    Counter(i64),
    /// A swap; whether the key still had the expected version (else nothing was written).
    Swapped(bool),
}

/// A key as stored before the batch: its value's size and the revision that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StoredKey {
    pub value_bytes: i64,
    pub revision: i64,
}

/// A namespace's `max_kv_bytes` and the bytes its stores hold, as writes in a batch add to them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KvQuota {
    pub limit: Option<u64>,
    pub held: i64,
}

/// The writes of one batch to one store, applied in order to what the store held before the
/// batch plus what earlier writes of the batch changed. Every key written is stamped with the
/// batch's revision, which is higher than any the store had, so a swap that read a version
/// before the batch fails if an earlier write of the batch changed its key.
#[derive(Debug)]
pub(crate) struct StoreBatch {
    store: KvStoreId,
    revision: i64,
    stored: HashMap<String, StoredKey>,
    /// Values of the keys that writes need read, as stored before the batch.
    values: HashMap<String, Vec<u8>>,
    changed: BTreeMap<String, Option<Vec<u8>>>,
    delta: KvDelta,
}

impl StoreBatch {
    pub(crate) fn new(
        store: KvStoreId,
        revision: i64,
        stored: HashMap<String, StoredKey>,
        values: HashMap<String, Vec<u8>>,
    ) -> Self {
        Self {
            store,
            revision,
            stored,
            values,
            changed: BTreeMap::new(),
            delta: KvDelta::default(),
        }
    }

    /// Applies `write` unless it fails (not a counter, an overflow, the quota), in which case
    /// the batch is as it was.
    pub(crate) fn apply(
        &mut self,
        write: KvWrite,
        quota: &mut KvQuota,
    ) -> Result<KvWritten, StoreError> {
        let (changes, written) = match write {
            KvWrite::Put(entries) => {
                let existed = entries.iter().any(|(key, _)| self.is_stored(key));
                let changes = entries
                    .into_iter()
                    .map(|(key, value)| (key, Some(value)))
                    .collect();
                (changes, KvWritten::Done { existed })
            }
            KvWrite::Delete(keys) => {
                let existed = keys.iter().any(|key| self.is_stored(key));
                let changes = keys.into_iter().map(|key| (key, None)).collect();
                (changes, KvWritten::Done { existed })
            }
            KvWrite::Increment { key, delta } => {
                let counter = self.counter(&key)?.checked_add(delta).ok_or_else(|| {
                    StoreError::KvCounterOverflow {
                        namespace: self.store.namespace.clone(),
                        store: self.store.store.clone(),
                        key: key.clone(),
                    }
                })?;
                let value = encode_counter(counter).to_vec();
                (vec![(key, Some(value))], KvWritten::Counter(counter))
            }
            KvWrite::Swap {
                key,
                expected,
                value,
            } => {
                if self.version(&key) != expected {
                    return Ok(KvWritten::Swapped(false));
                }
                (vec![(key, Some(value))], KvWritten::Swapped(true))
            }
        };
        // A key named twice in one write takes its last change.
        let changes: BTreeMap<String, Option<Vec<u8>>> = changes.into_iter().collect();
        let delta = self.delta_of(&changes);
        if let Some(limit) = quota.limit {
            admit_kv_bytes(&self.store.namespace, quota.held, delta.bytes, limit)?;
        }
        quota.held += delta.bytes;
        self.delta.add(delta);
        self.changed.extend(changes);
        Ok(written)
    }

    /// What the batch leaves to write: the keys to store with their values, the keys to
    /// delete, the batch's revision and the change to the store's totals.
    pub(crate) fn finish(self) -> KvBatchWrites {
        let mut writes = KvBatchWrites {
            revision: self.revision,
            delta: self.delta,
            ..KvBatchWrites::default()
        };
        for (key, change) in self.changed {
            match change {
                Some(value) => writes.puts.push((key, value)),
                None if self.stored.contains_key(&key) => writes.deletes.push(key),
                None => {}
            }
        }
        writes
    }

    /// The size of the key's value as the batch has it so far, if stored.
    fn value_bytes(&self, key: &str) -> Option<i64> {
        match self.changed.get(key) {
            Some(change) => change.as_ref().map(|value| size(value.len())),
            None => self.stored.get(key).map(|stored| stored.value_bytes),
        }
    }

    fn is_stored(&self, key: &str) -> bool {
        self.value_bytes(key).is_some()
    }

    fn version(&self, key: &str) -> KvVersion {
        match self.changed.get(key) {
            Some(Some(_)) => KvVersion(self.revision),
            Some(None) => KvVersion::ABSENT,
            None => self
                .stored
                .get(key)
                .map_or(KvVersion::ABSENT, |stored| KvVersion(stored.revision)),
        }
    }

    /// The key's counter; 0 when it is not stored.
    fn counter(&self, key: &str) -> Result<i64, StoreError> {
        let value = match self.changed.get(key) {
            Some(change) => change.as_deref(),
            None if self.stored.contains_key(key) => {
                Some(self.values.get(key).map(Vec::as_slice).ok_or_else(|| {
                    StoreError::permanent("incrementing a counter", "its stored value was not read")
                })?)
            }
            None => None,
        };
        match value {
            None => Ok(0),
            Some(value) => decode_counter(value).ok_or_else(|| StoreError::KvNotACounter {
                namespace: self.store.namespace.clone(),
                store: self.store.store.clone(),
                key: key.to_string(),
            }),
        }
    }

    /// The change to the totals of `changes` over what the batch has so far.
    fn delta_of(&self, changes: &BTreeMap<String, Option<Vec<u8>>>) -> KvDelta {
        let entry_bytes = |key: &str, value_bytes: i64| size(key.len()) + value_bytes;
        let mut delta = KvDelta::default();
        for (key, change) in changes {
            if let Some(old) = self.value_bytes(key) {
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
}

/// The rows a batch writes to one store.
#[derive(Debug, Default)]
pub(crate) struct KvBatchWrites {
    pub revision: i64,
    pub puts: Vec<(String, Vec<u8>)>,
    pub deletes: Vec<String>,
    pub delta: KvDelta,
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

    fn batch(stored: &[(&str, i64, i64)], values: &[(&str, &[u8])]) -> StoreBatch {
        StoreBatch::new(
            store("default"),
            100,
            stored
                .iter()
                .map(|&(key, value_bytes, revision)| {
                    (
                        key.to_string(),
                        StoredKey {
                            value_bytes,
                            revision,
                        },
                    )
                })
                .collect(),
            values
                .iter()
                .map(|&(key, value)| (key.to_string(), value.to_vec()))
                .collect(),
        )
    }

    fn put(key: &str, value: &[u8]) -> KvWrite {
        KvWrite::Put(vec![(key.to_string(), value.to_vec())])
    }

    const UNLIMITED: KvQuota = KvQuota {
        limit: None,
        held: 0,
    };

    #[test]
    fn totals_count_keys_and_values_replaced_added_and_removed() {
        let mut batch = batch(&[("old", 10, 1), ("gone", 4, 2)], &[]);
        let mut quota = UNLIMITED;
        let put = batch.apply(
            KvWrite::Put(vec![
                ("old".into(), b"abc".to_vec()),
                ("new".into(), b"12345".to_vec()),
            ]),
            &mut quota,
        );
        assert_eq!(put.unwrap(), KvWritten::Done { existed: true });
        let deleted = batch.apply(
            KvWrite::Delete(vec!["gone".into(), "never".into()]),
            &mut quota,
        );
        assert_eq!(deleted.unwrap(), KvWritten::Done { existed: true });
        let writes = batch.finish();
        // old: 13 → 6; gone: −8; new: +8; never: nothing.
        assert_eq!(
            writes.delta,
            KvDelta {
                keys: 0,
                bytes: -7 - 8 + 8
            }
        );
        assert_eq!(writes.revision, 100);
        assert_eq!(
            writes.deletes,
            vec!["gone".to_string()],
            "never was not stored"
        );
        let put_keys: Vec<&str> = writes.puts.iter().map(|(key, _)| key.as_str()).collect();
        assert_eq!(put_keys, ["new", "old"]);
    }

    #[test]
    fn later_writes_of_a_batch_see_the_earlier_ones() {
        let mut batch = batch(&[("n", 8, 5)], &[("n", &encode_counter(41))]);
        let mut quota = UNLIMITED;
        assert_eq!(
            batch
                .apply(
                    KvWrite::Increment {
                        key: "n".into(),
                        delta: 1
                    },
                    &mut quota
                )
                .unwrap(),
            KvWritten::Counter(42)
        );
        assert_eq!(
            batch
                .apply(
                    KvWrite::Increment {
                        key: "n".into(),
                        delta: 2
                    },
                    &mut quota
                )
                .unwrap(),
            KvWritten::Counter(44)
        );
        // Read before the batch at version 5: an earlier write of the batch changed it since.
        let stale = KvWrite::Swap {
            key: "n".into(),
            expected: KvVersion(5),
            value: b"x".to_vec(),
        };
        assert_eq!(
            batch.apply(stale, &mut quota).unwrap(),
            KvWritten::Swapped(false)
        );
        batch
            .apply(KvWrite::Delete(vec!["n".into()]), &mut quota)
            .unwrap();
        let fresh = KvWrite::Swap {
            key: "n".into(),
            expected: KvVersion::ABSENT,
            value: b"y".to_vec(),
        };
        assert_eq!(
            batch.apply(fresh, &mut quota).unwrap(),
            KvWritten::Swapped(true)
        );
        let counted = KvWrite::Increment {
            key: "n".into(),
            delta: 1,
        };
        assert!(matches!(
            batch.apply(counted, &mut quota),
            Err(StoreError::KvNotACounter { .. })
        ));
        let writes = batch.finish();
        assert_eq!(writes.puts, vec![("n".to_string(), b"y".to_vec())]);
        assert!(writes.deletes.is_empty());
    }

    #[test]
    fn a_refused_write_leaves_the_batch_as_it_was() {
        let mut batch = batch(&[("max", 8, 1)], &[("max", &encode_counter(i64::MAX))]);
        let mut quota = KvQuota {
            limit: Some(20),
            held: 10,
        };
        let overflow = KvWrite::Increment {
            key: "max".into(),
            delta: 1,
        };
        assert!(matches!(
            batch.apply(overflow, &mut quota),
            Err(StoreError::KvCounterOverflow { .. })
        ));
        // 1 + 9 bytes fit in the 10 left; a second key of 1 + 1 does not.
        batch.apply(put("a", b"123456789"), &mut quota).unwrap();
        assert!(matches!(
            batch.apply(put("b", b"1"), &mut quota),
            Err(StoreError::KvQuotaExceeded { limit: 20, .. })
        ));
        assert_eq!(quota.held, 20);
        let writes = batch.finish();
        assert_eq!(writes.puts, vec![("a".to_string(), b"123456789".to_vec())]);
        assert_eq!(writes.delta, KvDelta { keys: 1, bytes: 10 });
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
