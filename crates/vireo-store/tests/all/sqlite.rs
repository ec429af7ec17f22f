//! The SQLite backend: the whole conformance suite, on a fresh file per case, and what only a
//! file-backed store has.

use tempfile::TempDir;
use vireo_store::conformance::Fixture;
use vireo_store::conformance::support::{AT, default_function, new_version};
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

#[tokio::test]
async fn sqlite_reopens_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig::Sqlite {
        path: dir.path().join("vireo.db"),
    };
    let stores = vireo_store::open(&config).await.unwrap();
    let (namespace, function) = default_function("hello");
    stores
        .catalog
        .add_version(&namespace, &function, new_version("aa"), AT)
        .await
        .unwrap();
    stores.close().await;

    let stores = vireo_store::open(&config).await.unwrap();
    let info = stores
        .catalog
        .get_function(&namespace, &function)
        .await
        .unwrap();
    assert_eq!(info.latest_version, Some(1));
}
