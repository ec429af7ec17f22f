//! `<data>/server.address`: where the server using the data directory listens. The CLI sends
//! the admin key the directory holds only to that server, never to another one on this
//! machine (which would refuse it, or worse, learn it).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The file's name in the data directory.
pub const ADDRESS_FILE: &str = "server.address";

/// The written file; removed when the server stops.
pub struct OwnerAddress(PathBuf);

impl OwnerAddress {
    /// Writes `address` whole (a temporary file renamed over the old one), so a reader never
    /// sees half of it.
    pub fn write(data_dir: &Path, address: std::net::SocketAddr) -> anyhow::Result<Self> {
        let path = data_dir.join(ADDRESS_FILE);
        let partial = data_dir.join(format!("{ADDRESS_FILE}.partial"));
        std::fs::write(&partial, format!("{address}\n"))
            .and_then(|()| std::fs::rename(&partial, &path))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self(path))
    }
}

impl Drop for OwnerAddress {
    fn drop(&mut self) {
        // Gone already, or unremovable: a later start writes it again either way.
        let _ = std::fs::remove_file(&self.0);
    }
}
