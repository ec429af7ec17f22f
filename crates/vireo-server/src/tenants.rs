//! Loading namespaces and keys at start, and making sure someone can administer the server: the
//! key in `VIREO_ADMIN_KEY`, or one created on first start in `<data>/admin.key`.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use vireo_core::auth::generate_key;
use vireo_core::time::now_micros;
use vireo_core::{ApiKey, Directory, Role, TenantStore};

/// The variable an operator sets to choose the admin key instead of getting one in a file.
pub const ADMIN_KEY_ENV: &str = "VIREO_ADMIN_KEY";
/// The file the first start writes its admin key to (mode 0600).
pub const ADMIN_KEY_FILE: &str = "admin.key";
const MIN_ADMIN_KEY_LEN: usize = 32;

pub async fn open_directory(
    store: Arc<dyn TenantStore>,
    data_dir: &Path,
) -> anyhow::Result<Directory> {
    let external = std::env::var(ADMIN_KEY_ENV)
        .ok()
        .filter(|key| !key.is_empty());
    if let Some(key) = &external
        && key.len() < MIN_ADMIN_KEY_LEN
    {
        anyhow::bail!(
            "{ADMIN_KEY_ENV} must be at least {MIN_ADMIN_KEY_LEN} characters; generate one with e.g. `openssl rand -base64 32`"
        );
    }
    let directory = Directory::load(store, external.as_deref())
        .await
        .context("loading namespaces and API keys")?;
    if external.is_none() && !directory.has_admin_key() {
        create_admin_key(&directory, data_dir).await?;
    }
    Ok(directory)
}

/// Stores a new admin key and writes it, readable by this user only, where the CLI looks.
async fn create_admin_key(directory: &Directory, data_dir: &Path) -> anyhow::Result<()> {
    let generated = generate_key();
    let path = data_dir.join(ADMIN_KEY_FILE);
    // A file left from an earlier store holds a key this store does not know.
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).with_context(|| format!("cannot replace {}", path.display()));
        }
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{}", generated.key)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    directory
        .create_key(ApiKey {
            id: generated.id,
            role: Role::Admin,
            namespaces: Vec::new(),
            description: Some(format!("created at first start in {}", path.display())),
            created_at_us: now_micros(),
            expires_at_us: None,
            revoked_at_us: None,
            secret_sha256: generated.secret_sha256,
        })
        .await
        .context("storing the admin key")?;
    tracing::info!(file = %path.display(), "created an admin API key; the CLI on this machine reads it from there");
    Ok(())
}
