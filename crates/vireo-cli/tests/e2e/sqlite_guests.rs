//! Functions keep data in their namespace's SQLite databases through Spin's
//! `fermyon:spin/sqlite@2.0.0` and `spin:sqlite/sqlite@3.0.0`, built with Spin SDK 5: every
//! value type round trips, only granted databases open, hostile SQL stays inside its file and
//! its limits, and `vireo sqlite` shows and changes the same data.

use serde_json::{Value, json};

use crate::support::{Server, ServerBuilder, Store, stdout_json};

/// What the `spin-outbound` fixture deployed as `function` answers for `path` with `body`.
async fn sql(server: &Server, function: &str, path: &str, body: &str) -> String {
    server.outbound(function, path, "", body).await
}

#[tokio::test]
async fn functions_use_their_granted_databases_through_both_spin_interfaces() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[sqlite]\nmax_database_mib = 1\n\n[connections]\ncall_timeout_ms = 1000\n")
        .start();
    server.cli_ok(&["sqlite", "create", "notes"]);
    server
        .deploy_ok(
            "db",
            "spin-outbound",
            json!({"sqlite_databases": ["default", "notes", "ghost"]}),
        )
        .await;
    server.deploy_ok("bare", "spin-outbound", json!({})).await;

    assert_eq!(
        sql(&server, "db", "/sqlite/types?db=default", "").await,
        "ok [\"i\", \"r\", \"t\", \"b\", \"n\"] [RowResult { values: [Value::Integer(-9223372036854775808), \
         Value::Real(-2.25), Value::Text(\"héllo 'quoted'\"), Value::Blob([0, 1, 254, 255]), Value::Null] }]"
    );
    assert_eq!(
        sql(
            &server,
            "db",
            "/sqlite3/execute?db=notes",
            "CREATE TABLE n (x)"
        )
        .await,
        "ok [] changes=0 last_insert_rowid=0"
    );
    let (answer, record) = server
        .outbound_recorded(
            "db",
            "/sqlite3/execute?db=notes",
            "",
            "INSERT INTO n VALUES (1), (2)",
        )
        .await;
    assert_eq!(answer, "ok [] changes=2 last_insert_rowid=2");
    assert_eq!(record["outbound_calls"], 1, "{record}");
    assert_eq!(
        sql(
            &server,
            "db",
            "/sqlite/execute?db=notes",
            "SELECT x * 10 AS tens FROM n"
        )
        .await,
        "ok [RowResult { values: [Value::Integer(10)] }, RowResult { values: [Value::Integer(20)] }]"
    );

    // Only granted databases open, and a granted one must exist.
    for (function, database) in [
        ("bare", "default"),
        ("db", "other"),
        ("db", "Not%20A%20Name"),
    ] {
        assert_eq!(
            sql(
                &server,
                function,
                &format!("/sqlite/execute?db={database}"),
                "SELECT 1"
            )
            .await,
            "error Error::AccessDenied",
            "{function} opening {database}"
        );
    }
    assert_eq!(
        sql(&server, "db", "/sqlite3/execute?db=ghost", "SELECT 1").await,
        "error Error::NoSuchDatabase"
    );

    // Hostile SQL: other files, storage pragmas, size and time are all held.
    let outside = data.path().join("outside.db");
    let attach = format!("ATTACH DATABASE '{}' AS other", outside.display());
    let refused = sql(&server, "db", "/sqlite/execute?db=default", &attach).await;
    assert!(refused.contains("not authorized"), "{refused}");
    let vacuum = format!("VACUUM INTO '{}'", outside.display());
    let refused = sql(&server, "db", "/sqlite/execute?db=default", &vacuum).await;
    assert!(refused.starts_with("error Error::Io"), "{refused}");
    assert!(
        !outside.exists(),
        "nothing was written outside the database"
    );
    let refused = sql(
        &server,
        "db",
        "/sqlite/execute?db=default",
        "PRAGMA max_page_count = 100000000",
    )
    .await;
    assert!(refused.contains("not authorized"), "{refused}");
    sql(
        &server,
        "db",
        "/sqlite/execute?db=default",
        "CREATE TABLE big (b)",
    )
    .await;
    assert_eq!(
        sql(
            &server,
            "db",
            "/sqlite/execute?db=default",
            "INSERT INTO big VALUES (zeroblob(2000000))"
        )
        .await,
        "error Error::DatabaseFull"
    );
    let forever =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";
    let interrupted = sql(&server, "db", "/sqlite/execute?db=default", forever).await;
    assert!(interrupted.contains("interrupted"), "{interrupted}");

    // The CLI sees the functions' data, and the functions see what the CLI writes.
    let rows = stdout_json(&server.cli(&[
        "sqlite",
        "exec",
        "notes",
        "SELECT x FROM n WHERE x > ?",
        "--param",
        "1",
        "-o",
        "json",
    ]));
    assert_eq!(rows["columns"], json!(["x"]));
    assert_eq!(rows["rows"], json!([[2]]));
    server.cli_ok(&[
        "sqlite",
        "exec",
        "default/notes",
        "INSERT INTO n VALUES (?)",
        "--param",
        "{\"blob\": \"AP8=\"}",
    ]);
    assert_eq!(
        sql(
            &server,
            "db",
            "/sqlite/execute?db=notes",
            "SELECT x FROM n WHERE typeof(x) = 'blob'"
        )
        .await,
        "ok [RowResult { values: [Value::Blob([0, 255])] }]"
    );
    let shown = server.cli_ok(&["sqlite", "exec", "notes", "SELECT count(*) AS n FROM n"]);
    assert!(shown.contains("1 row returned"), "{shown}");
    let listed = stdout_json(&server.cli(&["sqlite", "ls", "-o", "json"]));
    let names: Vec<&str> = listed["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|database| database["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "notes"]);
    assert!(listed["bytes_used"].as_u64().unwrap() > 0, "{listed}");
    let usage = stdout_json(&server.cli(&["usage", "-o", "json"]));
    assert_eq!(usage["sqlite_bytes"], listed["bytes_used"], "{usage}");
    let shown = server.cli_ok(&["usage"]);
    assert!(shown.contains("SQLite databases hold"), "{shown}");
    let failed = server.cli(&["sqlite", "exec", "notes", "SELEC nonsense"]);
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("syntax error"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
}

