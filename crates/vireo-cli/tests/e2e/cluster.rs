//! Several `vireo serve` processes on one PostgreSQL database: what any node writes, every node
//! serves, and what any node changes, every node's in-memory copies follow within a second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    DEADLINE, Server, ServerBuilder, Store, eventually, invocation_id, stdout_json, submit_async,
};

/// How soon a change made through one node must show on the others.
const PROPAGATION: Duration = Duration::from_secs(1);

/// Three nodes on a fresh database, their files under `dir`.
fn three_nodes(dir: &std::path::Path) -> [Server; 3] {
    let first = ServerBuilder::new(Store::postgres(dir)).start();
    let second = first.second_node().start();
    let third = first.second_node().start();
    [first, second, third]
}

/// The status and body of `GET path` on `node`.
async fn get(node: &Server, path: &str) -> (u16, String) {
    let response = reqwest::get(node.url(path)).await.expect("GET");
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Waits until `path` on `node` answers `expected` (status 200), at most [`PROPAGATION`].
async fn serves(node: &Server, path: &str, expected: impl Fn(&str) -> bool) {
    eventually(PROPAGATION, || async {
        match get(node, path).await {
            (200, body) if expected(&body) => Ok(()),
            other => Err(format!("{} answered {other:?}", node.url(path))),
        }
    })
    .await
}

fn is_hello(body: &str) -> bool {
    body == "Hello, Vireo!\n"
}

/// Whether the `echo` fixture's answer shows `DB_PASSWORD` as `value` in its environment.
fn sees_password(body: &str, value: &str) -> bool {
    serde_json::from_str::<Value>(body).is_ok_and(|seen| seen["env"]["DB_PASSWORD"] == value)
}

fn is_echo(body: &str) -> bool {
    body.contains("\"method\"")
}

#[tokio::test(flavor = "multi_thread")]
async fn what_one_node_deploys_every_node_serves_and_changes_reach_all_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let [one, two, three] = three_nodes(dir.path());

    // Deployed through one node: the others run it (compiling it on first use).
    one.deploy_ok("app", "hello", json!({})).await;
    for node in [&two, &three] {
        let (status, body) = get(node, "/fn/default/app/").await;
        assert_eq!((status, body.as_str()), (200, "Hello, Vireo!\n"));
    }
    let nodes = stdout_json(&two.cli(&["nodes", "-o", "json"]));
    let addresses: Vec<&str> = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| node["address"].as_str().unwrap())
        .collect();
    for node in [&one, &two, &three] {
        assert!(
            addresses.contains(&node.address().as_str()),
            "{nodes} lists {}",
            node.address()
        );
    }
    // Each holds a slot of its own, the lowest free ones.
    let mut slots: Vec<u64> = nodes["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| node["slot"].as_u64().unwrap())
        .collect();
    slots.sort_unstable();
    assert_eq!(slots, [0, 1, 2], "{nodes}");

    // Following the logs through one node shows what another node runs.
    one.deploy_ok("hello", "hello", json!({})).await;
    crate::logs::follow_sees_invocations(&two, &three).await;

    // An alias moved through node two routes on one and three, whose caches held the old target.
    one.deploy_ok("app", "echo", json!({})).await;
    let alias = "/v1/namespaces/default/functions/app/aliases/prod";
    let (status, _) = two
        .call(Method::PUT, alias, Some(json!({"version": 2})))
        .await;
    assert_eq!(status, 200);
    for node in [&one, &three] {
        serves(node, "/fn/default/app@prod/", is_echo).await;
    }
    let (status, _) = two
        .call(Method::PUT, alias, Some(json!({"version": 1})))
        .await;
    assert_eq!(status, 200);
    for node in [&one, &three] {
        serves(node, "/fn/default/app@prod/", is_hello).await;
    }

    // A key revoked through node three is refused by node one, which had accepted it.
    let (status, created) = one
        .call(Method::POST, "/v1/keys", Some(json!({"role": "admin"})))
        .await;
    assert_eq!(status, 201, "{created}");
    let key_client = Server::client_with_key(created["key"].as_str().unwrap());
    let functions = one.url("/v1/namespaces/default/functions");
    let status = |client: reqwest::Client, url: String| async move {
        client.get(url).send().await.unwrap().status().as_u16()
    };
    assert_eq!(status(key_client.clone(), functions.clone()).await, 200);
    let revoke = format!("/v1/keys/{}", created["id"].as_str().unwrap());
    assert_eq!(three.call(Method::DELETE, &revoke, None).await.0, 200);
    eventually(PROPAGATION, || async {
        match status(key_client.clone(), functions.clone()).await {
            401 => Ok(()),
            other => Err(format!("node one still answers {other} to the revoked key")),
        }
    })
    .await;

    // A secret changed through node one is what node two's warm instances see next.
    let secret = "/v1/namespaces/default/secrets/DB_PASSWORD";
    let set = |value: &'static str| one.call(Method::PUT, secret, Some(json!({"value": value})));
    assert!((200..300).contains(&set("first").await.0));
    one.deploy_ok(
        "env",
        "echo",
        json!({"secrets": ["DB_PASSWORD"], "instance_reuse": 10}),
    )
    .await;
    serves(&two, "/fn/default/env/", |body| {
        sees_password(body, "first")
    })
    .await;
    assert!((200..300).contains(&set("second").await.0));
    serves(&two, "/fn/default/env/", |body| {
        sees_password(body, "second")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_under_1000_async_invocations_loses_none_and_repeats_only_its_own() {
    const TOTAL: usize = 1000;
    const CONCURRENCY: usize = 8;
    // A short lease, so the survivors take the dead node's invocations over within seconds.
    let config = format!("[async]\nconcurrency = {CONCURRENCY}\nlease_ms = 3000\n");
    let dir = tempfile::tempdir().unwrap();
    let one = ServerBuilder::new(Store::postgres(dir.path()))
        .config(&config)
        .start();
    let two = one.second_node().config(&config).start();
    let mut three = one.second_node().config(&config).start();
    one.deploy_ok("probe", "probe", json!({})).await;

    let urls: Vec<String> = [&one, &two, &three]
        .iter()
        .map(|node| node.url("/fn/default/probe/?ms=200"))
        .collect();
    let ids = submit_async(&urls, TOTAL).await;
    one.midway_through_the_queue("probe", 100).await;
    three.kill();
    one.all_succeeded("probe", TOTAL as u64).await;
    // Only an attempt that was running on the killed node runs again: at most its concurrency.
    let mut repeated = Vec::new();
    for id in &ids {
        let (status, body) = two.get_json(&format!("/v1/invocations/{id}")).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("succeeded")));
        if body["attempts"].as_u64().unwrap() > 1 {
            repeated.push(id.clone());
        }
    }
    assert!(
        repeated.len() <= CONCURRENCY,
        "{} invocations ran more than once: {repeated:?}",
        repeated.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn three_schedulers_fire_each_slot_once_across_a_node_restart() {
    use crate::cron::{CONFIG, add_every_second, micros, until_slots};

    let dir = tempfile::tempdir().unwrap();
    let one = ServerBuilder::new(Store::postgres(dir.path()))
        .config(CONFIG)
        .start();
    let mut two = one.second_node().config(CONFIG).start();
    let three = one.second_node().config(CONFIG).start();
    one.deploy_ok("probe", "probe", json!({})).await;
    add_every_second(&one, "skip");

    until_slots(&one, |slots| slots.len() >= 4).await;
    two.terminate();
    assert!(two.wait_exit().success());
    let two = two.restart().config(CONFIG).start();
    // Ten seconds of slots in all, the restart in the middle; every node's logs are one view.
    let slots = until_slots(&three, |slots| slots.len() >= 10).await;
    let times: Vec<i64> = slots.keys().map(|slot| micros(slot)).collect();
    for pair in times.windows(2) {
        assert_eq!(pair[1] - pair[0], 1_000_000, "no slot missed: {slots:?}");
    }
    for (slot, (_, deliveries)) in &slots {
        assert_eq!(*deliveries, 1, "{slot} fired once: {slots:?}");
    }
    drop(two);
}

/// How an async invocation the database cannot take is refused: `unavailable` when its function
/// could not even be looked up, `not_stored` when it could not be stored.
const REFUSED_UNSTORED: [&str; 2] = ["unavailable", "not_stored"];

/// What one submission of the light load got: accepted with its id, or refused with a status
/// and the error's code.
enum Answer {
    Accepted(String),
    Refused(u16, String),
}

/// Submits one async invocation of `probe` every 20 ms to `url` until `stop` is set.
async fn light_load(url: String, stop: Arc<AtomicBool>) -> Vec<Answer> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut answers = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let response = client
            .post(&url)
            .header("prefer", "respond-async")
            .body("light")
            .send()
            .await
            .expect("the node answers while its database is down");
        let status = response.status().as_u16();
        if status == 202 {
            answers.push(Answer::Accepted(invocation_id(&response)));
        } else {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            let code = body["error"]["code"].as_str().unwrap_or_default();
            answers.push(Answer::Refused(status, code.to_string()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    answers
}

/// The status of `GET /readyz` on `node`.
async fn readiness(node: &Server) -> (u16, Value) {
    let response = reqwest::get(node.url("/readyz")).await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_down_for_five_seconds_gives_clear_errors_then_loses_nothing() {
    let postgres = vireo_testsvc::Postgres::start().expect("a PostgreSQL server of its own");
    let dir = tempfile::tempdir().unwrap();
    let config = "[async]\nconcurrency = 8\nlease_ms = 3000\n";
    let one = ServerBuilder::new(Store::postgres_on(&postgres, dir.path()))
        .config(config)
        .start();
    let two = one.second_node().config(config).start();
    one.deploy_ok("probe", "probe", json!({})).await;
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(light_load(
        one.url("/fn/default/probe/?ms=10"),
        stop.clone(),
    ));
    one.queue_counts_until("probe", DEADLINE, |c| {
        c["succeeded"].as_u64().unwrap() >= 10
    })
    .await;

    postgres.pause().expect("stopping PostgreSQL");
    let down_since = std::time::Instant::now();
    for node in [&one, &two] {
        eventually(DEADLINE, || async {
            match readiness(node).await {
                (503, body) if body["status"] == "store_unavailable" => Ok(()),
                other => Err(format!("readyz still answers {other:?}")),
            }
        })
        .await;
    }
    // While it is down, what needs it is refused clearly: a synchronous call (which resolves
    // its version there) and an async one (not stored, so not accepted).
    let (status, body) = get(&one, "/fn/default/probe/?ms=0").await;
    let code = serde_json::from_str::<Value>(&body).unwrap()["error"]["code"].clone();
    assert_eq!((status, code), (503, json!("unavailable")), "{body}");
    let refused = reqwest::Client::new()
        .post(two.url("/fn/default/probe/"))
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    let status = refused.status().as_u16();
    let body: Value = refused.json().await.unwrap();
    assert!(
        status == 503 && REFUSED_UNSTORED.contains(&body["error"]["code"].as_str().unwrap()),
        "{body}"
    );
    // The outage lasts at least five seconds; nothing waits on it but the clock.
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(down_since.elapsed())).await;
    postgres.resume().expect("starting PostgreSQL again");

    for node in [&one, &two] {
        eventually(DEADLINE, || async {
            match readiness(node).await {
                (200, _) => Ok(()),
                other => Err(format!(
                    "readyz answers {other:?} after the database returned"
                )),
            }
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    let answers = load.await.unwrap();
    let accepted: Vec<&String> = answers
        .iter()
        .filter_map(|answer| match answer {
            Answer::Accepted(id) => Some(id),
            Answer::Refused(..) => None,
        })
        .collect();
    let refused: Vec<(u16, &str)> = answers
        .iter()
        .filter_map(|answer| match answer {
            Answer::Refused(status, code) => Some((*status, code.as_str())),
            Answer::Accepted(_) => None,
        })
        .collect();
    for (status, code) in &refused {
        // Not stored, so not accepted: the client may send it again.
        assert!(
            *status == 503 && REFUSED_UNSTORED.contains(code),
            "a refusal while the database was down: {refused:?}"
        );
    }
    // Every invocation accepted before, during or after the outage runs.
    two.all_succeeded("probe", accepted.len() as u64).await;
}

/// What the admin API shows of an installation, for comparing one store with its copy: all of
/// it but what belongs to the node or the moment (loaded versions, a report's time range).
async fn views(node: &Server) -> Vec<(String, Value)> {
    let mut seen = Vec::new();
    for path in [
        "/v1/namespaces",
        "/v1/keys",
        "/v1/namespaces/default/functions",
        "/v1/namespaces/default/functions/app/versions",
        "/v1/namespaces/default/functions/app/invocations",
        "/v1/namespaces/default/functions/app/logs",
        "/v1/namespaces/default/functions/app/queue",
        "/v1/namespaces/default/functions/app/dlq",
        "/v1/namespaces/default/schedules",
        "/v1/namespaces/default/secrets",
        "/v1/namespaces/default/buckets",
        "/v1/namespaces/default/buckets/uploads/objects",
        "/v1/usage?group_by=function",
    ] {
        let (status, mut body) = node.get_json(path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let functions = body.get_mut("functions").and_then(Value::as_array_mut);
        for function in functions.into_iter().flatten() {
            function.as_object_mut().unwrap().remove("warm_versions");
        }
        if let Some(report) = body
            .as_object_mut()
            .filter(|_| path.starts_with("/v1/usage"))
        {
            report.remove("from");
            report.remove("to");
            // Functions' SQLite databases are a single node's files: a cluster reports none.
            report.remove("sqlite_bytes");
        }
        seen.push((path.to_string(), body));
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copied_single_node_installation_is_served_identically_by_a_cluster() {
    let single_dir = tempfile::tempdir().unwrap();
    let mut single = Server::start(single_dir.path());
    let secret = "/v1/namespaces/default/secrets/DB_PASSWORD";
    let alias = "/v1/namespaces/default/functions/app/aliases/prod";
    let (status, _) = single
        .call(Method::PUT, secret, Some(json!({"value": "s3cret"})))
        .await;
    assert_eq!(status, 201);
    single.deploy_ok("app", "hello", json!({})).await;
    single
        .deploy_ok("app", "echo", json!({"secrets": ["DB_PASSWORD"]}))
        .await;
    assert_eq!(
        single
            .call(Method::PUT, alias, Some(json!({"version": 1})))
            .await
            .0,
        200
    );
    for path in [
        "/fn/default/app/",
        "/fn/default/app@prod/",
        "/fn/default/app@1/",
    ] {
        assert_eq!(get(&single, path).await.0, 200);
    }
    let schedule = json!({"name": "nightly", "function": "app", "schedule": "0 3 * * *"});
    let (status, body) = single
        .call(
            Method::POST,
            "/v1/namespaces/default/schedules",
            Some(schedule),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // An object of several PostgreSQL chunks, whose bytes the copy moves.
    let object: Vec<u8> = (0..3_000_000_u32).map(|n| (n % 253) as u8).collect();
    let upload = single_dir.path().join("upload.bin");
    std::fs::write(&upload, &object).unwrap();
    single.cli_ok(&["buckets", "create", "uploads"]);
    single.cli_ok(&[
        "objects",
        "put",
        "uploads",
        "data/big.bin",
        upload.to_str().unwrap(),
    ]);
    let before = eventually(DEADLINE, || async {
        let seen = views(&single).await;
        // Three invocations, two of hello (one log line each): all written.
        let count = |suffix: &str, field: &str| {
            seen.iter()
                .find(|(path, _)| path.ends_with(suffix))
                .map_or(0, |(_, body)| body[field].as_array().map_or(0, Vec::len))
        };
        if count("/invocations", "invocations") == 3 && count("/logs", "lines") == 2 {
            Ok(seen)
        } else {
            Err("the invocations' records and logs are not all written yet".to_string())
        }
    })
    .await;
    let single_admin_key = single.admin_key.clone();
    single.terminate();
    assert!(single.wait_exit().success());

    let cluster_dir = tempfile::tempdir().unwrap();
    let store = Store::postgres(cluster_dir.path());
    let Store::Postgres { url, dir, .. } = &store else {
        unreachable!("a PostgreSQL store")
    };
    let copied = std::process::Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(["store", "copy", "--from"])
        .arg(single_dir.path())
        .args(["--to", url, "-o", "json"])
        .output()
        .unwrap();
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let report = stdout_json(&copied);
    assert_eq!(report["components"], 2, "{report}");
    assert_eq!(
        (&report["objects"], &report["object_bytes"]),
        (&json!(1), &json!(object.len())),
        "{report}"
    );
    // The nodes share the single node's master key, so its secrets open.
    std::fs::copy(single_dir.path().join("master.key"), dir.join("master.key")).unwrap();
    let one = ServerBuilder::new(store.clone()).start();
    let two = one.second_node().start();

    for node in [&one, &two] {
        for ((path, copied), (_, original)) in views(node).await.iter().zip(&before) {
            assert_eq!(copied, original, "{} serves {path} as it was", node.url);
        }
    }
    for node in [&one, &two] {
        let (status, body) = get(node, "/fn/default/app@prod/").await;
        assert_eq!((status, body.as_str()), (200, "Hello, Vireo!\n"));
        serves(node, "/fn/default/app/", |body| {
            sees_password(body, "s3cret")
        })
        .await;
        let downloaded = cluster_dir.path().join("download.bin");
        node.cli_ok(&[
            "objects",
            "get",
            "uploads",
            "data/big.bin",
            "--to",
            downloaded.to_str().unwrap(),
        ]);
        assert!(
            std::fs::read(&downloaded).unwrap() == object,
            "{} serves the object's bytes as uploaded",
            node.url
        );
        let old_key = Server::client_with_key(&single_admin_key);
        let answer = old_key.get(node.url("/v1/keys")).send().await.unwrap();
        assert_eq!(
            answer.status(),
            200,
            "the single node's admin key works on the cluster"
        );
    }
    // Refused a second time: the target is no longer empty.
    let again = std::process::Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(["store", "copy", "--from"])
        .arg(single_dir.path())
        .args(["--to", url])
        .output()
        .unwrap();
    assert!(!again.status.success());
    let refused = String::from_utf8_lossy(&again.stderr);
    assert!(
        refused.contains("the target already holds data"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_node_whose_database_is_down_at_start_says_so_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = format!("postgres://vireo:hunter2@127.0.0.1:{port}/vireo");
    let data = dir.path().join("node");
    let refused = Server::builder(&data)
        .args(&["--store", &store])
        .start_fails();
    assert!(
        refused.contains(&format!(
            "opening the store postgres://vireo:***@127.0.0.1:{port}/vireo"
        )),
        "{refused}"
    );
    assert!(refused.contains("connecting to database"), "{refused}");
    assert!(
        !refused.contains("hunter2"),
        "the password is never shown: {refused}"
    );
    let written: Vec<_> = std::fs::read_dir(&data)
        .map(|entries| entries.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(
        written.is_empty(),
        "nothing written to the data directory: {written:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn guests_on_two_nodes_share_their_stores_and_lose_no_increment() {
    let dir = tempfile::tempdir().unwrap();
    let one = ServerBuilder::new(Store::postgres(dir.path())).start();
    let two = one.second_node().start();
    one.deploy_ok("kv", "kv", json!({"key_value_stores": ["default"]}))
        .await;
    let nodes = Arc::new([one, two]);
    let clients: Vec<_> = (0..8)
        .map(|client| {
            let nodes = nodes.clone();
            tokio::spawn(async move {
                // Half the clients on each node.
                let node = &nodes[client % 2];
                for _ in 0..25 {
                    let path = "/fn/default/kv/increment?key=hits&delta=1";
                    serves(node, path, |body| body.starts_with("ok ")).await;
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    // A read on either node sees every write committed on both.
    for node in nodes.iter() {
        let (status, body) = get(node, "/fn/default/kv/increment?key=hits&delta=0").await;
        assert_eq!((status, body.as_str()), (200, "ok 200\n"));
    }
}
