//! Precompiled components on disk, keyed by content hash and engine compatibility hash, so a
//! restart or a reload after idling maps the artifact instead of compiling again.
//!
//! Mapping an artifact runs its machine code, so none is mapped unverified. Beside each artifact
//! Vireo records the sha256 of the bytes it wrote (`<artifact>.sha256`, `sha256sum` format); an
//! artifact whose bytes do not match it — damaged, truncated, replaced, or left without its
//! digest by a crash — or that wasmtime refuses is removed with a warning, and its version is
//! compiled again from the component.

mod verified;

use std::collections::hash_map::DefaultHasher;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

use tempfile::NamedTempFile;
use wasmtime::Engine;
use wasmtime::component::Component;

use verified::{FileIdentity, VerifiedFiles};

/// Files being written start with this; any found at start belonged to a write a crash cut off.
const INCOMING_PREFIX: &str = ".incoming-";
/// What earlier versions named their temporary files here (`tempfile`'s default prefix).
const OLD_TEMPORARY_PREFIX: &str = ".tmp";

pub struct ArtifactCache {
    dir: PathBuf,
    engine_hash: String,
    verified: VerifiedFiles,
    /// Held while an artifact and its digest are put in place or removed, so that a pair never
    /// mixes two writers' files.
    placing: Mutex<()>,
}

/// What checking an artifact against its recorded digest found.
enum Check {
    Missing,
    Intact(FileIdentity),
    Damaged { seen: FileIdentity, reason: String },
}

