//! Functions use a real PostgreSQL through Spin's `spin:postgres/postgres@3.0.0` and `@4.0.0`, built with
//! Spin SDK 5: every type the WIT maps round-trips, the server's errors reach the guest with
//! their message, destinations outside the version's grants are refused before any connection,
//! connections are pooled per version, and a hostile guest is held to its limits.

use std::sync::Arc;

use serde_json::json;
use vireo_testsvc::Postgres;

use crate::support::{DEADLINE, Server, eventually};

/// A fresh database on the run's PostgreSQL, and the grant that reaches it.
fn database() -> (String, String) {
    let server = Postgres::shared();
    let url = server.create_database().expect("a database for the test");
    (url, format!("postgres://127.0.0.1:{}", server.port()))
}

/// The database's name, the last segment of its URL.
fn name_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

/// A server on `data` with `config`, and the function `pg` (spin-outbound) deployed with
/// `settings` and the grant of a fresh database; that database's URL and name.
async fn pg_function(
    data: &std::path::Path,
    config: &str,
    mut settings: serde_json::Value,
) -> (Server, String, String) {
    let server = Server::builder(data).config(config).start();
    let (url, grant) = database();
    settings["allowed_outbound_hosts"] = json!([grant]);
    server.deploy_ok("pg", "spin-outbound", settings).await;
    let database = name_of(&url).to_string();
    (server, url, database)
}

/// Client connections PostgreSQL counts to `database`, other than `client`'s own.
async fn connections_to(client: &tokio_postgres::Client, database: &str) -> i64 {
    let row = client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&database],
        )
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test]
async fn every_mapped_type_round_trips_and_errors_carry_the_servers_message() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let (url, grant) = database();
    server
        .deploy_outbound("pg", std::slice::from_ref(&grant))
        .await;

    let types = server.outbound("pg", "/pg/types", &url, "").await;
    let expected = [
        "ok inserted=2",
        "columns=b:DbDataType::Boolean,c:DbDataType::Int8,i2:DbDataType::Int16,i4:DbDataType::Int32,i8:DbDataType::Int64,f4:DbDataType::Floating32,f8:DbDataType::Floating64,t:DbDataType::Str,v:DbDataType::Str,by:DbDataType::Binary,d:DbDataType::Date,tm:DbDataType::Time,ts:DbDataType::Datetime,tz:DbDataType::Datetime,epoch:DbDataType::Int64,j:DbDataType::Other",
        "[DbValue::Boolean(true), DbValue::Int8(-7), DbValue::Int16(-32768), DbValue::Int32(2147483647), DbValue::Int64(-9007199254740993), DbValue::Floating32(1.5), DbValue::Floating64(-2.25), DbValue::Str(\"héllo 'quoted'\"), DbValue::Str(\"short\"), DbValue::Binary([0, 1, 254, 255]), DbValue::Date((2024, 2, 29)), DbValue::Time((23, 59, 58, 123456000)), DbValue::Datetime((1999, 12, 31, 23, 59, 59, 500000000)), DbValue::Datetime((2000, 1, 1, 0, 0, 0, 0)), DbValue::Int64(1700000000), DbValue::DbNull]",
        "[DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull]",
    ]
    .join("\n");
    assert_eq!(types, expected);

    let syntax = server.outbound("pg", "/pg/query", &url, "SELEC 1").await;
    assert!(
        syntax.starts_with("error PgError(Error::QueryFailed(")
            && syntax.contains("syntax error at or near \\\"SELEC\\\""),
        "{syntax}"
    );
    let created = server
        .outbound(
            "pg",
            "/pg/execute",
            &url,
            "CREATE TABLE once (id INTEGER PRIMARY KEY)",
        )
        .await;
    assert_eq!(created, "ok 0");
    assert_eq!(
        server
            .outbound("pg", "/pg/execute", &url, "INSERT INTO once VALUES (1)")
            .await,
        "ok 1"
    );
    let duplicate = server
        .outbound("pg", "/pg/execute", &url, "INSERT INTO once VALUES (1)")
        .await;
    assert!(
        duplicate.starts_with("error Error::QueryFailed(")
            && duplicate
                .contains("duplicate key value violates unique constraint \\\"once_pkey\\\""),
        "{duplicate}"
    );
    let unix = server
        .outbound("pg", "/pg/query", "host=/var/run/postgresql", "SELECT 1")
        .await;
    assert!(unix.contains("unix sockets are not accepted"), "{unix}");
}

