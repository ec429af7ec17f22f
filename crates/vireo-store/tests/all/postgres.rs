//! The PostgreSQL backend: the whole conformance suite, each case on a fresh database of one
//! throwaway server this test binary starts (and a missing or broken PostgreSQL fails every
//! case with the reason), and what only a networked store has.

use vireo_store::conformance::Fixture;
use vireo_store::conformance::support::{AT, default_function, new_version};
use vireo_store::{PostgresConfig, StorageConfig, Stores};
use vireo_testsvc::Postgres;

/// Connections per node in the tests: the change listener and a few for the work.
const TEST_CONNECTIONS: u32 = 4;

/// A fresh database on the shared server; a second node connects to the same database.
pub struct PostgresFixture {
    config: StorageConfig,
    stores: Stores,
}

/// The config of a fresh, empty database on the test server.
fn fresh_database() -> StorageConfig {
    let url = Postgres::shared()
        .create_database()
        .unwrap_or_else(|e| panic!("creating a test database: {e}"));
    StorageConfig::Postgres(PostgresConfig {
        max_connections: TEST_CONNECTIONS,
        ..PostgresConfig::new(url)
    })
}

#[async_trait::async_trait]
impl Fixture for PostgresFixture {
    async fn fresh() -> Self {
        let config = fresh_database();
        let stores = vireo_store::open(&config).await.unwrap();
        Self { config, stores }
    }

    fn stores(&self) -> &Stores {
        &self.stores
    }

    async fn second_node(&self) -> Stores {
        vireo_store::open(&self.config).await.unwrap()
    }
}

vireo_store::conformance_suite!(PostgresFixture);

/// sqlx's PostgreSQL migrator holds an advisory lock while it migrates, so nodes starting at
/// the same moment on an empty database create the schema once and all come up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_together_on_an_empty_database_migrate_it_once() {
    const NODES: usize = 6;
    let config = fresh_database();
    let starting: Vec<_> = (0..NODES)
        .map(|_| {
            let config = config.clone();
            tokio::spawn(async move { vireo_store::open(&config).await })
        })
        .collect();
    let mut nodes = Vec::new();
    for (n, node) in starting.into_iter().enumerate() {
        let opened = node.await.unwrap();
        nodes.push(opened.unwrap_or_else(|e| panic!("node {n} failed to start: {e}")));
    }
    for node in &nodes {
        let namespaces = node.tenants.list_namespaces().await.unwrap();
        let names: Vec<&str> = namespaces.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["default"], "the schema was created once");
    }
    let (namespace, function) = default_function("shared");
    nodes[0]
        .catalog
        .add_version(&namespace, &function, new_version("aa"), AT)
        .await
        .unwrap();
    let seen = nodes[NODES - 1]
        .catalog
        .get_function(&namespace, &function)
        .await
        .unwrap();
    assert_eq!(seen.latest_version, Some(1));
}

#[tokio::test]
async fn a_database_that_is_down_is_named_without_its_password() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://vireo:hunter2@127.0.0.1:{port}/vireo");
    let started = std::time::Instant::now();
    let Err(error) = vireo_store::open(&StorageConfig::Postgres(PostgresConfig::new(url))).await
    else {
        panic!("opened a database that is not there");
    };
    let message = error.to_string();
    assert!(
        message.contains(&format!("postgres://vireo:***@127.0.0.1:{port}/vireo")),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert_eq!(
        error.class(),
        vireo_core::ErrorClass::Unavailable { retryable: true },
        "{message}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "a refused connection is reported at once, not after the pool's timeout"
    );
}
