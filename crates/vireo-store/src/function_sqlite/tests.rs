use super::*;

const WAIT: Duration = Duration::from_secs(5);

fn bounds() -> SqlBounds {
    SqlBounds {
        max_rows: 100,
        max_result_bytes: 1 << 20,
        timeout: Duration::from_secs(5),
    }
}

fn name(name: &str) -> Name {
    Name::parse("test", name).unwrap()
}

fn databases(dir: &Path, limits: SqliteLimits) -> FunctionDatabases {
    FunctionDatabases::new(dir, limits)
}

async fn execute(
    databases: &FunctionDatabases,
    database: &str,
    statement: &str,
    parameters: Vec<SqlValue>,
) -> Result<SqlRows, SqlFailure> {
    let mut connection = databases
        .connect(&name("ns"), &name(database), WAIT)
        .await
        .unwrap();
    connection.execute(statement, parameters, bounds()).await
}

async fn default_connection(databases: &FunctionDatabases) -> Box<dyn SqlConnection> {
    databases
        .connect(&name("ns"), &name("default"), WAIT)
        .await
        .unwrap()
}

fn failed(result: Result<SqlRows, SqlFailure>) -> String {
    match result {
        Err(SqlFailure::Failed(message)) => message,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn default_always_exists_and_named_databases_are_created_listed_and_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let databases = databases(dir.path(), SqliteLimits::default());
    let ns = name("ns");
    let listed = databases.list(&ns).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].name.as_str(), listed[0].bytes), ("default", 0));
    assert!(matches!(
        databases.create(&ns, &name("default")).await,
        Err(StoreError::SqliteDatabaseExists { .. })
    ));
    assert!(matches!(
        databases.connect(&ns, &name("notes"), WAIT).await.err(),
        Some(StoreError::SqliteDatabaseNotFound { .. })
    ));
    assert!(
        databases.pools.lock().unwrap().is_empty(),
        "a name never created leaves no pool"
    );
    databases.create(&ns, &name("notes")).await.unwrap();
    assert!(matches!(
        databases.create(&ns, &name("notes")).await,
        Err(StoreError::SqliteDatabaseExists { .. })
    ));
    execute(&databases, "notes", "CREATE TABLE t (x)", vec![])
        .await
        .unwrap();
    execute(&databases, "default", "CREATE TABLE d (x)", vec![])
        .await
        .unwrap();
    let listed = databases.list(&ns).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["default", "notes"]);
    assert!(listed.iter().all(|d| d.bytes > 0), "{listed:?}");

    databases.delete(&ns, &name("notes")).await.unwrap();
    assert!(matches!(
        databases.delete(&ns, &name("notes")).await,
        Err(StoreError::SqliteDatabaseNotFound { .. })
    ));
    // Deleting default empties it: the table is gone, the database is still there.
    databases.delete(&ns, &name("default")).await.unwrap();
    let tables = execute(
        &databases,
        "default",
        "SELECT name FROM sqlite_master",
        vec![],
    )
    .await
    .unwrap();
    assert!(tables.rows.is_empty(), "{tables:?}");
    // Another namespace sees none of it.
    let other = databases.list(&name("other")).await.unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].bytes, 0);
}

#[tokio::test]
async fn every_value_type_round_trips_and_changes_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let databases = databases(dir.path(), SqliteLimits::default());
    let mut connection = default_connection(&databases).await;
    connection
        .execute("CREATE TABLE t (i, r, s, b, n)", vec![], bounds())
        .await
        .unwrap();
    let row = vec![
        SqlValue::Integer(i64::MIN),
        SqlValue::Real(2.5),
        SqlValue::Text("héllo".into()),
        SqlValue::Blob(vec![0, 255, 7]),
        SqlValue::Null,
    ];
    let inserted = connection
        .execute(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
            row.clone(),
            bounds(),
        )
        .await
        .unwrap();
    assert_eq!((inserted.changes, inserted.last_insert_rowid), (1, 1));
    let selected = connection
        .execute("SELECT * FROM t", vec![], bounds())
        .await
        .unwrap();
    assert_eq!(selected.columns, ["i", "r", "s", "b", "n"]);
    assert_eq!(selected.rows, [row]);
}

