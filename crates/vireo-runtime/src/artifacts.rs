//! Precompiled components on disk, keyed by content hash and engine compatibility hash, so a
//! restart or a reload after idling maps the artifact instead of compiling again.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

pub struct ArtifactCache {
    dir: PathBuf,
    engine_hash: String,
}

impl ArtifactCache {
    pub fn open(dir: &Path, engine: &Engine) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(Self {
            dir: dir.to_path_buf(),
            engine_hash: format!("{:016x}", hasher.finish()),
        })
    }

    pub fn path(&self, component_sha256: &str) -> PathBuf {
        self.dir
            .join(format!("{component_sha256}-{}.cwasm", self.engine_hash))
    }

    /// Loads the artifact if it exists. Blocking: call from a blocking thread.
    pub fn load(
        &self,
        engine: &Engine,
        component_sha256: &str,
    ) -> wasmtime::Result<Option<Component>> {
        let path = self.path(component_sha256);
        if !path.exists() {
            return Ok(None);
        }
        // SAFETY: only Vireo writes this directory, and only with bytes it compiled itself from
        // a component (never bytes a user uploaded as "precompiled"); the name binds the engine
        // compatibility hash, and wasmtime re-checks compatibility while deserializing.
        #[expect(
            unsafe_code,
            reason = "mapping our own precompiled artifact is the point of the cache"
        )]
        let component = unsafe { Component::deserialize_file(engine, &path)? };
        Ok(Some(component))
    }

    /// Stores a freshly compiled artifact atomically (a crash never leaves half a file under
    /// the final name) and loads it. Blocking.
    pub fn store(
        &self,
        engine: &Engine,
        component_sha256: &str,
        compiled: &[u8],
    ) -> wasmtime::Result<Component> {
        let path = self.path(component_sha256);
        let mut temp = tempfile::NamedTempFile::new_in(&self.dir)?;
        temp.write_all(compiled)?;
        temp.as_file().sync_all()?;
        temp.persist(&path).map_err(|e| e.error)?;
        self.load(engine, component_sha256)?.ok_or_else(|| {
            wasmtime::format_err!("artifact {} vanished after writing", path.display())
        })
    }
}
