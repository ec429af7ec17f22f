//! Redis Streams: a consumer group per source, `XACK` after the commit, `XAUTOCLAIM` of what a
//! killed node left pending.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use vireo_testsvc::Redis;

use super::{
    BY_ID, FAST_CLAIMS, MESSAGES, add_source, create, delivered, each_delivered_once,
    last_delivery_line, listed_all_acknowledged, runs_on, shared_by_both, source_becomes,
    state_changes_logged, two_nodes,
};
use crate::support::{DEADLINE, Server, eventually, stdout_json};

pub(super) async fn connection(redis: &Redis) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Makes `stream` exist (a source reads only streams that do), without entries.
pub(super) async fn create_stream(redis: &mut redis::aio::MultiplexedConnection, stream: &str) {
    let id: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("payload")
        .arg("seed")
        .query_async(redis)
        .await
        .unwrap();
    let _: u64 = redis::cmd("XDEL")
        .arg(stream)
        .arg(id)
        .query_async(redis)
        .await
        .unwrap();
}

/// Publishes `payloads` to `stream`; returns each entry's id with its payload.
pub(super) async fn publish(
    redis: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    payloads: impl IntoIterator<Item = String>,
) -> BTreeMap<String, String> {
    let payloads: Vec<String> = payloads.into_iter().collect();
    let mut pipe = redis::pipe();
    for payload in &payloads {
        pipe.cmd("XADD")
            .arg(stream)
            .arg("*")
            .arg("payload")
            .arg(payload)
            .arg("origin")
            .arg("e2e");
    }
    let ids: Vec<String> = pipe.query_async(redis).await.unwrap();
    ids.into_iter().zip(payloads).collect()
}

