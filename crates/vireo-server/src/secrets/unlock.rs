//! Choosing the master key at start. The key file must open the secrets already stored; a new
//! key is created only for a store that holds none, because a new key over existing secrets
//! would silently make every one of them unreadable.

use std::path::Path;

use anyhow::{Context as _, bail};
use vireo_core::{MasterKeyRecord, SecretStore};
use vireo_store::StorageConfig;

use super::cipher::Cipher;
use super::key_file;

/// Secrets tried against the key: the newest, so a key replaced since some were sealed (which
/// Vireo never does) still shows.
const SAMPLE: u32 = 16;
/// What an operator runs when the key is lost for good: the secrets and the key's record go.
const FORGET_SECRETS: &str = "DELETE FROM secrets; DELETE FROM master_key";

/// The master key in `key_path` for the secrets in `store` (kept in `storage`); refuses to
/// start when the key is missing or is not theirs, or is not the key `record` holds the
/// fingerprint of (the one every node of the store must share).
pub async fn unlock(
    key_path: &Path,
    store: &dyn SecretStore,
    record: &dyn MasterKeyRecord,
    storage: &StorageConfig,
) -> anyhow::Result<Cipher> {
    let (cipher, created) = open_key(key_path, store, storage).await?;
    let fingerprint = cipher.fingerprint();
    let recorded = record
        .record_master_key(&fingerprint)
        .await
        .context("recording the master key's fingerprint in the store")?;
    if recorded == fingerprint {
        return Ok(cipher);
    }
    let at = key_path.display();
    if created {
        // Nothing was sealed with it; leaving it would only make the next start fail the same way.
        std::fs::remove_file(key_path)
            .with_context(|| format!("removing the master key {at} this start created"))?;
        bail!(
            "this store's secrets are sealed with a master key another node (or an earlier start) \
             recorded, and {at} did not exist. Every node of a store shares one master key: copy \
             the master key file of a node of this store to {at} (or point --master-key-file / \
             VIREO_MASTER_KEY_FILE at it) and start again. If that key is lost for good, so are \
             the secrets' values: `{}` forgets both",
            forget_command(storage)
        );
    }
    bail!(
        "the master key in {at} is not the key this store's secrets are sealed with (the store \
         recorded another's fingerprint). Every node of a store shares one master key: copy the \
         master key file of a node of this store to {at} (or point --master-key-file / \
         VIREO_MASTER_KEY_FILE at it) and start again"
    )
}

/// The key in `key_path`, checked against the stored secrets, or a new one (`true`) when there
/// is none and nothing is sealed yet.
async fn open_key(
    key_path: &Path,
    store: &dyn SecretStore,
    storage: &StorageConfig,
) -> anyhow::Result<(Cipher, bool)> {
    let sample = store
        .sample_sealed(SAMPLE)
        .await
        .context("reading the stored secrets to check the master key")?;
    let at = key_path.display();
    let total = sample.total;
    let delete = forget_command(storage);
    let if_lost = format!(
        "If that key is lost for good, so are the secrets' values: delete them with \
         `{delete}`, start, and set each secret again"
    );
    let Some(cipher) = key_file::load(key_path)? else {
        if total == 0 {
            return Ok((key_file::create(key_path)?, true));
        }
        bail!(
            "the master key file {at} is missing, but the store holds {total} sealed secrets \
             that only that key opens. Restore {at} from your backup of the data directory (or \
             point --master-key-file / VIREO_MASTER_KEY_FILE at it) and start again; a new key \
             is not created, as it would leave every secret unreadable. {if_lost}"
        );
    };
    let unreadable: Vec<String> = sample
        .secrets
        .iter()
        .filter(|(namespace, name, sealed)| cipher.open(namespace, name, sealed).is_err())
        .map(|(namespace, name, _)| format!("{namespace}/{name}"))
        .collect();
    if !sample.secrets.is_empty() && unreadable.len() == sample.secrets.len() {
        bail!(
            "the master key in {at} does not open the store's {total} sealed secrets: it is not \
             the key they were sealed with. Restore the original {at} from your backup of the \
             data directory (or point --master-key-file / VIREO_MASTER_KEY_FILE at it) and start \
             again. {if_lost}"
        );
    }
    if !unreadable.is_empty() {
        tracing::warn!(
            secrets = %unreadable.join(", "),
            "some secrets cannot be opened with the master key, though others can: their rows were altered; set them again"
        );
    }
    Ok((cipher, false))
}

