//! Namespaces with their quotas, and API keys: what the store keeps of them (`TenantStore`) and the
//! in-memory `Directory` every request consults, so authenticating costs no store read.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::{ApiKey, AuthError, Caller, Role, split_key};
use crate::names::Name;
use crate::store::StoreError;

/// A token bucket: `per_second` requests on average, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub per_second: u32,
    pub burst: u32,
}

/// A rate limit or quotas outside the bounds; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidQuotas(String);

impl RateLimit {
    pub fn validate(&self, field: &str) -> Result<(), InvalidQuotas> {
        if self.per_second == 0 || self.burst == 0 {
            return Err(InvalidQuotas(format!(
                "{field}: per_second and burst must both be at least 1"
            )));
        }
        Ok(())
    }
}

/// Per-namespace limits; a missing one means only the server's own limits apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NamespaceQuotas {
    /// Functions the namespace may hold.
    pub max_functions: Option<u32>,
    /// Invocations of the namespace's functions running at once.
    pub max_concurrency: Option<u32>,
    /// Async invocations queued or running (overrides the server's `[async]` default).
    pub max_queued: Option<u64>,
    /// Requests each API key may make to this namespace (admin API and invocations).
    #[serde(deserialize_with = "crate::json::optional_object")]
    pub key_rate_limit: Option<RateLimit>,
    /// Bytes of keys and values the namespace's key-value stores may hold together.
    pub max_kv_bytes: Option<u64>,
    /// Bytes of objects the namespace's buckets may hold together.
    pub max_object_bytes: Option<u64>,
}

