//! Choosing the master key at start. The key file must open the secrets already stored; a new
//! key is created only for a store that holds none, because a new key over existing secrets
//! would silently make every one of them unreadable.

use std::path::Path;

use anyhow::{Context as _, bail};
use vireo_core::SecretStore;

use super::cipher::Cipher;
use super::key_file;

/// Secrets tried against the key: the newest, so a key replaced since some were sealed (which
/// Vireo never does) still shows.
const SAMPLE: u32 = 16;

/// The master key in `key_path` for the secrets in `store` (kept in the file `database`);
/// refuses to start when the key is missing or is not theirs.
pub async fn unlock(
    key_path: &Path,
    store: &dyn SecretStore,
    database: &Path,
) -> anyhow::Result<Cipher> {
    let sample = store
        .sample_sealed(SAMPLE)
        .await
        .context("reading the stored secrets to check the master key")?;
    let at = key_path.display();
    let total = sample.total;
    let if_lost = format!(
        "If that key is lost for good, so are the secrets' values: delete them with \
         `sqlite3 {} 'DELETE FROM secrets'`, start, and set each secret again",
        database.display()
    );
    let Some(cipher) = key_file::load(key_path)? else {
        if total == 0 {
            return key_file::create(key_path);
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
    Ok(cipher)
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
            let database = self.dir.path().join("vireo.db");
            unlock(&self.key(), self.stores.secrets.as_ref(), &database).await
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
    async fn another_key_is_refused_unless_it_opens_some_secret() {
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
        // One secret it does open (an altered row aside) is enough to accept it.
        data.seal(&other, "NEWER").await;
        data.unlock().await.unwrap();
    }
}
