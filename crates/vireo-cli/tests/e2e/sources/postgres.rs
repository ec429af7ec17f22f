//! PostgreSQL row changes: a trigger writes each change to the outbox `vireo.changes` in the
//! change's own transaction; a change leaves the outbox only once its invocation is committed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use tokio_postgres::{Client, NoTls};
use vireo_testsvc::Postgres;

use super::{
    BY_ID, FAST_CLAIMS, MESSAGES, add_source, create, each_delivered_once, listed_all_acknowledged,
    runs_on, shared_by_both, source_becomes, state_changes_logged, two_nodes,
};
use crate::support::{DEADLINE, Server, eventually};

/// A fresh database with the table `shop.orders`; its URL and a client.
pub(super) async fn shop(postgres: &Postgres) -> (String, Client) {
    let url = postgres.create_database().expect("a database of its own");
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE SCHEMA shop;
             CREATE TABLE shop.orders (id int PRIMARY KEY, status text NOT NULL);",
        )
        .await
        .unwrap();
    (url, client)
}

/// Inserts orders `from..to` in one statement.
pub(super) async fn insert(client: &Client, from: i32, to: i32) {
    client
        .execute(
            "INSERT INTO shop.orders SELECT n, 'new' FROM generate_series($1::int, $2::int - 1) n",
            &[&from, &to],
        )
        .await
        .unwrap();
}

/// Changes still in the outbox: none once every invocation is committed.
async fn outbox(client: &Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM vireo.changes", &[])
        .await
        .unwrap()
        .get(0)
}

/// Waits until every change has left the outbox: each invocation committed.
async fn outbox_drains(client: &Client) {
    eventually(DEADLINE, || async {
        match outbox(client).await {
            0 => Ok(()),
            left => Err(format!("{left} changes left in the outbox")),
        }
    })
    .await;
}

/// The change ids `1..=count` a fresh database's outbox gives its first changes.
fn change_ids(count: usize) -> BTreeMap<String, String> {
    (1..=count)
        .map(|id| (id.to_string(), String::new()))
        .collect()
}

#[tokio::test]
async fn each_row_change_becomes_one_succeeded_invocation() {
    let postgres = Postgres::shared();
    let (url, client) = shop(postgres).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    let created = add_source(&server, "orders", "postgres", &url, "shop.orders", &[]);
    assert_eq!(created["kind"], "postgres", "{created}");

    insert(&client, 0, MESSAGES as i32).await;
    each_delivered_once(&server, &change_ids(MESSAGES), BY_ID).await;
    listed_all_acknowledged(&server, MESSAGES, json!(0)).await;
    outbox_drains(&client).await;
    let line = super::last_delivery_line(&server).await;
    assert!(
        line.contains("ce-type=dev.vireo.postgres.message"),
        "{line}"
    );
    assert!(line.contains("ce-subject=shop.orders"), "{line}");

    // Deleted: its trigger goes from the table, so changes stop being recorded.
    super::pause(&server).await;
    insert(&client, MESSAGES as i32, MESSAGES as i32 + 1).await;
    assert_eq!(outbox(&client).await, 1, "a paused source's changes wait");
    server.cli_ok(&["sources", "rm", "orders"]);
    eventually(DEADLINE, || async {
        let triggers: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'shop.orders'::regclass AND NOT tgisinternal",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        match (triggers, outbox(&client).await) {
            (0, 0) => Ok(()),
            left => Err(format!("triggers and waiting changes left: {left:?}")),
        }
    })
    .await;
    insert(&client, MESSAGES as i32 + 1, MESSAGES as i32 + 2).await;
    assert_eq!(
        outbox(&client).await,
        0,
        "a removed source records no change"
    );
}

