//! Key-value stores: named stores of string keys and byte values per namespace, the one data set
//! behind `wasi:keyvalue` and Spin's key-value interface. `default` exists in every namespace
//! without being created. The store keeps each store's key count and bytes as it writes, so a
//! listing and the namespace's `max_kv_bytes` quota never scan the keys. Key and value sizes are
//! the host's to check (against [`KeyValueLimits`]) before it calls the store.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::names::Name;

/// What [`KeyValueLimits::check_key`] allows besides the length, as a JSON Schema pattern: not
/// empty, no NUL, and neither `.` nor `..`, which URLs cannot carry as a path segment (clients
/// resolve them away) and so the API cannot name.
pub const KV_KEY_PATTERN: &str = r"^(?!\.\.?$)[^\x00]+$";

/// The largest key and value a guest or the API may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeyValueLimits {
    /// Bytes of a key's UTF-8.
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
}

impl KeyValueLimits {
    pub const DEFAULT_MAX_KEY_BYTES: usize = 256;
    pub const DEFAULT_MAX_VALUE_BYTES: usize = 1024 * 1024;

    /// A key the limits allow: not empty (no API path or listing could name it), without NUL
    /// (PostgreSQL's text cannot hold it) and at most `max_key_bytes` of UTF-8.
    pub fn check_key(&self, key: &str) -> Result<(), KvLimitExceeded> {
        if key.is_empty() {
            return Err(KvLimitExceeded("a key must not be empty".into()));
        }
        if key.contains('\0') {
            return Err(KvLimitExceeded(
                "a key must not contain the NUL character".into(),
            ));
        }
        if key.len() > self.max_key_bytes {
            return Err(KvLimitExceeded(format!(
                "a key of {} bytes is longer than the limit of {} bytes",
                key.len(),
                self.max_key_bytes
            )));
        }
        Ok(())
    }

    pub fn check_value(&self, value: &[u8]) -> Result<(), KvLimitExceeded> {
        if value.len() > self.max_value_bytes {
            return Err(KvLimitExceeded(format!(
                "a value of {} bytes is larger than the limit of {} bytes",
                value.len(),
                self.max_value_bytes
            )));
        }
        Ok(())
    }
}

impl Default for KeyValueLimits {
    fn default() -> Self {
        Self {
            max_key_bytes: Self::DEFAULT_MAX_KEY_BYTES,
            max_value_bytes: Self::DEFAULT_MAX_VALUE_BYTES,
        }
    }
}

/// A key or value outside [`KeyValueLimits`]; the message says which limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KvLimitExceeded(String);

/// One store of one namespace: everything a key-value operation reads or writes is inside it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KvStoreId {
    pub namespace: Name,
    pub store: Name,
}

impl KvStoreId {
    pub fn new(namespace: Name, store: Name) -> Self {
        Self { namespace, store }
    }

    /// Whether this is the namespace's `default` store, which exists without being created.
    pub fn is_default(&self) -> bool {
        self.store == Name::default_kv_store()
    }
}

impl fmt::Display for KvStoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.store)
    }
}

/// A store as listed: what it holds, counted as it was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvStoreInfo {
    pub name: Name,
    pub keys: u64,
    /// Keys (their UTF-8) plus values; what `max_kv_bytes` counts.
    pub bytes: u64,
    /// For `default` before its first write, when its namespace was created.
    pub created_at_us: i64,
}

/// Where a key listing goes on: after the last key of the page before. Keys written or deleted
/// meanwhile do not shift it, so a key present for the whole listing is listed exactly once.
/// Opaque to callers: its text is the last key, base64url-encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvCursor {
    after: String,
}

/// A cursor this store did not hand out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a key listing cursor")]
pub struct InvalidCursor(String);

impl KvCursor {
    /// The cursor of a page whose last key is `key`.
    pub fn after(key: &str) -> Self {
        Self {
            after: key.to_string(),
        }
    }

    pub fn parse(cursor: &str) -> Result<Self, InvalidCursor> {
        let invalid = || InvalidCursor(cursor.to_string());
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        let after = String::from_utf8(bytes).map_err(|_| invalid())?;
        Ok(Self { after })
    }

    /// The key the next page starts after.
    pub fn last_key(&self) -> &str {
        &self.after
    }
}

impl fmt::Display for KvCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(&self.after))
    }
}

/// One page of a key listing, in key order (by the bytes of the keys' UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvKeyPage {
    pub keys: Vec<String>,
    /// Where the next page starts; `None` when this page is the last.
    pub cursor: Option<KvCursor>,
}

/// Which write last changed a key, for compare-and-swap: every write to a store takes a number
/// higher than any before it, and a deletion leaves [`KvVersion::ABSENT`]. A key deleted and
/// written again has a new version, so a swap never mistakes it for the value it read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KvVersion(pub i64);

impl KvVersion {
    /// The version of a key that is not stored.
    pub const ABSENT: KvVersion = KvVersion(0);
}

/// A key's value with the version a swap compares against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvVersioned {
    pub value: Option<Vec<u8>>,
    pub version: KvVersion,
}

/// A counter as `increment` stores it: the 64-bit signed integer's 8 bytes, little-endian, as
/// Spin's own key-value store keeps `wasi:keyvalue/atomics` counters, so a guest that writes a
/// counter with `set` and increments it behaves as on Spin.
pub fn encode_counter(value: i64) -> [u8; 8] {
    value.to_le_bytes()
}

/// Reverses [`encode_counter`]; `None` for a value that is not 8 bytes.
pub fn decode_counter(value: &[u8]) -> Option<i64> {
    value.try_into().ok().map(i64::from_le_bytes)
}