#[tokio::test]
async fn destinations_outside_the_grants_are_refused_before_any_connection() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let (url, grant) = database();
    let port = Postgres::shared().port();
    let database = name_of(&url).to_string();
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_lowercase();
    let resolved: Vec<std::net::SocketAddr> = tokio::net::lookup_host((hostname.as_str(), port))
        .await
        .unwrap_or_else(|e| panic!("this machine's name {hostname} must resolve: {e}"))
        .collect();
    assert!(
        resolved.iter().any(|a| a.ip().is_loopback()),
        "the test needs this machine's name {hostname} to resolve to loopback, as /etc/hosts has it on Debian; it resolves to {resolved:?}"
    );

    server.deploy_outbound("bare", &[]).await;
    server
        .deploy_outbound(
            "other-port",
            &[format!("postgres://127.0.0.1:{}", port + 1)],
        )
        .await;
    server
        .deploy_outbound("by-name", &[format!("postgres://{hostname}:{port}")])
        .await;
    server
        .deploy_outbound("http-only", &[format!("http://127.0.0.1:{port}")])
        .await;
    server
        .deploy_outbound("granted", std::slice::from_ref(&grant))
        .await;

    let not_allowed =
        format!("postgres://127.0.0.1:{port} is not in the version's allowed_outbound_hosts");
    for function in ["bare", "other-port", "http-only"] {
        let said = server
            .outbound(function, "/pg/query", &url, "SELECT 1")
            .await;
        assert!(
            said.starts_with("error PgError(Error::ConnectionFailed(")
                && said.contains(&not_allowed),
            "{function}: {said}"
        );
    }
    let by_name = url.replace("127.0.0.1", &hostname);
    let said = server
        .outbound("by-name", "/pg/query", &by_name, "SELECT 1")
        .await;
    assert!(
        said.contains("resolves to an address that is not public"),
        "{said}"
    );
    let private = url.replace("127.0.0.1", "10.11.12.13");
    let said = server
        .outbound("granted", "/pg/query", &private, "SELECT 1")
        .await;
    assert!(
        said.contains(&format!("postgres://10.11.12.13:{port} is not in")),
        "{said}"
    );
    let key_value = format!("host=10.11.12.13 port={port} user=postgres dbname={database}");
    let said = server
        .outbound("granted", "/pg/query", &key_value, "SELECT 1")
        .await;
    assert!(
        said.contains("is not in the version's allowed_outbound_hosts"),
        "{said}"
    );
    assert!(
        !said.contains("user=postgres"),
        "the connection string is never echoed: {said}"
    );
    let admin = admin_client().await;
    assert_eq!(
        connections_to(&admin, &database).await,
        0,
        "a refused open connects nowhere"
    );

    let key_value = format!("host=127.0.0.1 port={port} user=postgres dbname={database}");
    assert_eq!(
        server
            .outbound("granted", "/pg/query", &key_value, "SELECT 41 + 1")
            .await,
        "ok [DbValue::Int32(42)]"
    );
    assert_eq!(
        connections_to(&admin, &database).await,
        1,
        "the granted call's connection stays pooled"
    );
}

#[tokio::test]
async fn concurrent_invocations_share_the_versions_pool() {
    let data = tempfile::tempdir().unwrap();
    let (server, url, database) = pg_function(
        data.path(),
        "[connections]\npool_size = 4\nconnect_timeout_ms = 30000\n",
        json!({"max_concurrency": 100}),
    )
    .await;
    let server = Arc::new(server);

    let calls: Vec<_> = (0..200)
        .map(|_| {
            let (server, url) = (server.clone(), url.clone());
            tokio::spawn(async move {
                server
                    .outbound("pg", "/pg/query", &url, "SELECT pg_sleep(0.01)::text, 1")
                    .await
            })
        })
        .collect();
    let admin = admin_client().await;
    let mut most = 0;
    while calls.iter().any(|call| !call.is_finished()) {
        most = most.max(connections_to(&admin, &database).await);
    }
    for call in calls {
        assert_eq!(
            call.await.unwrap(),
            "ok [DbValue::Str(\"\"), DbValue::Int32(1)]"
        );
    }
    most = most.max(connections_to(&admin, &database).await);
    assert!(most >= 1, "the invocations connected");
    assert!(
        most <= 4,
        "200 invocations opened {most} connections, the pool holds 4"
    );
}

