//! Secrets in the server: sealed with the master key on their way to the store, opened when a
//! version loads. The crypto lives here, in the composition root, because this is the one crate
//! that may hold the master key: core stays types and seams, and neither the store nor the
//! gateway can read a value.

mod cipher;
mod key_file;
mod unlock;

use std::collections::BTreeSet;
use std::sync::Arc;

use anyhow::anyhow;
use vireo_core::time::now_micros;
use vireo_core::variables::VariableValue;
use vireo_core::{
    Name, SecretError, SecretInfo, SecretName, SecretStore, SecretValue, StoreError, VersionInfo,
};
use vireo_runtime::Opened;

pub use cipher::Cipher;
pub use unlock::unlock;

/// The sealed secrets and the key that opens them.
pub struct Vault {
    store: Arc<dyn SecretStore>,
    cipher: Cipher,
}

impl Vault {
    pub fn new(store: Arc<dyn SecretStore>, cipher: Cipher) -> Self {
        Self { store, cipher }
    }

    /// Seals and stores a value; true if the secret was created.
    pub async fn put(
        &self,
        namespace: &Name,
        name: &SecretName,
        value: &SecretValue,
    ) -> Result<bool, SecretError> {
        let sealed = self
            .cipher
            .seal(namespace, name, value)
            .map_err(|e| SecretError::Seal(e.into()))?;
        Ok(self
            .store
            .put_secret(namespace, name, &sealed, now_micros())
            .await?)
    }

    pub async fn list(&self, namespace: &Name) -> Result<Vec<SecretInfo>, StoreError> {
        self.store.list_secrets(namespace).await
    }

    pub async fn delete(&self, namespace: &Name, name: &SecretName) -> Result<(), StoreError> {
        self.store.delete_secret(namespace, name).await
    }

    /// Those of `names` that do not exist in the namespace.
    pub async fn missing(
        &self,
        namespace: &Name,
        names: &BTreeSet<SecretName>,
    ) -> Result<Vec<SecretName>, StoreError> {
        let found = self.store.sealed_secrets(namespace, names).await?;
        Ok(names
            .iter()
            .filter(|name| !found.contains_key(*name))
            .cloned()
            .collect())
    }

    /// One secret in clear, for the server's own use (a source's broker password).
    pub async fn open_one(
        &self,
        namespace: &Name,
        name: &SecretName,
    ) -> Result<SecretValue, StoreError> {
        let names = BTreeSet::from([name.clone()]);
        let sealed = self.store.sealed_secrets(namespace, &names).await?;
        let found = sealed.get(name).ok_or_else(|| StoreError::SecretNotFound {
            namespace: namespace.clone(),
            name: name.clone(),
        })?;
        let opened = self
            .cipher
            .open(namespace, name, found)
            .map_err(|e| StoreError::permanent(format!("opening secret {namespace}/{name}"), e))?;
        SecretValue::new(opened)
            .map_err(|e| StoreError::permanent(format!("opening secret {namespace}/{name}"), e))
    }

    /// What the version's function sees: its `env` and its granted secrets as environment
    /// variables (deploy refuses names in both, so nothing here overrides anything), and its
    /// `variables`, those bound to secrets opened.
    pub async fn open(&self, version: &VersionInfo) -> anyhow::Result<Opened> {
        let namespace = &version.namespace;
        let settings = &version.settings;
        let sealed = self
            .store
            .sealed_secrets(namespace, &settings.granted_secrets())
            .await?;
        let open = |name: &SecretName| {
            let found = sealed.get(name).ok_or_else(|| {
                anyhow!("secret {namespace}/{name} granted to this version does not exist")
            })?;
            self.cipher.open(namespace, name, found)
        };
        let mut environment: Vec<(String, String)> = settings
            .env
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        for name in &settings.secrets {
            environment.push((name.to_string(), open(name)?));
        }
        let mut variables = Vec::with_capacity(settings.variables.len());
        for (name, value) in &settings.variables {
            let value = match value {
                VariableValue::Text(text) => text.clone(),
                VariableValue::Secret(bound) => open(&bound.secret)?,
            };
            variables.push((name.clone(), value));
        }
        Ok(Opened {
            environment,
            variables,
        })
    }
}
