//! The dashboard in a real browser: Debian's headless Chromium, driven by playwright-core from
//! `tests/browser/dashboard.mjs`, against the real binary. This side prepares what the pages
//! show (functions with versions and an alias, a viewer key, an async invocation in the
//! dead-letter queue) through the API; the script does what a person would and checks what
//! they would see. Screenshots land in `target/dashboard-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use vireo_testsvc::Redis;

use crate::support::{
    DEADLINE, Server, ServerBuilder, Store, eventually, invocation_id, stdout_json,
};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

#[tokio::test]
async fn a_browser_uses_the_dashboard() {
    let root = workspace_root();
    let scripts = root.join("tests/browser");
    assert!(
        scripts.join("node_modules/playwright-core").is_dir(),
        "playwright-core is not installed in {}: run `npm ci` there (scripts/test.sh does)",
        scripts.display()
    );
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("hello", "hello", json!({})).await;
    server
        .deploy_ok("hello", "hello", json!({"env": {"GREETING": "Hi"}}))
        .await;
    server.cli_ok(&["alias", "hello", "prod", "1"]);
    server.cli_ok(&["alias", "hello", "canary", "1"]);
    server.deploy_ok("probe", "probe", json!({})).await;
    let secret = server.cli_with_stdin(&["secrets", "set", "DB_PASSWORD"], b"hunter2-value");
    assert!(secret.status.success(), "{secret:?}");
    // Once a year: it never fires while the test runs, and the page pauses it.
    server.cli_ok(&[
        "cron",
        "add",
        "hello",
        "--schedule",
        "0 0 1 1 *",
        "--name",
        "yearly",
    ]);
    // `jobs@stable` first points at a version that traps, so one attempt sends its async
    // invocation to the dead-letter queue; then at one that answers, so a redrive succeeds.
    server.deploy_ok("jobs", "panic", json!({})).await;
    server.deploy_ok("jobs", "probe", json!({})).await;
    server.cli_ok(&["alias", "jobs", "stable", "1"]);
    server.cli_ok(&["retry-policy", "jobs", "--max-attempts", "1"]);
    let accepted = server
        .admin()
        .post(server.url("/fn/default/jobs@stable/"))
        .header("prefer", "respond-async")
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let dead_id = invocation_id(&accepted);
    eventually(DEADLINE, || {
        let server = &server;
        let id = dead_id.clone();
        async move {
            let seen: Value = server.invocation(&id).await;
            (seen["status"] == "dead")
                .then_some(())
                .ok_or_else(|| format!("invocation {id}: {seen}"))
        }
    })
    .await;
    server.cli_ok(&["alias", "jobs", "stable", "2"]);
    fill_bucket(&server).await;
    fill_store(&server).await;
    let _redis = failing_source(&server).await;
    let viewer = stdout_json(&server.cli(&[
        "keys", "create", "--role", "viewer", "-n", "default", "-o", "json",
    ]));
    let viewer_key = viewer["key"].as_str().expect("a key");

    let output = Command::new("node")
        .arg(scripts.join("dashboard.mjs"))
        .current_dir(&scripts)
        .env("VIREO_URL", server.url(""))
        .env("ADMIN_KEY", &server.admin_key)
        .env("VIEWER_KEY", viewer_key)
        .env("DEAD_ID", &dead_id)
        .env("SCREENSHOTS", root.join("target/dashboard-screenshots"))
        .output()
        .expect("run node (install Debian's nodejs package)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser run failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // Every check ran: the script prints one line per check it passed.
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok - ")).count(),
        23,
        "{stdout}"
    );
}

