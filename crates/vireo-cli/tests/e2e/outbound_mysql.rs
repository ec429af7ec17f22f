//! Functions use a real MariaDB through Spin's `fermyon:spin/mysql@2.0.0`, built with Spin SDK
//! 5: every type the WIT maps round-trips, the server's errors reach the guest with their
//! message, destinations outside the version's grants are refused, and a call that hangs is cut
//! off without spoiling the next.

use vireo_testsvc::MariaDb;

use crate::support::Server;

/// A fresh database on the run's MariaDB, and the grant that reaches it.
fn database() -> (String, String) {
    let server = MariaDb::shared();
    let url = server.create_database().expect("a database for the test");
    (url, format!("mysql://127.0.0.1:{}", server.port()))
}

#[tokio::test]
async fn every_mapped_type_round_trips_and_errors_carry_the_servers_message() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let (url, grant) = database();
    server.deploy_outbound("my", &[grant]).await;

    let types = server.outbound("my", "/mysql/types", &url, "").await;
    let expected = [
        "ok columns=b:DbDataType::Boolean,i1:DbDataType::Int8,i2:DbDataType::Int16,i4:DbDataType::Int32,i8:DbDataType::Int64,u1:DbDataType::Uint8,u2:DbDataType::Uint16,u4:DbDataType::Uint32,u8:DbDataType::Uint64,f4:DbDataType::Floating32,f8:DbDataType::Floating64,t:DbDataType::Str,v:DbDataType::Str,vb:DbDataType::Binary,bl:DbDataType::Binary,d:DbDataType::Other,amount:DbDataType::Other",
        "[DbValue::Boolean(true), DbValue::Int8(-128), DbValue::Int16(-32768), DbValue::Int32(2147483647), DbValue::Int64(-9007199254740993), DbValue::Uint8(255), DbValue::Uint16(65535), DbValue::Uint32(4294967295), DbValue::Uint64(18446744073709551615), DbValue::Floating32(1.5), DbValue::Floating64(-2.25), DbValue::Str(\"héllo 'quoted'\"), DbValue::Str(\"short\"), DbValue::Binary([0, 1, 254, 255]), DbValue::Binary([7, 7, 7]), DbValue::Str(\"2024-02-29\"), DbValue::Str(\"1234.50\")]",
        "[DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull, DbValue::DbNull]",
    ]
    .join("\n");
    assert_eq!(types, expected);

    let syntax = server.outbound("my", "/mysql/query", &url, "SELEC 1").await;
    assert!(
        syntax.contains("Error::QueryFailed(")
            && syntax.contains("You have an error in your SQL syntax"),
        "{syntax}"
    );
    let create = "CREATE TABLE once (id INT PRIMARY KEY)";
    assert_eq!(
        server.outbound("my", "/mysql/execute", &url, create).await,
        "ok"
    );
    let insert = "INSERT INTO once VALUES (1)";
    assert_eq!(
        server.outbound("my", "/mysql/execute", &url, insert).await,
        "ok"
    );
    let duplicate = server.outbound("my", "/mysql/execute", &url, insert).await;
    assert!(
        duplicate.contains("Error::QueryFailed(")
            && duplicate.contains("Duplicate entry '1' for key 'PRIMARY'"),
        "{duplicate}"
    );
}

#[tokio::test]
async fn grants_are_enforced_and_a_hung_call_is_cut_off() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[connections]\ncall_timeout_ms = 500\npool_size = 1\n")
        .start();
    let (url, grant) = database();
    let port = MariaDb::shared().port();
    server.deploy_outbound("bare", &[]).await;
    server
        .deploy_outbound("pg-only", &[format!("postgres://127.0.0.1:{port}")])
        .await;
    server.deploy_outbound("my", &[grant]).await;

    for function in ["bare", "pg-only"] {
        let said = server
            .outbound(function, "/mysql/query", &url, "SELECT 1")
            .await;
        assert!(
            said.contains(&format!(
                "Error::ConnectionFailed(\"mysql://127.0.0.1:{port} is not in the version's allowed_outbound_hosts\")"
            )),
            "{function}: {said}"
        );
    }
    let elsewhere = url.replace("127.0.0.1", "127.0.0.2");
    let said = server
        .outbound("my", "/mysql/query", &elsewhere, "SELECT 1")
        .await;
    assert!(
        said.contains(&format!("mysql://127.0.0.2:{port} is not in")),
        "{said}"
    );

    let slow = server
        .outbound("my", "/mysql/query", &url, "SELECT SLEEP(60)")
        .await;
    assert!(
        slow.contains("longer than 500 ms (connections.call_timeout_ms)"),
        "{slow}"
    );
    assert_eq!(
        server
            .outbound("my", "/mysql/query", &url, "SELECT 41 + 1")
            .await,
        "ok [DbValue::Int32(42)]",
        "the pool's one connection was replaced"
    );
}