#[tokio::test]
async fn statements_cannot_reach_other_files_or_change_how_the_database_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let databases = databases(dir.path(), SqliteLimits::default());
    let outside = dir.path().join("outside.db");
    let attach = format!("ATTACH DATABASE '{}' AS other", outside.display());
    assert!(
        failed(execute(&databases, "default", &attach, vec![]).await).contains("not authorized")
    );
    let vacuum = format!("VACUUM INTO '{}'", outside.display());
    failed(execute(&databases, "default", &vacuum, vec![]).await);
    assert!(!outside.exists(), "no file was made outside the database");
    for pragma in [
        "PRAGMA max_page_count = 1000000000",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA writable_schema = ON",
    ] {
        assert!(
            failed(execute(&databases, "default", pragma, vec![]).await).contains("not authorized"),
            "{pragma}"
        );
    }
    execute(&databases, "default", "PRAGMA foreign_keys = ON", vec![])
        .await
        .unwrap();
    execute(&databases, "default", "PRAGMA table_list", vec![])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_database_stops_at_its_size_and_a_runaway_statement_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let limits = SqliteLimits {
        max_database_mib: 1,
        ..SqliteLimits::default()
    };
    let databases = databases(dir.path(), limits);
    execute(&databases, "default", "CREATE TABLE t (b)", vec![])
        .await
        .unwrap();
    assert_eq!(
        execute(
            &databases,
            "default",
            "INSERT INTO t VALUES (zeroblob(2000000))",
            vec![]
        )
        .await,
        Err(SqlFailure::DatabaseFull)
    );
    let mut connection = default_connection(&databases).await;
    let forever =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    let short = SqlBounds {
        timeout: Duration::from_millis(200),
        ..bounds()
    };
    let started = Instant::now();
    let interrupted = failed(connection.execute(forever, vec![], short).await);
    assert!(interrupted.contains("interrupted"), "{interrupted}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // The connection serves the next statement.
    connection
        .execute("SELECT 1", vec![], bounds())
        .await
        .unwrap();
    // Too many rows or bytes end the statement with the limit's name.
    let many =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 101) SELECT x FROM c";
    assert!(failed(connection.execute(many, vec![], bounds()).await).contains("max_rows"));
    let wide = "SELECT zeroblob(2000000)";
    assert!(failed(connection.execute(wide, vec![], bounds()).await).contains("max_result_bytes"));
}

#[tokio::test]
async fn an_abandoned_statement_is_interrupted_and_its_connection_closed() {
    let dir = tempfile::tempdir().unwrap();
    let databases = databases(dir.path(), SqliteLimits::default());
    let mut connection = default_connection(&databases).await;
    let forever =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    let gave_up = tokio::time::timeout(
        Duration::from_millis(100),
        connection.execute(forever, vec![], bounds()),
    )
    .await;
    assert!(gave_up.is_err(), "the statement ran on");
    let closed = failed(connection.execute("SELECT 1", vec![], bounds()).await);
    assert!(closed.contains("abandoned"), "{closed}");
}

#[tokio::test]
async fn a_transaction_left_open_is_rolled_back_and_the_pool_bounds_connections() {
    let dir = tempfile::tempdir().unwrap();
    let limits = SqliteLimits {
        pool_size: 1,
        ..SqliteLimits::default()
    };
    let databases = databases(dir.path(), limits);
    execute(&databases, "default", "CREATE TABLE t (x)", vec![])
        .await
        .unwrap();
    let mut connection = default_connection(&databases).await;
    connection.execute("BEGIN", vec![], bounds()).await.unwrap();
    connection
        .execute("INSERT INTO t VALUES (1)", vec![], bounds())
        .await
        .unwrap();
    let busy = databases
        .connect(&name("ns"), &name("default"), Duration::from_millis(50))
        .await
        .err()
        .expect("the pool's one connection is lent");
    assert!(busy.to_string().contains("sqlite.pool_size"), "{busy}");
    drop(connection);
    let counted = execute(&databases, "default", "SELECT count(*) FROM t", vec![])
        .await
        .unwrap();
    assert_eq!(counted.rows, [vec![SqlValue::Integer(0)]]);
}

#[tokio::test]
async fn empty_and_odd_statements_answer_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let databases = databases(dir.path(), SqliteLimits::default());
    let mut connection = default_connection(&databases).await;
    for statement in ["", "   ", "-- nothing", ";"] {
        let answered = connection.execute(statement, vec![], bounds()).await;
        assert!(
            matches!(&answered, Ok(rows) if rows.rows.is_empty()),
            "{statement:?}: {answered:?}"
        );
    }
    for statement in ["SELECT 1; SELECT 2", "SELECT '\0'", "SELECT ?"] {
        let answered = connection.execute(statement, vec![], bounds()).await;
        assert!(
            matches!(answered, Err(SqlFailure::Failed(_))),
            "{statement:?}: {answered:?}"
        );
    }
}