/// The source's pending entries at the broker: none once all are acknowledged.
async fn pending(redis: &mut redis::aio::MultiplexedConnection, stream: &str) -> u64 {
    let summary: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(stream)
        .arg("vireo.default.orders")
        .query_async(redis)
        .await
        .unwrap();
    redis::from_redis_value(summary[0].clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_share_a_streams_entries_and_run_none_twice() {
    let redis = Redis::shared();
    let mut publisher = connection(redis).await;
    let data = tempfile::tempdir().unwrap();
    let nodes = two_nodes(data.path()).await;
    create_stream(&mut publisher, "e2e-shared").await;
    // Small reads, so that neither node can take every entry in a few.
    add_source(
        &nodes[0],
        "orders",
        "redis",
        &redis.url(),
        "e2e-shared",
        &["--batch-size", "10"],
    );
    for node in &nodes {
        runs_on(node).await;
    }
    let published = publish(
        &mut publisher,
        "e2e-shared",
        (0..MESSAGES).map(|n| format!("{{\"order\":{n}}}")),
    )
    .await;
    each_delivered_once(&nodes[0], &published, BY_ID).await;
    shared_by_both(&nodes, MESSAGES).await;
    assert_eq!(pending(&mut publisher, "e2e-shared").await, 0);
}

#[tokio::test]
async fn each_stream_entry_becomes_one_succeeded_invocation() {
    let redis = Redis::shared();
    let mut publisher = connection(redis).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    create_stream(&mut publisher, "e2e-orders").await;

    let created = add_source(&server, "orders", "redis", &redis.url(), "e2e-orders", &[]);
    assert_eq!(created["kind"], "redis", "{created}");
    assert_eq!(created["function"], "probe");
    let published = publish(
        &mut publisher,
        "e2e-orders",
        (0..MESSAGES).map(|n| format!("{{\"order\":{n}}}")),
    )
    .await;
    each_delivered_once(&server, &published, BY_ID).await;
    assert_eq!(pending(&mut publisher, "e2e-orders").await, 0);

    listed_all_acknowledged(&server, MESSAGES, json!(0)).await;

    // The delivery: CloudEvents binary mode naming the source, the entry's other fields as
    // headers (the probe prints ce-type), the payload as the body.
    let line = last_delivery_line(&server).await;
    assert!(line.contains("ce-type=dev.vireo.redis.message"), "{line}");

    // Paused: entries wait at the broker, then arrive after resume.
    super::pause(&server).await;
    let more = publish(&mut publisher, "e2e-orders", ["late".to_string()]).await;
    server.cli_ok(&["sources", "resume", "orders"]);
    let mut all = published.clone();
    all.extend(more);
    each_delivered_once(&server, &all, BY_ID).await;

    server.cli_ok(&["sources", "rm", "orders"]);
    let listed = stdout_json(&server.cli(&["sources", "ls", "-o", "json"]));
    assert_eq!(listed["sources"], json!([]));
    // Its consumer group goes from the stream too.
    eventually(DEADLINE, || async {
        let groups: redis::streams::StreamInfoGroupsReply = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg("e2e-orders")
            .query_async(&mut connection(redis).await)
            .await
            .unwrap();
        match groups.groups.len() {
            0 => Ok(()),
            n => Err(format!("{n} consumer groups left")),
        }
    })
    .await;
    // Logged once the removal has returned, which may be just after the group is gone.
    server.logged("source removed at its broker").await;
}

#[tokio::test]
async fn a_filter_lets_only_matching_entries_invoke_and_acknowledges_the_rest() {
    let redis = Redis::shared();
    let mut publisher = connection(redis).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("probe", "probe", json!({})).await;
    create_stream(&mut publisher, "e2e-filtered").await;
    let filter = r#"{"kind": ["paid"], "amount": [{"numeric": [">", 10]}]}"#;
    let created = add_source(
        &server,
        "orders",
        "redis",
        &redis.url(),
        "e2e-filtered",
        &["--filter", filter],
    );
    assert_eq!(created["filter"]["kind"], json!(["paid"]), "{created}");

    let payloads = (0..200).map(|n| {
        let kind = if n % 2 == 0 { "paid" } else { "created" };
        json!({"kind": kind, "amount": n % 20, "order": n}).to_string()
    });
    let mut published = publish(&mut publisher, "e2e-filtered", payloads).await;
    published.extend(publish(&mut publisher, "e2e-filtered", ["not json".to_string()]).await);
    let matching: BTreeMap<String, String> = published
        .iter()
        .filter(|(_, payload)| {
            serde_json::from_str::<serde_json::Value>(payload)
                .is_ok_and(|order| order["kind"] == "paid" && order["amount"].as_u64() > Some(10))
        })
        .map(|(id, payload)| (id.clone(), payload.clone()))
        .collect();
    // Even orders with amount 12, 14, 16, 18: 40 of 200.
    assert_eq!(matching.len(), 40);
    each_delivered_once(&server, &matching, BY_ID).await;

    let listed = eventually(DEADLINE, || async {
        let listed = stdout_json(&server.cli(&["sources", "ls", "-o", "json"]));
        let source = listed["sources"][0].clone();
        if source["acknowledged"] == 40 && source["filtered"] == 161 {
            Ok(source)
        } else {
            Err(source.to_string())
        }
    })
    .await;
    assert_eq!(listed["received"], 201, "{listed}");
    // Filtered entries are acknowledged too: nothing stays pending at the broker.
    assert_eq!(pending(&mut publisher, "e2e-filtered").await, 0);
    let metrics = server.metrics_text().await;
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("vireo_source_messages_total")
                && line.contains("outcome=\"filtered\"")
                && line.ends_with(" 161")),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_entry_over_the_size_limit_stops_the_source_and_stays_at_the_broker() {
    let redis = Redis::shared();
    let mut publisher = connection(redis).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("probe", "probe", json!({})).await;
    let stream = "e2e-oversized";
    create_stream(&mut publisher, stream).await;
    add_source(&server, "orders", "redis", &redis.url(), stream, &[]);

    let small = |name: &str| (0..3).map(|n| format!("{name}-{n}")).collect::<Vec<_>>();
    let mut published = publish(&mut publisher, stream, small("before")).await;
    let big = publish(&mut publisher, stream, ["x".repeat((6 << 20) + 1)]).await;
    let big_id = big.keys().next().unwrap().clone();
    published.extend(publish(&mut publisher, stream, small("after")).await);

    let failing = source_becomes(&server, "failing", DEADLINE, |error| {
        error.is_some_and(|error| error.contains(&big_id))
    })
    .await;
    let error = failing["last_error"].as_str().unwrap();
    assert!(
        error.contains("6291457 bytes, over the 6291456 bytes"),
        "{error}"
    );
    // Never acknowledged: the entry is still the group's, read again at each reconnect.
    assert_eq!(pending(&mut publisher, stream).await, 1);
    assert!(!delivered(&server, BY_ID).await.contains_key(&big_id));

    // Removed at the broker, the source goes on with what followed it.
    let _: u64 = redis::cmd("XACK")
        .arg(stream)
        .arg("vireo.default.orders")
        .arg(&big_id)
        .query_async(&mut publisher)
        .await
        .unwrap();
    source_becomes(&server, "running", DEADLINE, |_| true).await;
    published.extend(publish(&mut publisher, stream, small("later")).await);
    each_delivered_once(&server, &published, BY_ID).await;
    assert_eq!(pending(&mut publisher, stream).await, 0);
}

/// The message ids each of `function`'s invocations got, as the echo function describes its
/// request: a batch's body is the JSON array of its messages.
async fn batched_ids(server: &Server, function: &str) -> Vec<Vec<String>> {
    let path = format!("/v1/namespaces/default/functions/{function}/invocations?limit=1000");
    let (status, page) = server.get_json(&path).await;
    assert_eq!(status, 200, "{page}");
    let mut batches = Vec::new();
    for record in page["invocations"].as_array().unwrap() {
        let detail = server.invocation(record["id"].as_str().unwrap()).await;
        let described: serde_json::Value =
            serde_json::from_str(detail["response"]["body"].as_str().unwrap()).unwrap();
        assert_eq!(
            described["headers"]["ce-type"], "dev.vireo.redis.batch",
            "{described}"
        );
        let messages: serde_json::Value =
            serde_json::from_str(described["body"].as_str().unwrap()).unwrap();
        let ids: Vec<String> = messages
            .as_array()
            .unwrap()
            .iter()
            .map(|message| message["id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            described["headers"]["x-vireo-batch-size"],
            ids.len().to_string(),
            "{described}"
        );
        batches.push(ids);
    }
    batches
}

#[tokio::test]
async fn a_batching_source_delivers_arrays_that_hold_each_entry_once() {
    let redis = Redis::shared();
    let mut publisher = connection(redis).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    // The echo component, under the name add_source points sources at: it answers with the
    // request it got, so each invocation's record shows its batch.
    server.deploy_ok("probe", "echo", json!({})).await;
    create_stream(&mut publisher, "e2e-batched").await;
    let url = redis.url();
    let created = add_source(
        &server,
        "orders",
        "redis",
        &url,
        "e2e-batched",
        &["--batch-size", "50", "--batch-window", "300ms"],
    );
    assert_eq!(created["batch_window_ms"], 300, "{created}");
    let published = publish(
        &mut publisher,
        "e2e-batched",
        (0..200).map(|n| format!("{{\"order\":{n}}}")),
    )
    .await;

    let batches = eventually(DEADLINE, || async {
        let batches = batched_ids(&server, "probe").await;
        let delivered: usize = batches.iter().map(Vec::len).sum();
        if delivered == published.len() {
            Ok(batches)
        } else {
            Err(format!("{delivered} of {} delivered", published.len()))
        }
    })
    .await;
    let mut seen: Vec<&String> = batches.iter().flatten().collect();
    seen.sort();
    assert_eq!(
        seen,
        published.keys().collect::<Vec<_>>(),
        "each entry exactly once"
    );
    assert!(batches.iter().all(|batch| batch.len() <= 50), "{batches:?}");
    // 200 entries published at once, at most 50 to a batch: a handful of invocations.
    assert!(
        batches.len() >= 4 && batches.len() < 200,
        "{} batches",
        batches.len()
    );
    assert_eq!(pending(&mut publisher, "e2e-batched").await, 0);

    let (status, code, body) = create(
        &server,
        &json!({"name": "slow", "function": "probe", "kind": "redis", "url": url,
                "stream": "e2e-batched", "batch_window_ms": 60_000}),
    )
    .await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (400, "invalid_source"),
        "{body}"
    );
}

#[tokio::test]
async fn a_source_that_cannot_work_is_refused_at_create_with_the_reason() {
    let redis = Redis::shared();
    let mut admin = connection(redis).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("probe", "probe", json!({})).await;
    create_stream(&mut admin, "e2e-guarded").await;
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "e2e-reader",
            "on",
            ">right-password",
            "~*",
            "+@all",
        ])
        .query_async(&mut admin)
        .await
        .unwrap();
    let source = |url: &str, stream: &str, secret: Option<&str>| {
        json!({"name": "guarded", "function": "probe", "kind": "redis", "url": url,
               "stream": stream, "password_secret": secret})
    };
    let port = redis.port();
    let user_url = format!("redis://e2e-reader@127.0.0.1:{port}");

    let (status, code, body) = create(&server, &source("nats://127.0.0.1:4222", "s", None)).await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (400, "invalid_source"),
        "{body}"
    );
    let (status, code, body) = create(
        &server,
        &source(&format!("redis://u:pw@127.0.0.1:{port}"), "s", None),
    )
    .await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (400, "invalid_source"),
        "{body}"
    );
    assert!(body.to_string().contains("password_secret"), "{body}");
    let mut unfiltered = source(&redis.url(), "e2e-guarded", None);
    unfiltered["filter"] = json!({"kind": "paid"});
    let (status, code, body) = create(&server, &unfiltered).await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (400, "invalid_source"),
        "{body}"
    );
    assert!(
        body.to_string().contains("kind must be a list of patterns"),
        "{body}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let (status, code, body) = create(
        &server,
        &source(
            &format!("redis://127.0.0.1:{closed_port}"),
            "e2e-guarded",
            None,
        ),
    )
    .await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (422, "source_unreachable"),
        "{body}"
    );

    let (status, code, body) =
        create(&server, &source(&redis.url(), "e2e-no-such-stream", None)).await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (422, "source_stream_missing"),
        "{body}"
    );
    assert!(body.to_string().contains("e2e-no-such-stream"), "{body}");

    server.cli_with_stdin(&["secrets", "set", "REDIS_PASSWORD"], b"wrong-password");
    let (status, code, body) = create(
        &server,
        &source(&user_url, "e2e-guarded", Some("REDIS_PASSWORD")),
    )
    .await;
    assert_eq!(
        (status, code.as_str().unwrap()),
        (422, "source_auth_refused"),
        "{body}"
    );
    assert!(!body.to_string().contains("wrong-password"), "{body}");

    server.cli_with_stdin(&["secrets", "set", "REDIS_PASSWORD"], b"right-password");
    let (status, _, body) = create(
        &server,
        &source(&user_url, "e2e-guarded", Some("REDIS_PASSWORD")),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["password_secret"], "REDIS_PASSWORD");
    assert!(!body.to_string().contains("right-password"), "{body}");
    let (status, code, _) = create(&server, &source(&redis.url(), "e2e-guarded", None)).await;
    assert_eq!((status, code.as_str().unwrap()), (409, "conflict"));
    let log = server.stderr_lines().join("\n");
    assert!(
        !log.contains("right-password"),
        "the password reached the log"
    );
}

