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
    if let (StorageConfig::Sqlite { path }, StorageConfig::Postgres(_)) = (&source, &target) {
        refuse_function_databases(path)?;
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

/// Functions' SQLite databases are files beside the store that a cluster cannot serve: a copy
/// into PostgreSQL would leave their data behind, so it is refused while any holds data.
fn refuse_function_databases(database: &Path) -> anyhow::Result<()> {
    let root = database
        .parent()
        .unwrap_or(Path::new("."))
        .join(vireo_store::SQLITE_DIR);
    let mut held = Vec::new();
    for namespace in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(namespace.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = file.file_name().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".db")
                && file.metadata().is_ok_and(|meta| meta.len() > 0)
            {
                held.push(format!(
                    "{}/{stem}",
                    namespace.file_name().to_string_lossy()
                ));
            }
        }
    }
    if !held.is_empty() {
        held.sort();
        bail!(
            "functions' SQLite databases hold data ({}), and a cluster has no SQLite databases: move that data into PostgreSQL yourself, then remove them with `vireo sqlite rm NS/DB`",
            held.join(", ")
        );
    }
    Ok(())
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