#[tokio::test]
async fn a_change_carries_its_operation_and_the_row_before_and_after() {
    let postgres = Postgres::shared();
    let (url, client) = shop(postgres).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("echo", "echo", json!({})).await;
    let mut body = json!({"name": "orders", "function": "echo", "kind": "postgres",
                          "url": url, "stream": "shop.orders"});
    let (status, _, created) = create(&server, &body).await;
    assert_eq!(status, 201, "{created}");

    insert(&client, 7, 8).await;
    client
        .execute("UPDATE shop.orders SET status = 'paid' WHERE id = 7", &[])
        .await
        .unwrap();
    client
        .execute("DELETE FROM shop.orders WHERE id = 7", &[])
        .await
        .unwrap();
    server.all_succeeded("echo", 3).await;
    let path = "/v1/namespaces/default/functions/echo/invocations?limit=10";
    let mut changes = Vec::new();
    let records = eventually(DEADLINE, || async {
        let (_, page) = server.get_json(path).await;
        let records = page["invocations"].as_array().unwrap().clone();
        if records.len() == 3 {
            Ok(records)
        } else {
            Err(format!("{} of 3 records", records.len()))
        }
    })
    .await;
    for record in records {
        let detail = server.invocation(record["id"].as_str().unwrap()).await;
        let described: Value =
            serde_json::from_str(detail["response"]["body"].as_str().unwrap()).unwrap();
        let change: Value = serde_json::from_str(described["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            described["headers"]["x-vireo-msg-operation"], change["operation"],
            "{described}"
        );
        changes.push(change);
    }
    changes.sort_by_key(|change| change["operation"].as_str().unwrap().to_string());
    let row = |status: &str| json!({"id": 7, "status": status});
    let expected = [
        ("DELETE", row("paid"), Value::Null),
        ("INSERT", Value::Null, row("new")),
        ("UPDATE", row("new"), row("paid")),
    ];
    for (change, (operation, old, new)) in changes.iter().zip(expected) {
        assert_eq!(change["operation"], operation, "{change}");
        assert_eq!(change["schema"], "shop");
        assert_eq!(change["table"], "orders");
        assert_eq!(change["old"], old, "{change}");
        assert_eq!(change["new"], new, "{change}");
    }

    // What cannot work is refused at create, with the reason.
    body["name"] = json!("missing");
    body["stream"] = json!("shop.no_such_table");
    let (status, code, answer) = create(&server, &body).await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (422, "source_stream_missing"),
        "{answer}"
    );
    body["stream"] = json!("orders; DROP TABLE shop.orders");
    let (status, code, answer) = create(&server, &body).await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (400, "invalid_source"),
        "{answer}"
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    body["stream"] = json!("shop.orders");
    body["url"] = json!(format!("postgres://postgres@127.0.0.1:{closed_port}/shop"));
    let (status, code, answer) = create(&server, &body).await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (422, "source_unreachable"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_vireo_killed_while_rows_change_loses_none_and_stores_each_once() {
    let postgres = Postgres::shared();
    let (url, client) = shop(postgres).await;
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    add_source(&server, "orders", "postgres", &url, "shop.orders", &[]);
    insert(&client, 0, MESSAGES as i32).await;
    server
        .midway_through_a_source("probe", 50, MESSAGES as u64)
        .await;
    server.kill();
    let server = server.restart().config(FAST_CLAIMS).start();
    // Changes claimed by the killed node are claimed again once idle (claim_idle_ms). An
    // invocation running at the kill runs again (at least once), so the function's log may
    // show it twice; the queue holds exactly one per change.
    server.all_succeeded("probe", MESSAGES as u64).await;
    outbox_drains(&client).await;
    server.all_succeeded("probe", MESSAGES as u64).await;
}

#[tokio::test]
async fn a_database_that_stops_makes_the_source_fail_then_run_again_by_itself() {
    let postgres = Postgres::start().expect("a PostgreSQL of its own, to stop it");
    let (url, client) = shop(&postgres).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    add_source(&server, "orders", "postgres", &url, "shop.orders", &[]);
    insert(&client, 0, 1).await;
    server.all_succeeded("probe", 1).await;

    postgres.pause().unwrap();
    source_becomes(&server, "failing", DEADLINE, |error| error.is_some()).await;
    postgres.resume().unwrap();
    source_becomes(&server, "running", Duration::from_secs(30), |_| true).await;
    let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
    tokio::spawn(connection);
    insert(&client, 1, 2).await;
    // Exactly one more invocation (a restarted server may skip sequence values, so the change's
    // id is not known).
    server.all_succeeded("probe", 2).await;
    state_changes_logged(&server).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_share_a_tables_changes_and_run_none_twice() {
    let postgres = Postgres::shared();
    let (url, client) = shop(postgres).await;
    let data = tempfile::tempdir().unwrap();
    let nodes = two_nodes(data.path()).await;
    // Small claims, so that neither node can take every change in a few.
    add_source(
        &nodes[0],
        "orders",
        "postgres",
        &url,
        "shop.orders",
        &["--batch-size", "10"],
    );
    for node in &nodes {
        runs_on(node).await;
    }
    insert(&client, 0, MESSAGES as i32).await;
    each_delivered_once(&nodes[0], &change_ids(MESSAGES), BY_ID).await;
    shared_by_both(&nodes, MESSAGES).await;
}