#[tokio::test]
async fn a_vireo_killed_while_entries_flow_loses_none_and_stores_each_once() {
    let redis = Redis::shared();
    let mut publisher = connection(redis).await;
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    create_stream(&mut publisher, "e2e-crash").await;
    add_source(&server, "orders", "redis", &redis.url(), "e2e-crash", &[]);
    let published = publish(
        &mut publisher,
        "e2e-crash",
        (0..MESSAGES).map(|n| format!("crash-{n}")),
    )
    .await;
    server
        .midway_through_a_source("probe", 50, published.len() as u64)
        .await;
    server.kill();
    let server = server.restart().config(FAST_CLAIMS).start();
    server.all_succeeded("probe", MESSAGES as u64).await;
    eventually(DEADLINE, || async {
        let left = pending(&mut connection(redis).await, "e2e-crash").await;
        if left == 0 {
            Ok(())
        } else {
            Err(format!("{left} entries pending"))
        }
    })
    .await;
    // Acknowledged everywhere, and still exactly one stored invocation per entry.
    server.all_succeeded("probe", published.len() as u64).await;
}

#[tokio::test]
async fn a_broker_refusing_service_makes_the_source_fail_then_run_again_by_itself() {
    let redis = Redis::start().expect("a Redis of its own, to lock it");
    let mut admin = connection(&redis).await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(FAST_CLAIMS).start();
    server.deploy_ok("probe", "probe", json!({})).await;
    create_stream(&mut admin, "e2e-outage").await;
    add_source(&server, "orders", "redis", &redis.url(), "e2e-outage", &[]);
    let mut published = publish(&mut admin, "e2e-outage", ["before".to_string()]).await;
    server.all_succeeded("probe", 1).await;

    // The broker now wants a password the source does not have, and drops its connections.
    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "requirepass", "locked"])
        .query_async(&mut admin)
        .await
        .unwrap();
    let _: u64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
        .query_async(&mut admin)
        .await
        .unwrap();
    // The dropped connection fails first; reconnecting then names the refusal.
    let failing = source_becomes(&server, "failing", DEADLINE, |error| {
        error.is_some_and(|error| error.contains("refused the credentials"))
    })
    .await;
    assert!(failing["last_error_at"].is_string(), "{failing}");
    published.extend(publish(&mut admin, "e2e-outage", ["during".to_string()]).await);

    let _: () = redis::cmd("CONFIG")
        .arg(&["SET", "requirepass", ""])
        .query_async(&mut admin)
        .await
        .unwrap();
    source_becomes(&server, "running", Duration::from_secs(30), |_| true).await;
    each_delivered_once(&server, &published, BY_ID).await;
    state_changes_logged(&server).await;
}