/// The bucket `media`: a text file in a folder, an HTML object whose key is markup and whose
/// body is a `<script>`, and more objects under `many/` than one page shows.
async fn fill_bucket(server: &Server) {
    let admin = server.admin();
    let created = admin
        .post(server.url("/v1/namespaces/default/buckets"))
        .json(&json!({"name": "media"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let mut objects = vec![
        (
            "docs/readme.txt".to_string(),
            "text/plain",
            "read me first".to_string(),
        ),
        (
            "<img src=x onerror=alert(2)>.html".to_string(),
            "text/html",
            "<script>alert(3)</script>".to_string(),
        ),
    ];
    objects.extend((0..55).map(|i| (format!("many/{i:02}.txt"), "text/plain", i.to_string())));
    for (key, content_type, body) in objects {
        // The URL parser percent-encodes the spaces and angle brackets.
        let put = admin
            .put(server.url(&format!(
                "/v1/namespaces/default/buckets/media/objects/{key}"
            )))
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200, "{key}");
    }
}

/// The store `default`: a text value holding a `<script>`, a value that is not UTF-8, and more
/// keys than one page shows.
async fn fill_store(server: &Server) {
    let mut values = vec![
        (
            "greeting".to_string(),
            b"<script>alert(4)</script>".to_vec(),
        ),
        ("blob".to_string(), vec![0x00, 0x9f, 0x92, 0x96, 0xff]),
    ];
    values.extend((0..55).map(|i| (format!("user:{i:02}"), i.to_string().into_bytes())));
    for (key, value) in values {
        let put = server
            .admin()
            .put(server.url(&format!("/v1/namespaces/default/kv/default/keys/{key}")))
            .body(value)
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 201, "{key}");
    }
}

/// The source `orders` of `probe`, on a Redis of its own: it receives one message, then the
/// broker demands a password it lacks, so the source is failing with that error when the
/// browser looks. The Redis lives as long as what this returns.
async fn failing_source(server: &Server) -> Redis {
    let redis = Redis::start().expect("a Redis of its own, to lock it");
    let mut broker = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let command = |args: &[&str]| {
        let mut command = redis::cmd(args[0]);
        command.arg(&args[1..]);
        command
    };
    // A source reads only a stream that exists, from the messages added after it was made.
    let _: String = command(&["XADD", "orders", "*", "payload", "before"])
        .query_async(&mut broker)
        .await
        .unwrap();
    server.cli_ok(&[
        "sources",
        "add",
        "orders",
        "--kind",
        "redis",
        "--url",
        &redis.url(),
        "--stream",
        "orders",
        "--function",
        "probe",
    ]);
    let _: String = command(&["XADD", "orders", "*", "payload", "after"])
        .query_async(&mut broker)
        .await
        .unwrap();
    let source_is = |wanted: fn(&Value) -> bool| async move {
        eventually(DEADLINE, || async {
            let (_, source) = server
                .get_json("/v1/namespaces/default/sources/orders")
                .await;
            if wanted(&source) {
                Ok(())
            } else {
                Err(source.to_string())
            }
        })
        .await;
    };
    source_is(|source| source["acknowledged"] == 1).await;
    let _: () = command(&["CONFIG", "SET", "requirepass", "locked"])
        .query_async(&mut broker)
        .await
        .unwrap();
    let _: u64 = command(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
        .query_async(&mut broker)
        .await
        .unwrap();
    source_is(|source| source["state"] == "failing" && source["last_error"].is_string()).await;
    redis
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// The `name=value` pairs of the cookies an answer sets.
fn cookies_set(answer: &reqwest::Response) -> Vec<String> {
    answer
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok()?.split(';').next().map(str::to_string))
        .collect()
}

/// Logs in to `node`'s dashboard with `key` as a browser would (the login form's CSRF cookie
/// and token, then the form); the `Cookie` header of the session's later requests.
async fn log_in(node: &Server, key: &str) -> String {
    let client = no_redirects();
    let form = client.get(node.url("/ui/login")).send().await.unwrap();
    let csrf_cookie = cookies_set(&form).join("; ");
    let html = form.text().await.unwrap();
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the login form carries a CSRF token");
    // Keys and tokens are URL-safe as they are.
    let answer = client
        .post(node.url("/ui/login"))
        .header(COOKIE, csrf_cookie)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("key={key}&csrf={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 303, "logging in was refused");
    cookies_set(&answer).join("; ")
}

/// The requests the dashboard's chart of `function` counts on `node`, over the last hour.
async fn charted_requests(node: &Server, session: &str, function: &str) -> Result<u64, String> {
    let answer = no_redirects()
        .get(node.url(&format!("/ui/ns/default/fn/{function}/activity?span=hour")))
        .header(COOKIE, session)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if answer.status() != 200 {
        return Err(format!("{} answered {}", node.url(""), answer.status()));
    }
    let chart: Value = answer.json().await.map_err(|e| e.to_string())?;
    Ok(chart["requests"]
        .as_array()
        .expect("requests per bucket")
        .iter()
        .filter_map(Value::as_u64)
        .sum())
}

async fn charts(node: &Server, session: &str, expected: u64) {
    eventually(DEADLINE, || async {
        match charted_requests(node, session, "hello").await? {
            seen if seen == expected => Ok(()),
            seen => Err(format!("{} charts {seen} requests", node.url(""))),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_and_the_charts_hold_across_nodes_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let mut one = ServerBuilder::new(Store::postgres(dir.path())).start();
    let two = one.second_node().start();
    one.cli_ok(&["deploy", "hello", guests_hello().as_str()]);
    let created = stdout_json(&one.cli(&[
        "keys",
        "create",
        "--role",
        "developer",
        "-n",
        "default",
        "-o",
        "json",
    ]));
    let key = created["key"].as_str().expect("a key");
    let session = log_in(&one, key).await;

    // Signed with a key both nodes derive from the shared master key, the session opened on
    // one node is good on the other, once that node has heard of the key.
    eventually(Duration::from_secs(5), || async {
        let answer = no_redirects()
            .get(two.url("/ui/ns/default"))
            .header(COOKIE, &session)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        match answer.status().as_u16() {
            200 => Ok(()),
            status => Err(format!(
                "the second node answered {status} {:?}",
                answer.headers().get(LOCATION)
            )),
        }
    })
    .await;

    // Each node's invocations are in both nodes' charts: they come from the stored records.
    for (node, calls) in [(&one, 2), (&two, 3)] {
        for _ in 0..calls {
            let answer = reqwest::get(node.url("/fn/default/hello")).await.unwrap();
            assert_eq!(answer.status(), 200);
        }
    }
    charts(&one, &session, 5).await;
    charts(&two, &session, 5).await;

    // A restarted node still knows the session and still charts what ran before.
    one.terminate();
    one.wait_exit();
    let one = one.restart().start();
    charts(&one, &session, 5).await;
}

fn guests_hello() -> String {
    crate::support::guests()
        .join("hello.wasm")
        .display()
        .to_string()
}

#[tokio::test]
async fn the_dashboard_can_be_turned_off() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[ui]\nenabled = false\n")
        .start();
    for path in ["/ui", "/ui/login", "/ui/assets/dashboard.js"] {
        let answer = no_redirects().get(server.url(path)).send().await.unwrap();
        assert_eq!(answer.status(), 404, "{path}");
    }
}