#[tokio::test]
async fn with_no_idle_time_each_invocation_closes_its_connection() {
    let data = tempfile::tempdir().unwrap();
    let (server, url, database) = pg_function(
        data.path(),
        "[connections]\nidle_timeout_secs = 0\n",
        json!({}),
    )
    .await;
    let admin = admin_client().await;
    for _ in 0..3 {
        assert_eq!(
            server.outbound("pg", "/pg/query", &url, "SELECT 1").await,
            "ok [DbValue::Int32(1)]"
        );
        eventually(DEADLINE, || async {
            match connections_to(&admin, &database).await {
                0 => Ok(()),
                open => Err(format!("{open} connections left open")),
            }
        })
        .await;
    }
}

#[tokio::test]
async fn a_hostile_guest_is_held_to_its_limits_and_leaves_nothing_behind() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config(
            "[connections]\npool_size = 2\nmax_open_per_instance = 2\ncall_timeout_ms = 500\nmax_rows = 1000\nmax_result_bytes = 100000\n",
        )
        .start();
    let (url, grant) = database();
    let database = name_of(&url).to_string();
    server.deploy_outbound("pg", &[grant]).await;

    let held = server.outbound("pg", "/pg/hold?count=3", &url, "").await;
    assert!(
        held.contains(
            "the instance already holds 2 open connections (connections.max_open_per_instance)"
        ),
        "{held}"
    );
    assert_eq!(
        server.outbound("pg", "/pg/hold?count=2", &url, "").await,
        "ok 2"
    );

    let rows = server
        .outbound("pg", "/pg/query", &url, "SELECT generate_series(1, 5000)")
        .await;
    assert!(
        rows.contains("more than 1000 rows (connections.max_rows)"),
        "{rows}"
    );
    let bytes = server
        .outbound("pg", "/pg/query", &url, "SELECT repeat('x', 200000)")
        .await;
    assert!(
        bytes.contains("larger than 100000 bytes (connections.max_result_bytes)"),
        "{bytes}"
    );

    let slow = server
        .outbound("pg", "/pg/query", &url, "SELECT pg_sleep(60)")
        .await;
    assert!(
        slow.contains("longer than 500 ms (connections.call_timeout_ms)"),
        "{slow}"
    );
    let client = admin_client().await;
    eventually(DEADLINE, || async {
        let sleeping: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'SELECT pg_sleep(60)%' AND state = 'active'",
                &[&database],
            )
            .await
            .unwrap()
            .get(0);
        if sleeping == 0 { Ok(()) } else { Err(format!("{sleeping} sleeps still run")) }
    })
    .await;

    // A transaction left open is rolled back before its connection is lent again: every later
    // insert commits.
    assert_eq!(server.outbound("pg", "/pg/abandon", &url, "").await, "ok");
    for _ in 0..4 {
        assert_eq!(
            server
                .outbound(
                    "pg",
                    "/pg/execute",
                    &url,
                    "INSERT INTO abandoned VALUES (2)"
                )
                .await,
            "ok 1"
        );
    }
    let own = database_client(&url).await;
    let counted: Vec<(i32, i64)> = own
        .query(
            "SELECT n, count(*) FROM abandoned GROUP BY n ORDER BY n",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        counted,
        vec![(2, 4)],
        "the abandoned insert never commits; every later one does"
    );
}

async fn admin_client() -> tokio_postgres::Client {
    database_client(&Postgres::shared().url("postgres")).await
}

