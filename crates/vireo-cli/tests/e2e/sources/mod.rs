//! Event sources against real brokers: every message becomes one succeeded invocation,
//! acknowledged only after the queue's commit, with nothing lost to a `kill -9` of Vireo or to
//! the broker going away for a while; a source that cannot work is refused at create with the
//! reason. What every kind is checked with is here; each kind's module drives its broker.

mod amqp;
mod mqtt;
mod nats;
mod postgres;
mod redis;
mod tls;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support::{DEADLINE, Server, ServerBuilder, Store, eventually, stdout_json};

const MESSAGES: usize = 1000;
/// Messages idle this long at a consumer that died are taken over (Redis) or redelivered
/// (JetStream's ack-wait): short, for the crash tests.
const FAST_CLAIMS: &str = "[sources]\nclaim_idle_ms = 1000\npoll_ms = 200\n";

/// `vireo sources add NAME --kind KIND --url URL --stream STREAM --function probe EXTRA…`.
fn add_source(
    server: &Server,
    name: &str,
    kind: &str,
    url: &str,
    stream: &str,
    extra: &[&str],
) -> Value {
    let mut args = vec![
        "sources",
        "add",
        name,
        "--kind",
        kind,
        "--url",
        url,
        "--stream",
        stream,
        "--function",
        "probe",
        "-o",
        "json",
    ];
    args.extend_from_slice(extra);
    stdout_json(&server.cli(&args))
}

/// Posts a source; its status, error code and body.
async fn create(server: &Server, body: &Value) -> (u16, Value, Value) {
    let response = server
        .admin()
        .post(server.url("/v1/namespaces/default/sources"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"]["code"].clone(), body)
}

/// What identifies a delivery in the probe's log line: the broker's message id, or (for
/// brokers without one) the subject, unique per message in those tests.
const BY_ID: &str = "ce-id=";
const BY_SUBJECT: &str = "ce-subject=";

/// How many times each `by` value reached the probe, read from its log lines (one per attempt).
async fn delivered(server: &Server, by: &str) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    let mut after = 0;
    loop {
        let (status, page) = server
            .get_json(&format!(
                "/v1/namespaces/default/functions/probe/logs?after={after}&limit=1000"
            ))
            .await;
        assert_eq!(status, 200, "{page}");
        let lines = page["lines"].as_array().unwrap();
        if lines.is_empty() {
            return seen;
        }
        let ids = lines.iter().filter_map(|line| {
            line["line"]
                .as_str()
                .unwrap()
                .split(' ')
                .find_map(|field| field.strip_prefix(by))
        });
        for id in ids {
            *seen.entry(id.to_string()).or_insert(0) += 1;
        }
        after = page["next_after"].as_i64().unwrap();
    }
}

/// Waits until every published message (its `by` value → payload) reached the function,
/// each exactly once, and the queue holds exactly one succeeded invocation per message.
async fn each_delivered_once(server: &Server, published: &BTreeMap<String, String>, by: &str) {
    server.all_succeeded("probe", published.len() as u64).await;
    let published_ids: BTreeSet<&String> = published.keys().collect();
    let seen = eventually(DEADLINE, || async {
        let seen = delivered(server, by).await;
        if seen.len() >= published.len() {
            Ok(seen)
        } else {
            Err(format!("{} of {} delivered", seen.len(), published.len()))
        }
    })
    .await;
    assert_eq!(seen.keys().collect::<BTreeSet<_>>(), published_ids);
    let twice: Vec<_> = seen.iter().filter(|(_, count)| **count > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
}

/// Waits until `sources ls` shows the source `orders` with every message acknowledged and
/// `lag` (null where the broker tells none), then checks its state, counters and metrics.
async fn listed_all_acknowledged(server: &Server, messages: usize, lag: Value) {
    let listed = eventually(DEADLINE, || async {
        let listed = stdout_json(&server.cli(&["sources", "ls", "-o", "json"]));
        let source = listed["sources"][0].clone();
        if source["acknowledged"] == messages && source["lag"] == lag {
            Ok(source)
        } else {
            Err(source.to_string())
        }
    })
    .await;
    assert_eq!(listed["state"], "running", "{listed}");
    assert_eq!(listed["received"], messages);
    // Acknowledged moments ago, within the rate's 10 s window: counted, never more than all.
    let rate = listed["acknowledged_per_second"]
        .as_f64()
        .unwrap_or_default();
    assert!(rate > 0.0 && rate <= messages as f64 / 10.0, "{listed}");
    let table = server.cli_ok(&["sources", "ls"]);
    assert!(table.contains("ACKED/S"), "{table}");
    let metrics = server.metrics_text().await;
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("vireo_source_messages_total")
                && line.contains("outcome=\"acknowledged\"")
                && line.contains("source=\"orders\"")
                && line.ends_with(&format!(" {messages}"))),
        "{metrics}"
    );
    assert_eq!(
        metrics.contains("vireo_source_lag{"),
        !lag.is_null(),
        "{metrics}"
    );
}