impl ArtifactCache {
    /// Uses `dir` (created if missing) for `engine`'s artifacts, after removing the temporary
    /// files of writes that never finished.
    pub fn open(dir: &Path, engine: &Engine) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        remove_unfinished_writes(dir)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_path_buf(),
            engine_hash: format!("{:016x}", hasher.finish()),
            verified: VerifiedFiles::default(),
            placing: Mutex::new(()),
        })
    }

    pub fn path(&self, component_sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{component_sha256}-{}.cwasm", self.engine_hash))
    }

    /// The artifact, once its bytes matched their recorded digest; `None` if there is none or it
    /// was discarded (then the component must be compiled again). Blocking: call from a blocking
    /// thread.
    pub fn load(&self, engine: &Engine, component_sha256: &str) -> io::Result<Option<Component>> {
        let path = self.path(component_sha256);
        let seen = match self.check(&path)? {
            Check::Missing => return Ok(None),
            Check::Damaged { seen, reason } => {
                self.discard(&path, seen, &reason);
                return Ok(None);
            }
            Check::Intact(seen) => seen,
        };
        // SAFETY: the file holds exactly the bytes Vireo wrote after compiling a component itself
        // (never bytes a user uploaded as "precompiled"): its sha256 was just checked, or was on
        // an earlier load in this process and the file has not changed since. Its name binds the
        // engine compatibility hash, and wasmtime re-checks compatibility while deserializing.
        #[expect(
            unsafe_code,
            reason = "mapping our own verified precompiled artifact is the point of the cache"
        )]
        let loaded = unsafe { Component::deserialize_file(engine, &path) };
        match loaded {
            Ok(component) => Ok(Some(component)),
            Err(error) => {
                self.discard(&path, seen, &format!("wasmtime refused it: {error:#}"));
                Ok(None)
            }
        }
    }

    /// Stores a freshly compiled artifact with its digest and returns it loaded. Each file is
    /// written whole under a temporary name, synced, then renamed into place. Blocking.
    pub fn store(
        &self,
        engine: &Engine,
        component_sha256: &str,
        compiled: &[u8],
    ) -> wasmtime::Result<Component> {
        let path = self.path(component_sha256);
        let artifact = self.write_incoming(compiled)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let digest = verified::digest_line(&verified::sha256_hex(compiled), &name);
        let digest = self.write_incoming(digest.as_bytes())?;
        // SAFETY: these are the bytes the engine compiled a moment ago, written by this call.
        // Mapped before the file takes its name, so a concurrent writer of the same artifact
        // renaming its own copy over the name cannot change what this call returns.
        #[expect(
            unsafe_code,
            reason = "mapping the artifact this call compiled and wrote"
        )]
        let component = unsafe { Component::deserialize_file(engine, artifact.path())? };
        let checked_at = SystemTime::now();
        let _placing = self.lock_placing();
        artifact.persist(&path).map_err(|e| e.error)?;
        digest.persist(digest_path(&path)).map_err(|e| e.error)?;
        let identity = FileIdentity::of(&std::fs::metadata(&path)?);
        self.verified.insert(path, identity, checked_at);
        Ok(component)
    }

    /// Removes the artifact and its digest (a rejected component's artifact only takes space).
    pub fn remove(&self, component_sha256: &str) {
        let path = self.path(component_sha256);
        let _placing = self.lock_placing();
        self.remove_pair(&path);
    }

    /// Compares the artifact at `path` with its recorded digest, unless it was found intact in
    /// this process and has not changed since.
    fn check(&self, path: &Path) -> io::Result<Check> {
        let mut file = match File::open(path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Check::Missing),
            Err(e) => return Err(e),
        };
        let seen = FileIdentity::of(&file.metadata()?);
        if self.verified.contains(path, seen) {
            return Ok(Check::Intact(seen));
        }
        let recorded = match std::fs::read_to_string(digest_path(path)) {
            Ok(text) => verified::parse_digest_line(&text).map(str::to_owned),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::InvalidData
                ) =>
            {
                None
            }
            Err(e) => return Err(e),
        };
        let Some(recorded) = recorded else {
            let reason =
                "it has no recorded sha256 (an older Vireo wrote it, or its write was cut off)"
                    .to_string();
            return Ok(Check::Damaged { seen, reason });
        };
        let (checked_at, started) = (SystemTime::now(), Instant::now());
        let actual = verified::sha256_of(&mut file)?;
        tracing::debug!(
            artifact = %path.display(),
            bytes = seen.size(),
            took_us = started.elapsed().as_micros() as u64,
            "checked a precompiled artifact's sha256"
        );
        if actual != recorded {
            let reason = format!("its sha256 is {actual}, but {recorded} was recorded");
            return Ok(Check::Damaged { seen, reason });
        }
        self.verified.insert(path.to_path_buf(), seen, checked_at);
        Ok(Check::Intact(seen))
    }

    /// Removes a damaged artifact, unless another load compiled and put a fresh one in its place
    /// since it was checked.
    fn discard(&self, path: &Path, seen: FileIdentity, reason: &str) {
        let _placing = self.lock_placing();
        let current = std::fs::metadata(path).ok().map(|m| FileIdentity::of(&m));
        if current != Some(seen) {
            return;
        }
        self.remove_pair(path);
        tracing::warn!(
            artifact = %path.display(),
            reason,
            "discarded a damaged precompiled artifact; the component is compiled again"
        );
    }

    /// Removes an artifact and its digest; the caller holds `placing`.
    fn remove_pair(&self, path: &Path) {
        self.verified.remove(path);
        for file in [path.to_path_buf(), digest_path(path)] {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                // Still there: the next load finds it damaged again and the next store
                // renames over it.
                Err(error) => {
                    tracing::warn!(file = %file.display(), %error, "cannot remove an artifact file")
                }
            }
        }
    }

    fn write_incoming(&self, bytes: &[u8]) -> io::Result<NamedTempFile> {
        let mut file = tempfile::Builder::new()
            .prefix(INCOMING_PREFIX)
            .tempfile_in(&self.dir)?;
        file.write_all(bytes)?;
        file.as_file().sync_all()?;
        Ok(file)
    }

    fn lock_placing(&self) -> MutexGuard<'_, ()> {
        self.placing.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn digest_path(artifact: &Path) -> PathBuf {
    let mut name = artifact.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

/// Removes the temporary files of writes a crash cut off. Only this server writes here (it
/// holds the data directory's lock), so none can belong to a write still running.
fn remove_unfinished_writes(dir: &Path) -> io::Result<()> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(INCOMING_PREFIX) || name.starts_with(OLD_TEMPORARY_PREFIX) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(dir = %dir.display(), removed, "removed temporary artifact files left by an interrupted write");
    }
    Ok(())
}

#[cfg(test)]
mod tests;
