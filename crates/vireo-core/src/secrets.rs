//! Secrets: values a namespace keeps sealed, granted to versions by name and seen by their
//! functions as environment variables of the same name. Core holds the names, limits and seams;
//! sealing is the server's (it alone holds the master key), so a store only ever sees ciphertext.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::invoke::BoxError;
use crate::names::{Name, is_env_var_name};
use crate::store::StoreError;

/// Longest secret name.
pub const MAX_SECRET_NAME_LEN: usize = 128;
/// The secret-name rule as the OpenAPI document gives it.
pub const SECRET_NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]{0,127}$";
/// Largest secret value, in bytes.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// A secret's name, environment-variable style (`DB_PASSWORD`): letters, digits and `_`, not
/// starting with a digit, so a granted secret appears to the function under its own name.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct SecretName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid secret name {0:?}: use letters, digits and _, not starting with a digit, at most {MAX_SECRET_NAME_LEN} characters (like DB_PASSWORD)"
)]
pub struct InvalidSecretName(String);

impl SecretName {
    pub fn parse(value: &str) -> Result<Self, InvalidSecretName> {
        if value.len() <= MAX_SECRET_NAME_LEN && is_env_var_name(value) {
            Ok(Self(value.to_string()))
        } else {
            Err(InvalidSecretName(value.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SecretName {
    type Error = InvalidSecretName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SecretName> for String {
    fn from(name: SecretName) -> Self {
        name.0
    }
}

impl fmt::Display for SecretName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A secret's value in clear. It has no `Display`, and its `Debug` shows nothing of the value,
/// so it cannot slip into a log line or an error message.
pub struct SecretValue(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSecretValue {
    #[error("a secret's value must not be empty")]
    Empty,
    #[error("a secret's value is at most {MAX_SECRET_BYTES} bytes")]
    TooLarge,
    #[error("a secret's value must not contain a NUL byte (environment variables cannot hold one)")]
    Nul,
}

impl SecretValue {
    pub fn new(value: String) -> Result<Self, InvalidSecretValue> {
        if value.is_empty() {
            Err(InvalidSecretValue::Empty)
        } else if value.len() > MAX_SECRET_BYTES {
            Err(InvalidSecretValue::TooLarge)
        } else if value.contains('\0') {
            Err(InvalidSecretValue::Nul)
        } else {
            Ok(Self(value))
        }
    }

    /// The value itself, for sealing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretValue(redacted)")
    }
}

/// A value as stored: the nonce and the authenticated ciphertext. Opaque to the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// What may be shown about a secret: never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub namespace: Name,
    pub name: SecretName,
    pub created_at_us: i64,
    pub updated_at_us: i64,
}

/// Some of the sealed secrets of every namespace, and how many there are in all: enough to
/// tell whether a master key is the one they were sealed with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SealedSample {
    pub total: u64,
    /// The most recently written first.
    pub secrets: Vec<(Name, SecretName, SealedSecret)>,
}

/// Where sealed secrets are kept.
#[async_trait::async_trait]
pub trait SecretStore: Send + Sync + 'static {
    /// Creates or replaces a secret at `at_us` (a replacement keeps its creation time); true if
    /// it was created. `NamespaceNotFound` without the namespace.
    async fn put_secret(
        &self,
        namespace: &Name,
        name: &SecretName,
        sealed: &SealedSecret,
        at_us: i64,
    ) -> Result<bool, StoreError>;
    /// The namespace's secrets by name; `NamespaceNotFound` without the namespace.
    async fn list_secrets(&self, namespace: &Name) -> Result<Vec<SecretInfo>, StoreError>;
    /// The sealed values of those of `names` that exist.
    async fn sealed_secrets(
        &self,
        namespace: &Name,
        names: &BTreeSet<SecretName>,
    ) -> Result<BTreeMap<SecretName, SealedSecret>, StoreError>;
    /// `SecretNotFound` if it does not exist.
    async fn delete_secret(&self, namespace: &Name, name: &SecretName) -> Result<(), StoreError>;
    /// Up to `limit` secrets of any namespace, and the count of all.
    async fn sample_sealed(&self, limit: u32) -> Result<SealedSample, StoreError>;
}

/// Why a secret could not be set.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing the value failed: the server's cipher, not the store.
    #[error("sealing the secret failed: {0}")]
    Seal(BoxError),
}

/// The admin API's seam: seals values, and makes loaded versions see every change. The server
/// implements it; there is deliberately no way to read a value back.
#[async_trait::async_trait]
pub trait SecretManager: Send + Sync + 'static {
    /// Sets a secret; true if it was created. Invocations starting after this returns see the
    /// new value.
    async fn set_secret(
        &self,
        namespace: &Name,
        name: &SecretName,
        value: SecretValue,
    ) -> Result<bool, SecretError>;
    async fn list_secrets(&self, namespace: &Name) -> Result<Vec<SecretInfo>, StoreError>;
    /// Deletes a secret; versions granted it fail to load from then on.
    async fn delete_secret(&self, namespace: &Name, name: &SecretName) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_environment_variable_names() {
        for ok in ["DB_PASSWORD", "_x", "a1", &"A".repeat(MAX_SECRET_NAME_LEN)] {
            assert!(SecretName::parse(ok).is_ok(), "{ok} should be valid");
        }
        for bad in ["", "1A", "DB-PASSWORD", "a b", "a/b", "ä", &"A".repeat(129)] {
            let err = SecretName::parse(bad).unwrap_err();
            assert!(err.to_string().contains("letters, digits and _"), "{err}");
        }
    }

    #[test]
    fn the_pattern_is_the_rule() {
        let pattern = regex::Regex::new(SECRET_NAME_PATTERN).unwrap();
        let longest = "A".repeat(MAX_SECRET_NAME_LEN);
        let too_long = "A".repeat(MAX_SECRET_NAME_LEN + 1);
        for sample in [
            "DB_PASSWORD",
            "_x",
            "a1",
            "",
            "1A",
            "A-B",
            "ä",
            &longest,
            &too_long,
        ] {
            assert_eq!(
                pattern.is_match(sample),
                SecretName::parse(sample).is_ok(),
                "{sample:?}"
            );
        }
    }

    #[test]
    fn values_are_bounded_and_never_shown() {
        assert_eq!(
            SecretValue::new(String::new()).unwrap_err(),
            InvalidSecretValue::Empty
        );
        assert_eq!(
            SecretValue::new("x".repeat(MAX_SECRET_BYTES + 1)).unwrap_err(),
            InvalidSecretValue::TooLarge
        );
        assert_eq!(
            SecretValue::new("a\0b".into()).unwrap_err(),
            InvalidSecretValue::Nul
        );
        let value = SecretValue::new("hunter2".into()).unwrap();
        assert_eq!(value.expose(), "hunter2");
        assert!(!format!("{value:?}").contains("hunter2"));
    }
}
