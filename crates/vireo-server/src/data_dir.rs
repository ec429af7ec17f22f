//! The data directory at start: one server at a time, and a database that still describes the
//! files beside it.

use std::path::Path;

use anyhow::{Context as _, bail};

/// The database file in the data directory.
pub const DATABASE: &str = "vireo.db";
/// Component bytes, named by their sha256.
pub const COMPONENTS: &str = vireo_store::COMPONENTS_DIR;
/// Compiled components.
pub const ARTIFACTS: &str = "artifacts";

/// Holds an exclusive lock on `<data>/vireo.lock` for the server's lifetime: two servers on one
/// SQLite store would each take the other's running async invocations for orphans.
pub fn lock(data_dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = data_dir.join("vireo.lock");
    let file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another Vireo server is using the data directory {}; stop it or pass a different --data",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(error)) => {
            Err(error).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Refuses to start on a missing or empty database beside components and artifacts that a
/// database described: starting would create an empty store, and every function, version, key
/// and secret would be gone without a word.
pub fn refuse_lost_database(data_dir: &Path, database: &Path) -> anyhow::Result<()> {
    if holds_data(database)? {
        return Ok(());
    }
    let mut stale = Vec::new();
    for dir in [COMPONENTS, ARTIFACTS] {
        let dir = data_dir.join(dir);
        let files = files_in(&dir)?;
        if files > 0 {
            stale.push((dir, files));
        }
    }
    if stale.is_empty() {
        return Ok(());
    }
    let found: Vec<String> = stale
        .iter()
        .map(|(dir, files)| format!("{files} files in {}", dir.display()))
        .collect();
    let move_aside: Vec<String> = stale
        .iter()
        .map(|(dir, _)| format!("mv {0} {0}.orphaned", dir.display()))
        .collect();
    bail!(
        "the database {} is missing or empty, but the data directory holds what an earlier \
         database described ({}): starting would create an empty store, without the functions, \
         versions, API keys and secrets it held. Restore {DATABASE} (with {DATABASE}-wal if the \
         backup has one) from your backup and start again; nothing was changed. To start with an empty store \
         instead, move the old files aside first: {}",
        database.display(),
        found.join(", "),
        move_aside.join("; ")
    )
}

/// Whether the database file holds anything. SQLite writes its header when it creates the
/// file; it treats an empty file as a new database and discards the write-ahead log beside it.
fn holds_data(database: &Path) -> anyhow::Result<bool> {
    match std::fs::metadata(database) {
        Ok(metadata) => Ok(metadata.len() > 0),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", database.display())),
    }
}

/// Regular files in `dir` (none if it does not exist), leaving out hidden ones: temporary files
/// of writes that never finished.
fn files_in(dir: &Path) -> anyhow::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(error) => {
            return Err(error).with_context(|| format!("cannot list {}", dir.display()));
        }
    };
    let mut files = 0;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list {}", dir.display()))?;
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && entry.file_type().is_ok_and(|kind| kind.is_file()) {
            files += 1;
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(data: &Path) -> Option<String> {
        refuse_lost_database(data, &data.join(DATABASE))
            .err()
            .map(|e| e.to_string())
    }

    #[test]
    fn a_fresh_or_intact_data_directory_starts() {
        let data = tempfile::tempdir().unwrap();
        assert_eq!(refusal(data.path()), None, "nothing there at all");
        std::fs::create_dir(data.path().join(COMPONENTS)).unwrap();
        std::fs::write(data.path().join(COMPONENTS).join(".incoming-x"), b"partial").unwrap();
        assert_eq!(
            refusal(data.path()),
            None,
            "only an unfinished temporary file"
        );
        std::fs::write(data.path().join(COMPONENTS).join("ab.wasm"), b"wasm").unwrap();
        std::fs::write(data.path().join(DATABASE), b"SQLite format 3\0").unwrap();
        assert_eq!(refusal(data.path()), None, "the database is there");
    }

    #[test]
    fn components_or_artifacts_without_their_database_are_refused() {
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir(data.path().join(ARTIFACTS)).unwrap();
        std::fs::write(data.path().join(ARTIFACTS).join("ab.cwasm"), b"code").unwrap();
        let refused = refusal(data.path()).expect("no database");
        assert!(refused.contains("1 files in"), "{refused}");
        assert!(refused.contains(".orphaned"), "{refused}");
        // An empty file is no database either, even with a log beside it: SQLite would drop it.
        std::fs::write(data.path().join(DATABASE), b"").unwrap();
        std::fs::write(data.path().join("vireo.db-wal"), b"frames").unwrap();
        assert!(refusal(data.path()).is_some(), "an empty database");
    }
}