async fn database_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn spin_postgres_4_round_trips_every_type_it_maps_and_the_servers_error_fields() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let (url, grant) = database();
    server
        .deploy_outbound("pg4", std::slice::from_ref(&grant))
        .await;

    // Written as parameters, read back as columns; jsonb is stored normalised, json as written,
    // an inclusive upper bound of an int4range as the exclusive one after it.
    let types = server.outbound("pg4", "/pg4/types", &url, "").await;
    let point = "DbValue::Unsupported([63, 240, 0, 0, 0, 0, 0, 0, 64, 0, 0, 0, 0, 0, 0, 0])";
    let nulls = vec!["DbValue::DbNull"; 26].join(", ");
    let expected = [
        "ok inserted=2".to_string(),
        [
            "columns=b:DbDataType::Boolean,c:DbDataType::Int8,i2:DbDataType::Int16,",
            "i4:DbDataType::Int32,i8:DbDataType::Int64,f4:DbDataType::Floating32,",
            "f8:DbDataType::Floating64,t:DbDataType::Str,by:DbDataType::Binary,",
            "d:DbDataType::Date,tm:DbDataType::Time,ts:DbDataType::Datetime,",
            "tz:DbDataType::Datetime,epoch:DbDataType::Int64,u:DbDataType::Uuid,",
            "j:DbDataType::Jsonb,js:DbDataType::Jsonb,n:DbDataType::Decimal,",
            "r4:DbDataType::RangeInt32,r8:DbDataType::RangeInt64,rn:DbDataType::RangeDecimal,",
            "a4:DbDataType::ArrayInt32,a8:DbDataType::ArrayInt64,an:DbDataType::ArrayDecimal,",
            "at:DbDataType::ArrayStr,iv:DbDataType::Interval,p:DbDataType::Other(\"point\")",
        ]
        .concat(),
        [
            "[DbValue::Boolean(true), DbValue::Int8(-7), DbValue::Int16(-32768), ",
            "DbValue::Int32(2147483647), DbValue::Int64(-9007199254740993), ",
            "DbValue::Floating32(1.5), DbValue::Floating64(-2.25), ",
            "DbValue::Str(\"héllo 'quoted'\"), DbValue::Binary([0, 1, 254, 255]), ",
            "DbValue::Date((2024, 2, 29)), DbValue::Time((23, 59, 58, 123456000)), ",
            "DbValue::Datetime((1999, 12, 31, 23, 59, 59, 500000000)), ",
            "DbValue::Datetime((2000, 1, 1, 0, 0, 0, 0)), DbValue::Int64(1700000000), ",
            "DbValue::Uuid(\"67e55044-10b1-426f-9247-bb680e5fe0c8\"), ",
            "Jsonb({\"a\": null, \"b\": [1, 2]}), Jsonb({\"kept\":  \"as written\"}), ",
            "DbValue::Decimal(\"-12345678901234.5678\"), ",
            "DbValue::RangeInt32((Some((1, RangeBoundKind::Inclusive)), Some((11, RangeBoundKind::Exclusive)))), ",
            "DbValue::RangeInt64((None, Some((9223372036854775807, RangeBoundKind::Exclusive)))), ",
            "DbValue::RangeDecimal((Some((\"1.5\", RangeBoundKind::Exclusive)), Some((\"2.25\", RangeBoundKind::Inclusive)))), ",
            "DbValue::ArrayInt32([Some(1), None, Some(-3)]), ",
            "DbValue::ArrayInt64([Some(-9223372036854775808)]), ",
            "DbValue::ArrayDecimal([Some(\"0.001\"), None]), ",
            "DbValue::ArrayStr([Some(\"a,b\"), None, Some(\"\")]), ",
            "DbValue::Interval(Interval { micros: 3600000001, days: 2, months: 14 }), ",
        ]
        .concat()
            + point
            + "]",
        format!("[{nulls}, {point}]"),
    ]
    .join("\n");
    assert_eq!(types, expected);

    let syntax = server.outbound("pg4", "/pg4/query", &url, "SELEC 1").await;
    assert_eq!(
        syntax,
        r#"error Error::QueryFailed(QueryError::DbError(DbError { as-text: "ERROR: syntax error at or near \"SELEC\"", severity: "ERROR", code: "42601", message: "syntax error at or near \"SELEC\"", detail: None, extras: [("position", "1")] }))"#
    );
    let execute = async |sql: &str| server.outbound("pg4", "/pg4/execute", &url, sql).await;
    assert_eq!(
        execute("CREATE TABLE once4 (id INTEGER PRIMARY KEY)").await,
        "ok 0"
    );
    assert_eq!(execute("INSERT INTO once4 VALUES (1)").await, "ok 1");
    let duplicate = execute("INSERT INTO once4 VALUES (1)").await;
    for part in [
        "error Error::QueryFailed(QueryError::DbError(DbError { ",
        r#"code: "23505""#,
        r#"message: "duplicate key value violates unique constraint \"once4_pkey\"""#,
        r#"detail: Some("Key (id)=(1) already exists.")"#,
        r#"("table", "once4")"#,
        r#"("constraint", "once4_pkey")"#,
    ] {
        assert!(duplicate.contains(part), "{part} in {duplicate}");
    }
    let refused = server
        .outbound("pg4", "/pg4/query", "host=/var/run/postgresql", "SELECT 1")
        .await;
    assert!(
        refused.starts_with("error Error::ConnectionFailed(")
            && refused.contains("unix sockets are not accepted"),
        "{refused}"
    );
}