/// The probe's last log line, which names the delivery's `ce-type`.
async fn last_delivery_line(server: &Server) -> String {
    let (_, page) = server
        .get_json("/v1/namespaces/default/functions/probe/logs?limit=1")
        .await;
    page["lines"][0]["line"].as_str().unwrap().to_string()
}

/// Waits until the source `orders` is in `state` and its last error satisfies `error`.
async fn source_becomes(
    server: &Server,
    state: &str,
    within: Duration,
    error: impl Fn(Option<&str>) -> bool,
) -> Value {
    eventually(within, || async {
        let (_, source) = server
            .get_json("/v1/namespaces/default/sources/orders")
            .await;
        if source["state"] == state && error(source["last_error"].as_str()) {
            Ok(source)
        } else {
            Err(source.to_string())
        }
    })
    .await
}

/// Pauses the source `orders` and waits until its runner on `server` has stopped (`paused`, not
/// `pausing`): from then on the broker keeps what arrives.
async fn pause(server: &Server) {
    server.cli_ok(&["sources", "pause", "orders"]);
    source_becomes(server, "paused", DEADLINE, |_| true).await;
}

/// Both state changes of a source that failed and came back were logged.
async fn state_changes_logged(server: &Server) {
    // Each line is written just after the state it reports changed: wait for it, not assume it.
    server.logged("source failing").await;
    server.logged("source running again").await;
}

/// Two nodes on one fresh PostgreSQL database, their files under `dir`, the probe deployed.
async fn two_nodes(dir: &Path) -> [Server; 2] {
    let one = ServerBuilder::new(Store::postgres(dir)).start();
    let two = one.second_node().start();
    one.deploy_ok("probe", "probe", serde_json::json!({})).await;
    [one, two]
}

/// Waits until the source `orders` runs on `node` (each node reports its own runner).
async fn runs_on(node: &Server) {
    source_becomes(node, "running", DEADLINE, |_| true).await;
}

/// What `node` itself acknowledged of the source `orders`, by its own `/metrics`.
async fn acknowledged_on(node: &Server) -> u64 {
    let metrics = node.metrics_text().await;
    metrics
        .lines()
        .find(|line| {
            line.starts_with("vireo_source_messages_total")
                && line.contains("outcome=\"acknowledged\"")
                && line.contains("source=\"orders\"")
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// Both nodes took messages from the broker, and together acknowledged each one once.
async fn shared_by_both(nodes: &[Server; 2], messages: usize) {
    let (one, two) = eventually(DEADLINE, || async {
        let counts = (
            acknowledged_on(&nodes[0]).await,
            acknowledged_on(&nodes[1]).await,
        );
        if counts.0 + counts.1 >= messages as u64 {
            Ok(counts)
        } else {
            Err(format!("acknowledged {counts:?} of {messages}"))
        }
    })
    .await;
    assert_eq!(one + two, messages as u64, "none acknowledged twice");
    assert!(
        one > 0 && two > 0,
        "both nodes took messages: {one} and {two}"
    );
}

/// The retry configuration of the dead-letter tests: quick backoffs.
const QUICK_RETRIES: &str = "[async]\nmin_backoff_ms = 100\nmax_backoff_ms = 500\n";

/// With a retry policy of two attempts, the `failing` messages (answered 500 by the probe) end
/// in the dead-letter queue and the `good` ones succeed; then a redrive gives each failing one
/// two fresh attempts and the DLQ again, while the good ones ran once. Keys are message ids.
async fn dead_lettered_and_redriven(
    server: &Server,
    failing: &BTreeMap<String, String>,
    good: &BTreeMap<String, String>,
) {
    let dead_letters = || async {
        server
            .queue_counts_until("probe", DEADLINE, |counts| {
                counts["dead"] == failing.len() && counts["succeeded"] == good.len()
            })
            .await;
        let dead = stdout_json(&server.cli(&["dlq", "ls", "probe", "-o", "json"]));
        let dead = dead["invocations"].as_array().unwrap().clone();
        assert_eq!(dead.len(), failing.len());
        for invocation in &dead {
            assert_eq!(invocation["attempts"], 2, "{invocation}");
            assert_eq!(invocation["response"]["status"], 500, "{invocation}");
            assert_eq!(invocation["trigger"], "source", "{invocation}");
        }
    };
    dead_letters().await;

    let redriven = stdout_json(&server.cli(&["dlq", "redrive", "probe", "--all", "-o", "json"]));
    assert_eq!(redriven["redriven"], failing.len());
    // Two fresh attempts each, dead again; the good ones ran once.
    let seen = eventually(DEADLINE, || async {
        let seen = delivered(server, BY_ID).await;
        if failing.keys().all(|id| seen.get(id) == Some(&4)) {
            Ok(seen)
        } else {
            Err(format!("{seen:?}"))
        }
    })
    .await;
    dead_letters().await;
    assert!(good.keys().all(|id| seen.get(id) == Some(&1)), "{seen:?}");
    assert_eq!(seen.len(), failing.len() + good.len(), "{seen:?}");
}