impl NamespaceQuotas {
    pub fn validate(&self) -> Result<(), InvalidQuotas> {
        if self.max_concurrency == Some(0) {
            return Err(InvalidQuotas(
                "max_concurrency must be at least 1 when set".into(),
            ));
        }
        if let Some(limit) = &self.key_rate_limit {
            limit.validate("key_rate_limit")?;
        }
        // Stores count bytes in signed 64-bit integers.
        for (field, bytes) in [
            ("max_kv_bytes", self.max_kv_bytes),
            ("max_object_bytes", self.max_object_bytes),
        ] {
            if bytes.is_some_and(|bytes| bytes > i64::MAX as u64) {
                return Err(InvalidQuotas(format!(
                    "{field} must be at most {}",
                    i64::MAX
                )));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceInfo {
    pub name: Name,
    pub created_at_us: i64,
    pub quotas: NamespaceQuotas,
    pub functions: u64,
}

/// Namespaces and API keys as stored.
#[async_trait::async_trait]
pub trait TenantStore: Send + Sync + 'static {
    /// Creates a namespace at `at_us`; `NamespaceExists` if the name is taken.
    async fn create_namespace(
        &self,
        name: &Name,
        quotas: &NamespaceQuotas,
        at_us: i64,
    ) -> Result<NamespaceInfo, StoreError>;
    async fn list_namespaces(&self) -> Result<Vec<NamespaceInfo>, StoreError>;
    async fn get_namespace(&self, name: &Name) -> Result<NamespaceInfo, StoreError>;
    async fn set_quotas(
        &self,
        name: &Name,
        quotas: &NamespaceQuotas,
    ) -> Result<NamespaceInfo, StoreError>;
    /// Deletes an empty namespace and revokes, at `at_us`, the keys that name it;
    /// `NamespaceNotEmpty` while it holds functions, schedules or secrets.
    async fn delete_namespace(&self, name: &Name, at_us: i64) -> Result<(), StoreError>;

    async fn create_key(&self, key: &ApiKey) -> Result<(), StoreError>;
    async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Marks the key revoked (once; a second revoke keeps the first time).
    async fn revoke_key(&self, id: &str, at_us: i64) -> Result<ApiKey, StoreError>;
}

/// Namespaces' quotas and every API key, held in memory and written through to the store. The
/// store announces each write on its change feed; every copy reloads when it hears of one, so
/// writes through another copy on the same store arrive too.
pub struct Directory {
    store: Arc<dyn TenantStore>,
    keys: RwLock<HashMap<String, ApiKey>>,
    quotas: RwLock<HashMap<Name, NamespaceQuotas>>,
    /// SHA-256 of an admin key given to the server from outside (`VIREO_ADMIN_KEY`).
    external_admin: Option<[u8; 32]>,
}

/// The caller id an external admin key authenticates as.
pub const EXTERNAL_ADMIN_ID: &str = "env";

fn external_admin_caller() -> Caller {
    Caller {
        key_id: EXTERNAL_ADMIN_ID.into(),
        role: Role::Admin,
        namespaces: Vec::new(),
    }
}

impl Directory {
    pub async fn load(
        store: Arc<dyn TenantStore>,
        external_admin: Option<&str>,
    ) -> Result<Self, StoreError> {
        let directory = Self {
            store,
            keys: RwLock::default(),
            quotas: RwLock::default(),
            external_admin: external_admin.map(|key| Sha256::digest(key.as_bytes()).into()),
        };
        directory.reload().await?;
        Ok(directory)
    }

    /// Reads every key and every namespace's quotas from the store again, after a change made
    /// through another copy.
    pub async fn reload(&self) -> Result<(), StoreError> {
        let keys = self
            .store
            .list_keys()
            .await?
            .into_iter()
            .map(|key| (key.id.clone(), key))
            .collect();
        let quotas = self
            .store
            .list_namespaces()
            .await?
            .into_iter()
            .map(|ns| (ns.name, ns.quotas))
            .collect();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = keys;
        *self.quotas.write().unwrap_or_else(|p| p.into_inner()) = quotas;
        Ok(())
    }

    /// The caller a bearer token authenticates, checked against the in-memory keys.
    pub fn authenticate(&self, token: &str, now_us: i64) -> Result<Caller, AuthError> {
        if let Some((id, secret)) = split_key(token) {
            let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
            if let Some(key) = keys.get(id) {
                return key.verify(secret, now_us);
            }
        }
        let presented: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        match &self.external_admin {
            Some(admin) if bool::from(admin.ct_eq(&presented)) => Ok(external_admin_caller()),
            _ => Err(AuthError::Invalid),
        }
    }

    /// The caller a key id stands for at `now_us`, for a session opened earlier with that key:
    /// a key revoked or expired since ends its sessions, like its bearer requests.
    pub fn caller(&self, key_id: &str, now_us: i64) -> Result<Caller, AuthError> {
        if key_id == EXTERNAL_ADMIN_ID {
            return match self.external_admin {
                Some(_) => Ok(external_admin_caller()),
                None => Err(AuthError::Invalid),
            };
        }
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.get(key_id)
            .ok_or(AuthError::Invalid)
            .and_then(|key| key.standing(now_us))
    }

    /// True when some admin key that was never revoked is stored.
    pub fn has_admin_key(&self) -> bool {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.values()
            .any(|key| key.role == Role::Admin && key.revoked_at_us.is_none())
    }

    pub fn quotas(&self, namespace: &Name) -> NamespaceQuotas {
        let quotas = self.quotas.read().unwrap_or_else(|p| p.into_inner());
        quotas.get(namespace).copied().unwrap_or_default()
    }

    pub fn store(&self) -> &dyn TenantStore {
        self.store.as_ref()
    }

    pub async fn create_namespace(
        &self,
        name: &Name,
        quotas: &NamespaceQuotas,
        at_us: i64,
    ) -> Result<NamespaceInfo, StoreError> {
        let created = self.store.create_namespace(name, quotas, at_us).await?;
        self.remember_quotas(&created);
        Ok(created)
    }

    pub async fn set_quotas(
        &self,
        name: &Name,
        quotas: &NamespaceQuotas,
    ) -> Result<NamespaceInfo, StoreError> {
        let changed = self.store.set_quotas(name, quotas).await?;
        self.remember_quotas(&changed);
        Ok(changed)
    }

    pub async fn delete_namespace(&self, name: &Name, at_us: i64) -> Result<(), StoreError> {
        self.store.delete_namespace(name, at_us).await?;
        // The keys that named it were revoked with it.
        self.reload().await
    }

    pub async fn create_key(&self, key: ApiKey) -> Result<(), StoreError> {
        self.store.create_key(&key).await?;
        self.keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.id.clone(), key);
        Ok(())
    }

    pub fn list_keys(&self) -> Vec<ApiKey> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        let mut listed: Vec<ApiKey> = keys.values().cloned().collect();
        listed.sort_by(|a, b| (a.created_at_us, &a.id).cmp(&(b.created_at_us, &b.id)));
        listed
    }

    pub async fn revoke_key(&self, id: &str, at_us: i64) -> Result<ApiKey, StoreError> {
        let revoked = self.store.revoke_key(id, at_us).await?;
        self.keys
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(revoked.id.clone(), revoked.clone());
        Ok(revoked)
    }

    fn remember_quotas(&self, namespace: &NamespaceInfo) {
        let mut quotas = self.quotas.write().unwrap_or_else(|p| p.into_inner());
        quotas.insert(namespace.name.clone(), namespace.quotas);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_outside_their_bounds_are_refused_by_name() {
        assert!(NamespaceQuotas::default().validate().is_ok());
        let kv = |bytes| NamespaceQuotas {
            max_kv_bytes: Some(bytes),
            ..NamespaceQuotas::default()
        };
        assert!(kv(0).validate().is_ok(), "zero: no key-value data at all");
        assert!(kv(i64::MAX as u64).validate().is_ok());
        let refused = kv(i64::MAX as u64 + 1).validate().unwrap_err();
        assert!(refused.to_string().starts_with("max_kv_bytes"), "{refused}");
        let refused = NamespaceQuotas {
            max_concurrency: Some(0),
            ..NamespaceQuotas::default()
        }
        .validate()
        .unwrap_err();
        assert!(
            refused.to_string().starts_with("max_concurrency"),
            "{refused}"
        );
    }

    #[test]
    fn max_kv_bytes_is_optional_in_json() {
        let quotas: NamespaceQuotas =
            serde_json::from_str(r#"{"max_functions": 2, "max_kv_bytes": 1048576}"#).unwrap();
        assert_eq!(quotas.max_kv_bytes, Some(1_048_576));
        let quotas: NamespaceQuotas = serde_json::from_str(r#"{"max_functions": 2}"#).unwrap();
        assert_eq!(quotas.max_kv_bytes, None);
    }
}
