//! Whether a file still holds the bytes Vireo wrote: their sha256 against the digest recorded
//! beside them. A file is hashed once per process per state: its identity (device, inode, size,
//! modification and change times) is remembered after a match, and any change to the file —
//! rewritten in place, truncated, renamed over — changes its change time or inode, which user
//! space cannot set back, so it is hashed again.
//!
//! File times tick coarsely (a few milliseconds), so a write right after a check could keep the
//! change time it saw. As git does with "racily clean" index entries, a file changed less than
//! [`SETTLED`] before its check is not remembered: it is hashed again on its next load.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::{self, Read as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use sha2::{Digest as _, Sha256};

/// How long before its check a file's last change must lie for the check to be remembered.
const SETTLED: Duration = Duration::from_secs(2);

/// One state of one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FileIdentity {
    device: u64,
    inode: u64,
    size: u64,
    modified: (i64, i64),
    changed: (i64, i64),
}

impl FileIdentity {
    pub fn of(metadata: &Metadata) -> Self {
        Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            size: metadata.size(),
            modified: (metadata.mtime(), metadata.mtime_nsec()),
            changed: (metadata.ctime(), metadata.ctime_nsec()),
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the file's last change lies at least [`SETTLED`] before `checked_at`, so no
    /// later write can share its change time.
    fn settled_before(&self, checked_at: SystemTime) -> bool {
        let changed = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(self.changed.0).unwrap_or(0))
            + Duration::from_nanos(u64::try_from(self.changed.1).unwrap_or(0));
        checked_at
            .duration_since(changed)
            .is_ok_and(|age| age >= SETTLED)
    }
}

/// The files found intact in this process, by path, with the identity they had then.
#[derive(Default)]
pub(super) struct VerifiedFiles(Mutex<HashMap<PathBuf, FileIdentity>>);

impl VerifiedFiles {
    pub fn contains(&self, path: &Path, identity: FileIdentity) -> bool {
        self.lock().get(path) == Some(&identity)
    }

    /// Remembers that `path` matched its digest in the state `identity`, found by a check that
    /// started at `checked_at`; a file changed just before is not remembered (see the module).
    pub fn insert(&self, path: PathBuf, identity: FileIdentity, checked_at: SystemTime) {
        if identity.settled_before(checked_at) {
            self.lock().insert(path, identity);
        } else {
            self.remove(&path);
        }
    }

    pub fn remove(&self, path: &Path) {
        self.lock().remove(path);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, FileIdentity>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The hex sha256 of the rest of `file`.
pub(super) fn sha256_of(file: &mut File) -> io::Result<String> {
    // 64 KiB reads: fewer syscalls than 8 KiB ones on an artifact of megabytes. Not larger: with
    // a 1 MiB buffer the cold loads after a check measured ~0.5 ms slower (bench/cold-start.sh).
    let mut buffer = vec![0u8; 64 << 10];
    let mut hasher = Sha256::new();
    loop {
        match file.read(&mut buffer) {
            Ok(0) => return Ok(hex::encode(hasher.finalize())),
            Ok(read) => hasher.update(&buffer[..read]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// The digest line written beside a file, in `sha256sum` format so `sha256sum -c` checks it.
pub(super) fn digest_line(sha256: &str, file_name: &str) -> String {
    format!("{sha256}  {file_name}\n")
}

/// The digest a `digest_line` records, if `text` is one.
pub(super) fn parse_digest_line(text: &str) -> Option<&str> {
    let digest = text.split_whitespace().next()?;
    let valid = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then_some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_lines_round_trip_and_reject_garbage() {
        let sha = sha256_hex(b"artifact");
        assert_eq!(
            parse_digest_line(&digest_line(&sha, "a.cwasm")),
            Some(&*sha)
        );
        for bad in ["", "abc  a.cwasm\n", &format!("{}  x", &sha[1..]), "\0\0\0"] {
            assert_eq!(parse_digest_line(bad), None, "{bad:?}");
        }
    }

    fn identity(path: &Path) -> FileIdentity {
        FileIdentity::of(&std::fs::metadata(path).unwrap())
    }

    #[test]
    fn a_file_rewritten_in_place_has_another_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let before = identity(&path);
        let modified = std::fs::metadata(&path).unwrap().modified().unwrap();

        // Same size, modification time set back: the change time moves once the clock ticks.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            std::os::unix::fs::FileExt::write_at(&file, b"XX", 4).unwrap();
            file.set_modified(modified).unwrap();
            if identity(&path) != before {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the change time never moved"
            );
        }
    }

    #[test]
    fn only_files_settled_before_their_check_are_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"bytes").unwrap();
        let state = identity(&path);
        let verified = VerifiedFiles::default();

        verified.insert(path.clone(), state, SystemTime::now());
        assert!(!verified.contains(&path, state), "changed just now: racy");

        verified.insert(path.clone(), state, SystemTime::now() + SETTLED);
        assert!(verified.contains(&path, state));
        verified.remove(&path);
        assert!(!verified.contains(&path, state));
    }

    #[test]
    fn hashing_a_file_matches_hashing_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| i as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mut file = File::open(&path).unwrap();
        assert_eq!(sha256_of(&mut file).unwrap(), sha256_hex(&bytes));
    }
}
