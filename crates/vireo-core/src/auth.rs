//! API keys and what they allow: roles, the callers they authenticate, and the key format.
//!
//! A key reads `vireo_<id>_<secret>`: the id finds the stored key, the secret (256 random bits)
//! is checked against its SHA-256 in constant time. Only the hash is stored; the key itself is
//! shown once, when it is created.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::names::Name;

/// Every Vireo key starts with this, so it can be told apart from a function's own tokens.
pub const KEY_PREFIX: &str = "vireo_";
const ID_BYTES: usize = 9;
/// A key's id (18 lowercase hex digits) as the OpenAPI document gives it.
pub const KEY_ID_PATTERN: &str = "^[0-9a-f]{18}$";
const SECRET_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, in every namespace, including namespaces and keys.
    Admin,
    /// Deploy, change, delete, read and invoke in its namespaces.
    Developer,
    /// Invoke functions of its namespaces, nothing else.
    Invoker,
    /// Read metadata, logs and usage of its namespaces.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Invoker => "invoker",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(value: &str) -> Option<Role> {
        [Role::Admin, Role::Developer, Role::Invoker, Role::Viewer]
            .into_iter()
            .find(|role| role.as_str() == value)
    }

    pub fn permits(self, action: Action) -> bool {
        match self {
            Role::Admin => true,
            Role::Developer => matches!(action, Action::Read | Action::Write | Action::Invoke),
            Role::Invoker => action == Action::Invoke,
            Role::Viewer => action == Action::Read,
        }
    }
}

/// What a request does to a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Metadata, logs, usage.
    Read,
    /// Deploy, change, delete.
    Write,
    /// Run a function that requires a key.
    Invoke,
    /// Namespaces and keys themselves.
    Admin,
}

/// A stored API key: everything but the secret, which exists only as its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub role: Role,
    /// The namespaces it may act in; empty for admin keys, which act everywhere.
    pub namespaces: Vec<Name>,
    pub description: Option<String>,
    pub created_at_us: i64,
    pub expires_at_us: Option<i64>,
    pub revoked_at_us: Option<i64>,
    /// Hex SHA-256 of the secret part.
    pub secret_sha256: String,
}

/// Why a presented key does not authenticate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this route needs an API key: send `Authorization: Bearer <key>`")]
    Missing,
    #[error("the API key is not valid")]
    Invalid,
    #[error("the API key was revoked")]
    Revoked,
    #[error("the API key has expired")]
    Expired,
}

impl ApiKey {
    /// The caller this key authenticates at `now_us`, if `secret` is its secret.
    pub fn verify(&self, secret: &str, now_us: i64) -> Result<Caller, AuthError> {
        let presented = hex_sha256(secret.as_bytes());
        if !bool::from(presented.as_bytes().ct_eq(self.secret_sha256.as_bytes())) {
            return Err(AuthError::Invalid);
        }
        self.standing(now_us)
    }

    /// The caller this key stands for at `now_us`, unless it was revoked or has expired.
    pub fn standing(&self, now_us: i64) -> Result<Caller, AuthError> {
        if self.revoked_at_us.is_some() {
            return Err(AuthError::Revoked);
        }
        if self.expires_at_us.is_some_and(|at| at <= now_us) {
            return Err(AuthError::Expired);
        }
        Ok(Caller {
            key_id: self.id.clone(),
            role: self.role,
            namespaces: self.namespaces.clone(),
        })
    }
}

/// An authenticated key holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub key_id: String,
    pub role: Role,
    pub namespaces: Vec<Name>,
}

impl Caller {
    /// True when the caller may see that `namespace` exists at all.
    pub fn sees(&self, namespace: &Name) -> bool {
        self.role == Role::Admin || self.namespaces.contains(namespace)
    }

    pub fn may(&self, action: Action, namespace: &Name) -> bool {
        self.sees(namespace) && self.role.permits(action)
    }
}

/// Who asks to run a function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No key was presented.
    Anonymous,
    Key(Caller),
    /// Vireo itself, delivering what was authorised when it was accepted (async, cron).
    System,
}

/// A freshly generated key: the full key to show once, and what to store.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    pub id: String,
    pub key: String,
    pub secret_sha256: String,
}

