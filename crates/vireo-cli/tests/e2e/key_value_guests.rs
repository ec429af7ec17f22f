//! Functions use key-value stores through `wasi:keyvalue`: only the stores their version is
//! granted, only their namespace's, with nothing lost under concurrency.

use serde_json::json;

use crate::support::{Server, guest};

/// What the `kv` fixture deployed as `function` in `namespace` answers for `path`.
async fn call(server: &Server, namespace: &str, function: &str, path: &str) -> String {
    let url = server.url(&format!("/fn/{namespace}/{function}{path}"));
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    response.text().await.unwrap().trim_end().to_string()
}

#[tokio::test]
async fn a_function_uses_the_stores_it_is_granted_and_no_other() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server
        .deploy_ok("kv", "kv", json!({"key_value_stores": ["default"]}))
        .await;
    let kv = |path: &'static str| call(&server, "default", "kv", path);

    assert_eq!(kv("/set?key=user:42&value=ada").await, "ok");
    assert_eq!(kv("/get?key=user:42").await, "ok ada");
    assert_eq!(kv("/exists?key=user:42").await, "ok true");
    assert_eq!(kv("/get?key=missing").await, "ok none");
    assert_eq!(kv("/set-many?keys=a,b&value=1").await, "ok");
    assert_eq!(kv("/get-many?keys=a,b,c").await, "ok a=1,b=1,c=none");
    assert_eq!(kv("/delete-many?keys=a,b").await, "ok");
    assert_eq!(kv("/list").await, "ok user:42 next=-");
    assert_eq!(kv("/delete?key=user:42").await, "ok");
    assert_eq!(kv("/exists?key=user:42").await, "ok false");

    // Not granted, unknown, or another tenant's: the interface's errors, never their data.
    assert_eq!(
        kv("/get?key=x&store=sessions").await,
        "error Error::AccessDenied"
    );
    server.deploy_ok("bare", "kv", json!({})).await;
    assert_eq!(
        call(&server, "default", "bare", "/get?key=x").await,
        "error Error::AccessDenied",
        "denied by default"
    );
    server
        .deploy_ok(
            "kv",
            "kv",
            json!({"key_value_stores": ["default", "sessions"]}),
        )
        .await;
    assert_eq!(
        kv("/get?key=x&store=sessions").await,
        "error Error::NoSuchStore"
    );

    let (status, _) = server
        .call(
            reqwest::Method::POST,
            "/v1/namespaces",
            Some(json!({"name": "team"})),
        )
        .await;
    assert_eq!(status, 201);
    let form = reqwest::multipart::Form::new()
        .text(
            "settings",
            json!({"key_value_stores": ["default"]}).to_string(),
        )
        .part(
            "component",
            reqwest::multipart::Part::bytes(guest("kv")).file_name("kv.wasm"),
        );
    let deployed = server
        .admin()
        .post(server.url("/v1/namespaces/team/functions/kv/versions"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(deployed.status(), 201);
    assert_eq!(kv("/set?key=secret&value=default-ns").await, "ok");
    assert_eq!(
        call(&server, "team", "kv", "/get?key=secret").await,
        "ok none",
        "the same store name in another namespace is another store"
    );

    // Limits are the interface's errors, and nothing is written.
    let big = kv("/big?key=big&bytes=2000000").await;
    assert!(
        big.starts_with("error Error::Other(\"a value of 2000000 bytes"),
        "{big}"
    );
    assert_eq!(kv("/exists?key=big").await, "ok false");
}

#[tokio::test]
async fn concurrent_increments_are_all_counted_and_a_lost_swap_says_so() {
    let data = tempfile::tempdir().unwrap();
    let server = std::sync::Arc::new(Server::start(data.path()));
    server
        .deploy_ok(
            "kv",
            "kv",
            json!({"key_value_stores": ["default"], "max_concurrency": 16}),
        )
        .await;
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move {
                for _ in 0..50 {
                    let said = call(&server, "default", "kv", "/increment?key=hits&delta=1").await;
                    assert!(said.starts_with("ok "), "{said}");
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(
        call(&server, "default", "kv", "/increment?key=hits&delta=0").await,
        "ok 400"
    );

    assert_eq!(
        call(&server, "default", "kv", "/cas?key=flag&value=first").await,
        "ok swapped"
    );
    assert_eq!(
        call(&server, "default", "kv", "/get?key=flag").await,
        "ok first"
    );

    // Every operation is counted by store and kind, and timed.
    let metrics = server.metrics_text().await;
    let counted = |op: &str| {
        let series = format!(
            "vireo_kv_operations_total{{namespace=\"default\",store=\"default\",op=\"{op}\"}} "
        );
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .map(|count| count.parse::<f64>().unwrap())
    };
    assert_eq!(counted("increment"), Some(401.0), "{metrics}");
    assert_eq!(counted("swap"), Some(1.0), "{metrics}");
    assert!(
        metrics.contains("vireo_kv_operation_seconds_count{op=\"increment\"} 401"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unmodified_spin_sdk_component_keeps_state_in_its_store() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let file = crate::support::guests().join("spin_app.wasm");
    let file = file.to_str().unwrap();
    server.cli_ok(&["deploy", "spin", file]);
    let visit = || async {
        let response = reqwest::get(server.url("/fn/default/spin/kv/home"))
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    };
    let (status, said) = visit().await;
    assert_eq!(status, 500, "not granted: {said}");
    assert!(said.contains("AccessDenied"), "{said}");

    server.cli_ok(&["deploy", "spin", file, "--kv", "default"]);
    assert_eq!(visit().await, (200, "home=1".to_string()));
    assert_eq!(visit().await, (200, "home=2".to_string()));
    // The same data through wasi:keyvalue.
    server
        .deploy_ok("kv", "kv", json!({"key_value_stores": ["default"]}))
        .await;
    assert_eq!(
        call(&server, "default", "kv", "/get?key=home").await,
        "ok 2"
    );
}

/// Sets the keys `prefix` + the four digits of each number in `range`, 500 per `set-many`.
async fn fill(server: &Server, prefix: &str, range: std::ops::Range<usize>) {
    let keys: Vec<String> = range.map(|n| format!("{prefix}{n:04}")).collect();
    for chunk in keys.chunks(500) {
        let path = format!("/set-many?keys={}&value=v", chunk.join(","));
        assert_eq!(call(server, "default", "kv", &path).await, "ok");
    }
}

#[tokio::test]
async fn listing_pages_every_key_once_while_others_change_and_data_outlives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path());
    server
        .deploy_ok("kv", "kv", json!({"key_value_stores": ["default"]}))
        .await;
    fill(&server, "k", 0..2500).await;

    let mut seen = std::collections::BTreeMap::<String, u32>::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let page = call(&server, "default", "kv", &format!("/list?cursor={cursor}")).await;
        let (keys, next) = page
            .strip_prefix("ok ")
            .and_then(|rest| rest.rsplit_once(" next="))
            .unwrap_or_else(|| panic!("a page: {page}"));
        for key in keys.split(',') {
            *seen.entry(key.to_string()).or_default() += 1;
        }
        pages += 1;
        // Writes between pages: new keys before and after the cursor, and deletions of
        // keys that are not among the 2,500.
        fill(&server, "a", pages * 10..pages * 10 + 10).await;
        fill(&server, "z", pages * 10..pages * 10 + 10).await;
        if next == "-" {
            break;
        }
        cursor = next.to_string();
    }
    assert!(pages >= 3, "{pages} pages");
    for n in 0..2500 {
        let key = format!("k{n:04}");
        assert_eq!(seen.get(&key), Some(&1), "{key} listed once");
    }
    assert!(seen.values().all(|count| *count == 1), "no key twice");

    server.terminate();
    assert!(server.wait_exit().success());
    let server = server.restart().start();
    assert_eq!(
        call(&server, "default", "kv", "/get-many?keys=k0000,k2499").await,
        "ok k0000=v,k2499=v"
    );
}

#[tokio::test]
async fn records_and_usage_count_each_invocations_key_value_operations() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server
        .deploy_ok("kv", "kv", json!({"key_value_stores": ["default"]}))
        .await;
    let call = |path: &'static str| server.metered_call(path, "kv");
    // One write of two keys of 1 byte with values of 2: 6 bytes.
    let (wrote, counts) = call("/fn/default/kv/set-many?keys=a,b&value=xy").await;
    assert_eq!(counts, (0, 1, 6), "{wrote}");
    // One read of the same: the keys sent and the values received.
    let (read, counts) = call("/fn/default/kv/get-many?keys=a,b").await;
    assert_eq!(counts, (1, 0, 6), "{read}");
    let (_, counts) = call("/fn/default/kv/increment?key=n&delta=1").await;
    assert_eq!(counts, (0, 1, 9), "the key and the 8-byte counter");

    let usage = crate::support::stdout_json(&server.cli(&["usage", "-o", "json"]));
    let (reads, writes, _) = crate::support::metered(&usage["totals"], "kv");
    assert_eq!((reads, writes), (1, 2), "{usage}");
}