#[tokio::test]
async fn spin_2_postgres_round_trips_the_types_it_maps() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let (url, grant) = database();
    server
        .deploy_outbound("pg2", std::slice::from_ref(&grant))
        .await;

    let types = server.outbound("pg2", "/pg2/types", &url, "").await;
    let expected = [
        "ok inserted=2",
        "unsigned=Error::BadParameter(\"PostgreSQL has no unsigned integers: pass a signed one\")",
        "columns=b:DbDataType::Boolean,c:DbDataType::Int8,i2:DbDataType::Int16,i4:DbDataType::Int32,i8:DbDataType::Int64,f4:DbDataType::Floating32,f8:DbDataType::Floating64,t:DbDataType::Str,by:DbDataType::Binary,d:DbDataType::Other",
        "[DbValue::Boolean(false), DbValue::Int8(127), DbValue::Int16(32767), DbValue::Int32(-2147483648), DbValue::Int64(9007199254740993), DbValue::Floating32(-0.5), DbValue::Floating64(1e300), DbValue::Str(\"Spin 2 ✓\"), DbValue::Binary([255, 0]), DbValue::Unsupported]",
        "[DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::Unsupported]",
    ]
    .join("\n");
    assert_eq!(types, expected);

    let syntax = server.outbound("pg2", "/pg2/query", &url, "SELEC 1").await;
    assert_eq!(
        syntax,
        r#"error Error::QueryFailed("ERROR: syntax error at or near \"SELEC\"")"#
    );
    let query = async |sql: &str| server.outbound("pg2", "/pg2/query", &url, sql).await;
    assert_eq!(
        query("CREATE TABLE once2 (id INTEGER PRIMARY KEY)").await,
        "ok"
    );
    assert_eq!(query("INSERT INTO once2 VALUES (1)").await, "ok");
    assert_eq!(
        query("INSERT INTO once2 VALUES (1)").await,
        r#"error Error::QueryFailed("ERROR: duplicate key value violates unique constraint \"once2_pkey\"\nDETAIL: Key (id)=(1) already exists.")"#
    );
}

/// The value of the `/metrics` sample `series` (name and labels), if it is there.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_the_connections_the_server_holds_and_time_each_call_and_records_count_them()
{
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let (url, grant) = database();
    let database = name_of(&url).to_string();
    server
        .deploy_outbound("held", std::slice::from_ref(&grant))
        .await;
    let gauge = r#"vireo_outbound_connections{kind="postgres"}"#;
    let calls = r#"vireo_outbound_call_duration_seconds_count{kind="postgres"}"#;

    // Three connections at once, each running one query, then all back in the pool; the
    // record counts the three calls and their results (one integer of 8 bytes each).
    let (answer, record) = server
        .outbound_recorded("held", "/pg/hold?count=3", &url, "")
        .await;
    assert_eq!(answer, "ok 3");
    assert_eq!(
        (&record["outbound_calls"], &record["outbound_bytes"]),
        (&json!(3), &json!(24)),
        "{record}"
    );
    let admin = admin_client().await;
    assert_eq!(connections_to(&admin, &database).await, 3);
    let text = server.metrics_text().await;
    assert_eq!(sample(&text, gauge), Some(3.0), "{text}");
    assert_eq!(sample(&text, calls), Some(3.0), "{text}");
    // One query of a text of 4 bytes and an integer.
    let (answer, record) = server
        .outbound_recorded("held", "/pg4/query", &url, "SELECT 'abcd'::text, 7::int4")
        .await;
    assert!(answer.starts_with("ok"), "{answer}");
    assert_eq!(
        (&record["outbound_calls"], &record["outbound_bytes"]),
        (&json!(1), &json!(12)),
        "{record}"
    );

    // A removed function's pools close, and the gauge says so.
    assert!(server.cli(&["rm", "held"]).status.success());
    eventually(DEADLINE, || async {
        let open = connections_to(&admin, &database).await;
        let text = server.metrics_text().await;
        match (open, sample(&text, gauge)) {
            (0, Some(0.0)) => Ok(()),
            other => Err(format!("server and gauge: {other:?}")),
        }
    })
    .await;
}
