//! The SQLite backend: the whole conformance suite, on a fresh file per case.

use tempfile::TempDir;
use vireo_store::conformance::Fixture;
use vireo_store::{StorageConfig, Stores};

/// A database file in its own directory; a second node opens the same file.
pub struct SqliteFixture {
    config: StorageConfig,
    stores: Stores,
    /// Kept as long as the stores; deleted with the fixture.
    _dir: TempDir,
}

#[async_trait::async_trait]
impl Fixture for SqliteFixture {
    async fn fresh() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = StorageConfig::Sqlite {
            path: dir.path().join("vireo.db"),
        };
        let stores = vireo_store::open(&config).await.unwrap();
        Self {
            config,
            stores,
            _dir: dir,
        }
    }

    fn stores(&self) -> &Stores {
        &self.stores
    }

    async fn second_node(&self) -> Stores {
        vireo_store::open(&self.config).await.unwrap()
    }
}

vireo_store::conformance_suite!(SqliteFixture);