#[tokio::test]
async fn a_namespace_keeps_its_databases_until_they_are_removed_and_another_sees_none() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.cli_ok(&["ns", "create", "shop"]);
    server.cli_ok(&["sqlite", "create", "shop/orders"]);
    server.cli_ok(&["sqlite", "exec", "shop/orders", "CREATE TABLE o (id)"]);
    let refused = server.cli(&["ns", "rm", "shop"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("SQLite databases (orders)"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    // A key of another namespace cannot reach them.
    let other = Server::client_with_key(&server.developer_key_for_new_namespace("other"));
    let response = other
        .get(server.url("/v1/namespaces/shop/sqlite"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        404,
        "another tenant's namespace is invisible"
    );

    server.cli_ok(&["sqlite", "rm", "shop/orders"]);
    server.cli_ok(&["ns", "rm", "shop"]);
    server.cli_ok(&["ns", "create", "shop"]);
    let listed = stdout_json(&server.cli(&["sqlite", "ls", "-n", "shop", "-o", "json"]));
    assert_eq!(
        listed["databases"],
        json!([{"name": "default", "bytes": 0}])
    );
}

#[tokio::test]
async fn a_server_on_a_shared_store_refuses_sqlite_with_the_reason() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerBuilder::new(Store::postgres(data.path())).start();
    let response = server
        .deploy(
            "db",
            crate::support::guest("spin-outbound"),
            json!({"sqlite_databases": ["default"]}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("embedded store"),
        "{body}"
    );
    let usage = stdout_json(&server.cli(&["usage", "-o", "json"]));
    assert_eq!(usage["sqlite_bytes"], Value::Null, "{usage}");
    let listed = server.cli(&["sqlite", "ls"]);
    assert!(!listed.status.success());
    assert!(
        String::from_utf8_lossy(&listed.stderr).contains("use outbound PostgreSQL"),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
}

#[tokio::test]
async fn a_copy_into_a_cluster_refuses_to_leave_sqlite_data_behind() {
    let single_dir = tempfile::tempdir().unwrap();
    let mut single = Server::start(single_dir.path());
    single.cli_ok(&["sqlite", "exec", "default", "CREATE TABLE kept (x)"]);
    single.terminate();
    assert!(single.wait_exit().success());

    let cluster_dir = tempfile::tempdir().unwrap();
    let Store::Postgres { url, .. } = Store::postgres(cluster_dir.path()) else {
        unreachable!("a PostgreSQL store")
    };
    let copy = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_vireo"))
            .args(["store", "copy", "--from"])
            .arg(single_dir.path())
            .args(["--to", &url])
            .output()
            .unwrap()
    };
    let refused = copy();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("SQLite databases hold data (default/default)"),
        "{said}"
    );

    let mut again = single.restart().start();
    again.cli_ok(&["sqlite", "rm", "default"]);
    again.terminate();
    assert!(again.wait_exit().success());
    let copied = copy();
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
}
