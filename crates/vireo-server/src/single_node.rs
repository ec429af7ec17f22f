//! What only a single-node installation does. One server holds the data directory (a lock),
//! its database must still describe the files beside it, and async invocations left running
//! can only belong to a server that stopped, so they are redelivered at start. A store shared
//! by several nodes replaces all three: its nodes take over each other's work when leases
//! expire, not at start.

use std::fs::File;
use std::path::Path;

use anyhow::Context as _;
use vireo_core::Queue;

use crate::data_dir;

/// The data directory, held for as long as this value lives.
pub struct SingleNode {
    _lock: File,
}

/// Creates the database's directory if needed, locks it, and refuses a database that no
/// longer describes the components and artifacts beside it.
pub fn claim(database: &Path) -> anyhow::Result<SingleNode> {
    let dir = match database.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let lock = data_dir::lock(dir)?;
    data_dir::refuse_lost_database(dir, database)?;
    Ok(SingleNode { _lock: lock })
}

impl SingleNode {
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