/// The key-value stores of every namespace. Every write checks the namespace's `max_kv_bytes`
/// quota inside its own transaction and writes nothing when it would be exceeded; writes that
/// free space always succeed. An unknown store (other than `default`) is `KvStoreNotFound`; an
/// unknown namespace, `NamespaceNotFound`. Keys and values are the caller's to check against
/// [`KeyValueLimits`].
#[async_trait::async_trait]
pub trait KeyValueStore: Send + Sync + 'static {
    /// `KvStoreExists` if the store exists, `default` included.
    async fn create_store(
        &self,
        namespace: &Name,
        name: &Name,
        at_us: i64,
    ) -> Result<KvStoreInfo, StoreError>;

    /// Every store of the namespace by name, `default` always among them.
    async fn list_stores(&self, namespace: &Name) -> Result<Vec<KvStoreInfo>, StoreError>;

    /// Whether the store exists: `default` does in every namespace that does. One read, for
    /// opening a store by name.
    async fn store_exists(&self, store: &KvStoreId) -> Result<bool, StoreError>;

    /// Deletes the store with its keys; `KvDefaultStore` for `default`.
    async fn delete_store(&self, namespace: &Name, name: &Name) -> Result<(), StoreError>;

    async fn get(&self, store: &KvStoreId, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    async fn set(&self, store: &KvStoreId, key: &str, value: &[u8]) -> Result<(), StoreError>;

    /// Whether the key existed.
    async fn delete(&self, store: &KvStoreId, key: &str) -> Result<bool, StoreError>;

    async fn exists(&self, store: &KvStoreId, key: &str) -> Result<bool, StoreError>;

    /// Up to `limit` (at least one) keys starting with `prefix`, after `cursor`, in key order.
    async fn list_keys(
        &self,
        store: &KvStoreId,
        prefix: &str,
        cursor: Option<&KvCursor>,
        limit: u32,
    ) -> Result<KvKeyPage, StoreError>;

    /// Adds `delta` to the counter at `key` (a missing key counts as 0) and returns the new
    /// value; concurrent increments never lose one another. `KvNotACounter` if the stored value
    /// is not one (see [`encode_counter`]), `KvCounterOverflow` past the 64-bit range.
    async fn increment(&self, store: &KvStoreId, key: &str, delta: i64) -> Result<i64, StoreError>;

    /// The value and its version, for [`KeyValueStore::swap`].
    async fn get_versioned(&self, store: &KvStoreId, key: &str) -> Result<KvVersioned, StoreError>;

    /// Writes `value` only if nothing wrote the key since it had `expected`; false (nothing
    /// written) when something did, and the caller may read again and retry.
    async fn swap(
        &self,
        store: &KvStoreId,
        key: &str,
        expected: KvVersion,
        value: &[u8],
    ) -> Result<bool, StoreError>;

    /// The value of each key, in the order asked, from one snapshot.
    async fn get_many(
        &self,
        store: &KvStoreId,
        keys: &[String],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError>;

    /// Sets every entry in one transaction (a key given twice takes its last value).
    async fn set_many(
        &self,
        store: &KvStoreId,
        entries: &[(String, Vec<u8>)],
    ) -> Result<(), StoreError>;

    /// Deletes every key in one transaction; keys not stored are no error.
    async fn delete_many(&self, store: &KvStoreId, keys: &[String]) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_refuse_empty_and_oversized_keys_and_values() {
        let limits = KeyValueLimits::default();
        assert!(limits.check_key(&"k".repeat(256)).is_ok());
        assert_eq!(
            limits.check_key(&"é".repeat(129)).unwrap_err().to_string(),
            "a key of 258 bytes is longer than the limit of 256 bytes",
            "bytes of UTF-8 count, not characters"
        );
        assert!(limits.check_key("").is_err());
        assert!(limits.check_key("a\0b").is_err());
        assert!(limits.check_value(&vec![0; 1024 * 1024]).is_ok());
        assert_eq!(
            limits
                .check_value(&vec![0; 1024 * 1024 + 1])
                .unwrap_err()
                .to_string(),
            "a value of 1048577 bytes is larger than the limit of 1048576 bytes"
        );
    }

    #[test]
    fn cursors_round_trip_any_key_and_refuse_what_they_did_not_write() {
        for key in ["user:42", "ключ/ü 🙂", "a+b/c=="] {
            let cursor = KvCursor::after(key);
            let text = cursor.to_string();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
                "safe in a query string: {text}"
            );
            assert_eq!(KvCursor::parse(&text).unwrap().last_key(), key);
        }
        assert!(KvCursor::parse("not base64!").is_err());
        assert!(KvCursor::parse(&URL_SAFE_NO_PAD.encode([0xff, 0xfe])).is_err());
    }

    #[test]
    fn counters_are_eight_little_endian_bytes() {
        assert_eq!(encode_counter(1), [1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            encode_counter(-2),
            [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(decode_counter(&encode_counter(i64::MIN)), Some(i64::MIN));
        assert_eq!(decode_counter(b"42"), None, "text is not a counter");
        assert_eq!(decode_counter(&[0; 9]), None);
    }

    #[test]
    fn the_default_store_is_known_by_name() {
        let id = |store| KvStoreId::new(Name::default_namespace(), store);
        assert!(id(Name::default_kv_store()).is_default());
        assert!(!id(Name::parse("store", "sessions").unwrap()).is_default());
        assert_eq!(id(Name::default_kv_store()).to_string(), "default/default");
    }
}
