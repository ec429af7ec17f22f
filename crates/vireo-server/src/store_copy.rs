//! `vireo store copy`: moves an installation between stores (a single node's data directory
//! into a cluster's PostgreSQL), with no server running on a SQLite end meanwhile.

use std::path::Path;

use anyhow::{Context as _, bail};
use vireo_store::{CopyProgress, CopyReport, StorageConfig};

use crate::store_config::{self, StoreFileConfig};
use crate::{data_dir, single_node};

/// Copies everything in the store `from` names into the empty store `to` names; each is a data
/// directory, `sqlite:PATH` or a `postgres://` URL.
pub async fn copy_store(
    from: &str,
    to: &str,
    progress: &(dyn Fn(CopyProgress<'_>) + Sync),
) -> anyhow::Result<CopyReport> {
    let (source, target) = (location(from)?, location(to)?);
    if let StorageConfig::Sqlite { path } = &source
        && !path.exists()
    {
        bail!(
            "there is no Vireo store at {from}: {} does not exist",
            path.display()
        );
    }
    if source == target {
        bail!("--from and --to name the same store");
    }
    // Held until the copy ends: no server may write a SQLite end meanwhile.
    let _claims = [&source, &target]
        .into_iter()
        .filter_map(|storage| match storage {
            StorageConfig::Sqlite { path } => Some(single_node::claim(path)),
            StorageConfig::Postgres(_) => None,
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    vireo_store::copy(&source, &target, progress)
        .await
        .with_context(|| {
            format!(
                "copying {} into {}",
                store_config::shown(&source),
                store_config::shown(&target)
            )
        })
}

/// A data directory (its `vireo.db`), or a store URL.
fn location(text: &str) -> anyhow::Result<StorageConfig> {
    if text.starts_with("sqlite:") || text.contains("://") {
        return store_config::storage(Some(text), &StoreFileConfig::default(), Path::new("."));
    }
    Ok(StorageConfig::Sqlite {
        path: Path::new(text).join(data_dir::DATABASE),
    })
}