/// A new key with 256 random bits of secret.
pub fn generate_key() -> GeneratedKey {
    let mut id = [0u8; ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id).expect("the operating system's random source failed");
    getrandom::fill(&mut secret).expect("the operating system's random source failed");
    // Ids avoid `_` so the key splits unambiguously: the secret may contain any base64url char.
    let id = hex::encode(id);
    let secret = URL_SAFE_NO_PAD.encode(secret);
    GeneratedKey {
        key: format!("{KEY_PREFIX}{id}_{secret}"),
        secret_sha256: hex_sha256(secret.as_bytes()),
        id,
    }
}

/// Splits a presented key into (id, secret); `None` when it is not shaped like a Vireo key.
pub fn split_key(key: &str) -> Option<(&str, &str)> {
    let (id, secret) = key.strip_prefix(KEY_PREFIX)?.split_once('_')?;
    let id_ok = id.len() == ID_BYTES * 2 && id.bytes().all(|b| b.is_ascii_hexdigit());
    (id_ok && !secret.is_empty()).then_some((id, secret))
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(generated: &GeneratedKey) -> ApiKey {
        ApiKey {
            id: generated.id.clone(),
            role: Role::Developer,
            namespaces: vec![Name::parse("namespace", "team-a").unwrap()],
            description: None,
            created_at_us: 0,
            expires_at_us: Some(1_000),
            revoked_at_us: None,
            secret_sha256: generated.secret_sha256.clone(),
        }
    }

    #[test]
    fn a_generated_key_verifies_and_nothing_else_does() {
        let generated = generate_key();
        let (id, secret) = split_key(&generated.key).unwrap();
        assert_eq!(id, generated.id);
        let key = stored(&generated);
        let caller = key.verify(secret, 10).unwrap();
        assert_eq!(caller.role, Role::Developer);
        assert_eq!(key.verify("wrong", 10), Err(AuthError::Invalid));
        assert_eq!(key.verify(secret, 1_000), Err(AuthError::Expired));
        let revoked = ApiKey {
            revoked_at_us: Some(5),
            ..key
        };
        assert_eq!(revoked.verify(secret, 10), Err(AuthError::Revoked));
    }

    #[test]
    fn a_keys_standing_ends_when_it_expires_or_is_revoked() {
        let key = stored(&generate_key());
        assert_eq!(key.standing(10).unwrap().key_id, key.id);
        assert_eq!(key.standing(1_000), Err(AuthError::Expired));
        let revoked = ApiKey {
            revoked_at_us: Some(5),
            ..key
        };
        assert_eq!(revoked.standing(10), Err(AuthError::Revoked));
    }

    #[test]
    fn key_ids_match_their_pattern() {
        let pattern = regex::Regex::new(KEY_ID_PATTERN).unwrap();
        assert!(pattern.is_match(&generate_key().id));
        assert!(!pattern.is_match("zzzzzzzzzzzzzzzzzz"));
    }

    #[test]
    fn keys_are_long_and_distinct() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a.key, b.key);
        // 256 bits in base64url without padding are 43 characters.
        assert_eq!(split_key(&a.key).unwrap().1.len(), 43);
    }

    #[test]
    fn malformed_keys_do_not_split() {
        for key in [
            "",
            "vireo_",
            "vireo_abc_def",
            "bearer",
            "vireo_zzzzzzzzzzzzzzzzzz_x",
        ] {
            assert_eq!(split_key(key), None, "{key}");
        }
    }

    #[test]
    fn roles_permit_what_they_say() {
        let team = Name::parse("namespace", "team-a").unwrap();
        let other = Name::parse("namespace", "team-b").unwrap();
        let caller = |role| Caller {
            key_id: "k".into(),
            role,
            namespaces: vec![team.clone()],
        };
        assert!(caller(Role::Viewer).may(Action::Read, &team));
        assert!(!caller(Role::Viewer).may(Action::Write, &team));
        assert!(!caller(Role::Invoker).may(Action::Read, &team));
        assert!(caller(Role::Invoker).may(Action::Invoke, &team));
        assert!(caller(Role::Developer).may(Action::Write, &team));
        assert!(!caller(Role::Developer).may(Action::Admin, &team));
        assert!(!caller(Role::Developer).may(Action::Read, &other));
        assert!(caller(Role::Admin).may(Action::Admin, &other));
    }
}