/// The command that deletes the secrets and the key's record, for an operator whose key is lost.
fn forget_command(storage: &StorageConfig) -> String {
    match storage {
        StorageConfig::Sqlite { path } => {
            format!("sqlite3 {} '{FORGET_SECRETS}'", path.display())
        }
        StorageConfig::Postgres(config) => format!(
            "psql {} -c '{FORGET_SECRETS}'",
            vireo_store::redacted_url(&config.url)
        ),
    }
}

#[cfg(test)]
mod tests {
    use vireo_core::{Name, SecretName, SecretValue};
    use vireo_store::{StorageConfig, Stores};

    use super::*;

    struct Data {
        dir: tempfile::TempDir,
        stores: Stores,
    }

    impl Data {
        async fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let stores = vireo_store::open(&StorageConfig::Sqlite {
                path: dir.path().join("vireo.db"),
            })
            .await
            .unwrap();
            Self { dir, stores }
        }

        fn key(&self) -> std::path::PathBuf {
            self.dir.path().join("master.key")
        }

        async fn unlock(&self) -> anyhow::Result<Cipher> {
            self.unlock_with(&self.key()).await
        }

        /// Unlocks as a node whose key file is `key`.
        async fn unlock_with(&self, key: &Path) -> anyhow::Result<Cipher> {
            let storage = StorageConfig::Sqlite {
                path: self.dir.path().join("vireo.db"),
            };
            unlock(
                key,
                self.stores.secrets.as_ref(),
                self.stores.master_key.as_ref(),
                &storage,
            )
            .await
        }

        async fn seal(&self, cipher: &Cipher, name: &str) {
            let (namespace, name) = (Name::default_namespace(), SecretName::parse(name).unwrap());
            let sealed = cipher
                .seal(&namespace, &name, &SecretValue::new("v".into()).unwrap())
                .unwrap();
            self.stores
                .secrets
                .put_secret(&namespace, &name, &sealed, 1)
                .await
                .unwrap();
        }
    }

    #[tokio::test]
    async fn a_store_without_secrets_gets_a_new_key_and_keeps_it() {
        let data = Data::new().await;
        let created = data.unlock().await.unwrap();
        data.seal(&created, "TOKEN").await;
        let again = data.unlock().await.unwrap();
        let (namespace, name) = (
            Name::default_namespace(),
            SecretName::parse("TOKEN").unwrap(),
        );
        let sample = data.stores.secrets.sample_sealed(1).await.unwrap();
        assert_eq!(
            again.open(&namespace, &name, &sample.secrets[0].2).unwrap(),
            "v"
        );
    }

    #[tokio::test]
    async fn a_missing_key_is_not_replaced_while_secrets_exist() {
        let data = Data::new().await;
        let cipher = data.unlock().await.unwrap();
        data.seal(&cipher, "TOKEN").await;
        std::fs::remove_file(data.key()).unwrap();
        let refused = data.unlock().await.err().unwrap().to_string();
        assert!(refused.contains("is missing"), "{refused}");
        assert!(
            refused.contains(&data.key().display().to_string()),
            "{refused}"
        );
        assert!(refused.contains("1 sealed secrets"), "{refused}");
        assert!(!data.key().exists(), "no new key was written");
    }

    #[tokio::test]
    async fn another_key_is_refused() {
        let data = Data::new().await;
        let cipher = data.unlock().await.unwrap();
        data.seal(&cipher, "KEPT").await;
        std::fs::remove_file(data.key()).unwrap();
        let other = key_file::create(&data.key()).unwrap();
        let refused = data.unlock().await.err().unwrap().to_string();
        assert!(
            refused.contains("is not the key they were sealed with"),
            "{refused}"
        );
        // Even once it opens some secret: the store recorded the first key as its own.
        data.seal(&other, "NEWER").await;
        let refused = data.unlock().await.err().unwrap().to_string();
        assert!(
            refused.contains("recorded another's fingerprint"),
            "{refused}"
        );
    }

    #[tokio::test]
    async fn a_node_that_would_create_a_second_key_is_refused_before_any_secret_exists() {
        let data = Data::new().await;
        data.unlock().await.unwrap();
        // The second node of the store has no key file yet.
        let second_node_key = data.dir.path().join("second-node.key");
        let refused = data
            .unlock_with(&second_node_key)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(refused.contains("copy the master key file"), "{refused}");
        assert!(!second_node_key.exists(), "the key it created is gone");
        // With the first node's key copied, it starts.
        std::fs::copy(data.key(), &second_node_key).unwrap();
        let copied = data.unlock_with(&second_node_key).await;
        assert!(copied.is_ok(), "{:?}", copied.err());
    }
}
