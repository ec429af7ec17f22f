//! What only a single-node installation does. One server holds the data directory (a lock),
//! its database must still describe the files beside it, and async invocations left running
//! can only belong to a server that stopped, so they are redelivered at start. A store shared
//! by several nodes replaces all three: its nodes take over each other's work when leases
//! expire, not at start.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use vireo_core::Queue;
use vireo_store::StorageConfig;

use crate::data_dir;

/// The data directory, held for as long as this value lives.
pub struct SingleNode {
    database: PathBuf,
    _lock: File,
}

/// Creates the data directory if needed, locks it, and refuses a database that no longer
/// describes the components and artifacts beside it.
pub fn claim(data_dir: &Path) -> anyhow::Result<SingleNode> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let lock = data_dir::lock(data_dir)?;
    data_dir::refuse_lost_database(data_dir)?;
    Ok(SingleNode {
        database: data_dir.join(data_dir::DATABASE),
        _lock: lock,
    })
}

impl SingleNode {
    /// The SQLite file in the data directory.
    pub fn database(&self) -> &Path {
        &self.database
    }

    pub fn storage(&self) -> StorageConfig {
        StorageConfig::Sqlite {
            path: self.database.clone(),
        }
    }

    /// This server holds the data directory alone, so whatever was running belonged to a
    /// server that stopped without finishing it: redeliver it now.
    pub async fn redeliver_orphans(&self, queue: &dyn Queue) -> anyhow::Result<()> {
        let orphaned = queue
            .reclaim_expired(i64::MAX, vireo_core::time::now_micros())
            .await
            .context("requeueing async invocations left running")?;
        if orphaned > 0 {
            tracing::info!(
                orphaned,
                "redelivering async invocations that were running when the last server stopped"
            );
        }
        Ok(())
    }
}
