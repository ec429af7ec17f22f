//! Namespaces, API keys and roles: the key lifecycle, invocation auth, quotas, and the table of
//! every route that names another tenant's resource against every kind of wrong key.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{DEADLINE, Server, eventually, guest, stdout_json};

/// Distinctive text in tenant b's data; no refused answer may contain it.
const B_MARKER: &str = "b-private-payload-7f3a";

fn admin_cli(server: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    stdout_json(&server.cli(&all))
}

/// Creates a key with the CLI and returns (id, key).
fn create_key(server: &Server, role: &str, namespaces: &str, extra: &[&str]) -> (String, String) {
    let mut args = vec!["keys", "create", "--role", role, "--namespace", namespaces];
    args.extend(extra);
    let created = admin_cli(server, &args);
    (
        created["id"].as_str().unwrap().to_string(),
        created["key"].as_str().unwrap().to_string(),
    )
}

async fn call(
    client: &reqwest::Client,
    server: &Server,
    method: &Method,
    path: &str,
    body: &Option<Value>,
) -> (u16, String) {
    let mut request = client.request(method.clone(), server.url(path));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn key_lifecycle_create_use_revoke_expire() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let key_file = data.path().join("admin.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_file).unwrap().permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o600,
        "admin.key is readable by its owner only"
    );

    // No key, a made-up key: 401 with a hint, never the data.
    let (status, body) = call(
        &reqwest::Client::new(),
        &server,
        &Method::GET,
        "/v1/namespaces/default/functions",
        &None,
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("Authorization: Bearer"), "{body}");
    let forged = Server::client_with_key("vireo_00112233445566778899_notthesecret");
    assert_eq!(
        call(&forged, &server, &Method::GET, "/v1/namespaces", &None)
            .await
            .0,
        401
    );

    admin_cli(&server, &["ns", "create", "team-a"]);
    let (id, key) = create_key(&server, "developer", "team-a", &["--description", "ci"]);
    assert!(key.starts_with("vireo_") && key.len() > 60, "{key}");
    let listed = admin_cli(&server, &["keys", "ls"]);
    let text = listed.to_string();
    assert!(
        text.contains(&id) && !text.contains(&key),
        "ls shows ids, never keys: {text}"
    );

    let developer = Server::client_with_key(&key);
    let deployed = server
        .deploy_with(&developer, "team-a", "hello", guest("hello"), json!({}))
        .await;
    assert_eq!(deployed.status(), 201);
    // A developer key does not reach the default namespace, nor admin routes.
    let other = server
        .deploy_with(&developer, "default", "hello", guest("hello"), json!({}))
        .await;
    assert_eq!(other.status(), 404);
    assert_eq!(
        call(&developer, &server, &Method::GET, "/v1/keys", &None)
            .await
            .0,
        403
    );

    let revoked = admin_cli(&server, &["keys", "revoke", &id]);
    assert_eq!(revoked["state"], "revoked");
    let (status, body) = call(
        &developer,
        &server,
        &Method::GET,
        "/v1/namespaces/team-a/functions",
        &None,
    )
    .await;
    assert_eq!(status, 401);
    assert!(body.contains("revoked"), "{body}");

    let (_, expiring) = create_key(&server, "viewer", "team-a", &["--expires", "1s"]);
    let viewer = Server::client_with_key(&expiring);
    assert_eq!(
        call(
            &viewer,
            &server,
            &Method::GET,
            "/v1/namespaces/team-a/functions",
            &None
        )
        .await
        .0,
        200
    );
    eventually(Duration::from_secs(10), || async {
        match call(
            &viewer,
            &server,
            &Method::GET,
            "/v1/namespaces/team-a/functions",
            &None,
        )
        .await
        {
            (401, body) if body.contains("expired") => Ok(()),
            other => Err(format!("still {other:?}")),
        }
    })
    .await;
}

#[tokio::test]
async fn another_tenants_resources_are_invisible_to_every_wrong_key() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    admin_cli(&server, &["ns", "create", "a"]);
    admin_cli(&server, &["ns", "create", "b"]);
    let (_, a_developer) = create_key(&server, "developer", "a", &[]);
    let (_, b_viewer) = create_key(&server, "viewer", "b", &[]);
    let (b_revoked_id, b_revoked) = create_key(&server, "developer", "b", &[]);
    admin_cli(&server, &["keys", "revoke", &b_revoked_id]);
    let (_, b_expired) = create_key(&server, "developer", "b", &["--expires", "1s"]);

    // Tenant b: a function that needs a key, one direct and one async invocation, a schedule.
    let admin = server.admin();
    let settings = json!({"invoke_auth": "key", "env": {"MARKER": B_MARKER}});
    let deployed = server
        .deploy_with(&admin, "b", "f", guest("probe"), settings)
        .await;
    assert_eq!(deployed.status(), 201);
    let direct = admin.get(server.url("/fn/b/f/")).send().await.unwrap();
    assert_eq!(direct.status(), 200);
    let direct_id = crate::support::invocation_id(&direct);
    let queued = admin
        .post(server.url("/fn/b/f/"))
        .header("prefer", "respond-async")
        .body(B_MARKER)
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 202);
    let async_id = crate::support::invocation_id(&queued);
    let schedule =
        json!({"function": "f", "schedule": "0 0 1 1 *", "name": "s", "payload": B_MARKER});
    let created = admin
        .post(server.url("/v1/namespaces/b/schedules"))
        .json(&schedule)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    server.invocation(&direct_id).await;
    let secret = admin
        .put(server.url("/v1/namespaces/b/secrets/TOKEN"))
        .json(&json!({"value": B_MARKER}))
        .send()
        .await
        .unwrap();
    assert_eq!(secret.status(), 201);

    let f = "/v1/namespaces/b/functions/f";
    let get = Method::GET;
    let routes: Vec<(Method, String, Option<Value>)> = vec![
        (get.clone(), "/v1/namespaces/b".into(), None),
        (get.clone(), "/v1/namespaces/b/functions".into(), None),
        (
            Method::POST,
            "/v1/namespaces/b/functions".into(),
            Some(json!({"name": "new"})),
        ),
        (get.clone(), f.into(), None),
        (get.clone(), format!("{f}/versions"), None),
        (get.clone(), format!("{f}/versions/1"), None),
        (
            Method::PUT,
            format!("{f}/aliases/prod"),
            Some(json!({"version": 1})),
        ),
        (Method::DELETE, format!("{f}/aliases/prod"), None),
        (get.clone(), format!("{f}/invocations"), None),
        (get.clone(), format!("{f}/logs"), None),
        (get.clone(), format!("{f}/queue"), None),
        (get.clone(), format!("{f}/dlq"), None),
        (
            Method::POST,
            format!("{f}/dlq/redrive"),
            Some(json!({"all": true})),
        ),
        (get.clone(), format!("{f}/retry-policy"), None),
        (
            Method::PUT,
            format!("{f}/retry-policy"),
            Some(json!({"max_attempts": 1})),
        ),
        (get.clone(), format!("/v1/invocations/{direct_id}"), None),
        (get.clone(), format!("/v1/invocations/{async_id}"), None),
        (get.clone(), "/v1/usage?namespace=b".into(), None),
        (get.clone(), "/v1/namespaces/b/schedules".into(), None),
        (get.clone(), "/v1/namespaces/b/schedules/s".into(), None),
        (
            Method::POST,
            "/v1/namespaces/b/schedules/s/pause".into(),
            None,
        ),
        (Method::DELETE, "/v1/namespaces/b/schedules/s".into(), None),
        (
            Method::PUT,
            "/v1/namespaces/b/quotas".into(),
            Some(json!({})),
        ),
        (Method::DELETE, "/v1/namespaces/b".into(), None),
        (Method::DELETE, f.into(), None),
        (get.clone(), "/fn/b/f/".into(), None),
        (Method::POST, "/fn/b/f/".into(), None),
    ];
    eventually(Duration::from_secs(10), || async {
        match call(
            &Server::client_with_key(&b_expired),
            &server,
            &get,
            "/v1/namespaces/b",
            &None,
        )
        .await
        {
            (401, _) => Ok(()),
            other => Err(format!("the 1 s key still works: {other:?}")),
        }
    })
    .await;

    let nobody = reqwest::Client::new();
    let callers = [
        ("no key", nobody),
        ("revoked key", Server::client_with_key(&b_revoked)),
        ("expired key", Server::client_with_key(&b_expired)),
        (
            "other namespace's key",
            Server::client_with_key(&a_developer),
        ),
        ("viewer key", Server::client_with_key(&b_viewer)),
    ];
    let mut checked = 0;
    for (method, path, body) in &routes {
        let is_invoke = path.starts_with("/fn/");
        let is_write = *method != Method::GET;
        for (who, client) in &callers {
            let expected = match *who {
                "no key" | "revoked key" | "expired key" => 401,
                "other namespace's key" => 404,
                // The table's last column: a viewer may read its namespace, never write it.
                _ if is_invoke => 403,
                _ if is_write => 403,
                _ => continue,
            };
            let (status, answer) = call(client, &server, method, path, body).await;
            assert_eq!(status, expected, "{who} {method} {path}: {answer}");
            assert!(
                !answer.contains(B_MARKER),
                "{who} {method} {path} leaked: {answer}"
            );
            let error: Value = serde_json::from_str(&answer)
                .unwrap_or_else(|_| panic!("{who} {method} {path}: not an error body: {answer}"));
            assert_eq!(
                error.as_object().unwrap().len(),
                1,
                "only the error: {answer}"
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "{checked} combinations checked");

    // Nothing was changed by all that: b's function, schedule and namespace are still there.
    let (status, functions) = server.get_json("/v1/namespaces/b/functions").await;
    assert_eq!(
        (status, functions["functions"].as_array().unwrap().len()),
        (200, 1)
    );
    assert_eq!(server.get_json("/v1/namespaces/b/schedules/s").await.0, 200);
    let (_, secrets) = server.get_json("/v1/namespaces/b/secrets").await;
    assert_eq!(secrets["secrets"][0]["name"], "TOKEN", "{secrets}");
    // a's key lists only a.
    let (_, listed) = call(
        &Server::client_with_key(&a_developer),
        &server,
        &get,
        "/v1/namespaces",
        &None,
    )
    .await;
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let names: Vec<&str> = listed["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ns| ns["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"]);
}

#[tokio::test]
async fn invoke_auth_key_admits_only_keys_of_the_namespace_and_hides_them_from_the_guest() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin = server.admin();
    let deployed = server
        .deploy_with(
            &admin,
            "default",
            "echo",
            guest("echo"),
            json!({"invoke_auth": "key"}),
        )
        .await;
    assert_eq!(deployed.status(), 201);
    let (_, invoker) = create_key(&server, "invoker", "default", &[]);
    let (_, viewer) = create_key(&server, "viewer", "default", &[]);

    let anonymous = reqwest::get(server.url("/fn/default/echo/")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let (status, _) = call(
        &Server::client_with_key(&viewer),
        &server,
        &Method::GET,
        "/fn/default/echo/",
        &None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, echoed) = call(
        &Server::client_with_key(&invoker),
        &server,
        &Method::GET,
        "/fn/default/echo/",
        &None,
    )
    .await;
    assert_eq!(status, 200, "{echoed}");
    assert!(
        !echoed.contains(&invoker) && !echoed.to_lowercase().contains("authorization"),
        "the guest never sees the key: {echoed}"
    );
    // An invoker key cannot read or deploy.
    let (status, _) = call(
        &Server::client_with_key(&invoker),
        &server,
        &Method::GET,
        "/v1/namespaces/default/functions",
        &None,
    )
    .await;
    assert_eq!(status, 403);

    // A public function passes a caller's own Authorization through untouched.
    server.deploy_ok("open", "echo", json!({})).await;
    let echoed: Value = reqwest::Client::new()
        .get(server.url("/fn/default/open/"))
        .header("authorization", "Bearer app-token-123")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(echoed["headers"]["authorization"], "Bearer app-token-123");
}

#[tokio::test]
async fn namespace_quotas_and_rate_limits_answer_429_then_recover() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    admin_cli(
        &server,
        &[
            "ns",
            "create",
            "small",
            "--max-functions",
            "1",
            "--max-queued",
            "1",
        ],
    );
    let admin = server.admin();
    let first = server
        .deploy_with(&admin, "small", "one", guest("hello"), json!({}))
        .await;
    assert_eq!(first.status(), 201);
    let second = server
        .deploy_with(&admin, "small", "two", guest("hello"), json!({}))
        .await;
    assert_eq!(second.status(), 429);
    assert!(second.text().await.unwrap().contains("max_functions"));

    // max_queued: the first async invocation is stored, the second refused.
    let sleepy = server
        .deploy_with(&admin, "small", "one", guest("sleep"), json!({}))
        .await;
    assert_eq!(sleepy.status(), 201);
    let accept = || {
        admin
            .post(server.url("/fn/small/one/?ms=2000"))
            .header("prefer", "respond-async")
            .send()
    };
    assert_eq!(accept().await.unwrap().status(), 202);
    assert_eq!(accept().await.unwrap().status(), 429);

    // max_kv_bytes is kept and shown with the other quotas.
    let kv_quota = admin
        .put(server.url("/v1/namespaces/small/quotas"))
        .json(&json!({"max_functions": 1, "max_queued": 1, "max_kv_bytes": 1_048_576}))
        .send()
        .await
        .unwrap();
    assert_eq!(kv_quota.status(), 200);
    let kv_quota: Value = kv_quota.json().await.unwrap();
    assert_eq!(kv_quota["quotas"]["max_kv_bytes"], 1_048_576, "{kv_quota}");
    let (_, shown) = server.get_json("/v1/namespaces/small").await;
    assert_eq!(shown["quotas"]["max_kv_bytes"], 1_048_576, "{shown}");

    // Each key gets 3 requests at once, then one per second.
    let changed = admin_cli(
        &server,
        &[
            "ns",
            "quota",
            "small",
            "--max-functions",
            "1",
            "--max-queued",
            "1",
            "--key-rate",
            "1",
            "--key-burst",
            "3",
            "--max-kv-bytes",
            "2048",
        ],
    );
    assert_eq!(changed["quotas"]["key_rate_limit"]["burst"], 3);
    assert_eq!(
        changed["quotas"]["max_kv_bytes"], 2048,
        "the CLI sets it too"
    );
    let (_, key) = create_key(&server, "developer", "small", &[]);
    let client = Server::client_with_key(&key);
    let path = "/v1/namespaces/small/functions";
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = client.get(server.url(path)).send().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let headers = response.headers();
            assert!(headers.contains_key("retry-after"));
            assert_eq!(headers["ratelimit-limit"], "3");
            assert_eq!(headers["ratelimit-remaining"], "0");
        } else {
            assert!(headers_remaining(&response).is_some());
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    // Another key has its own bucket; the admin key has its own too.
    assert_eq!(server.get_json(path).await.0, 200);
    eventually(DEADLINE, || async {
        match client
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
        {
            200 => Ok(()),
            other => Err(format!("still {other}")),
        }
    })
    .await;
}

fn headers_remaining(response: &reqwest::Response) -> Option<u32> {
    response
        .headers()
        .get("ratelimit-remaining")?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

#[tokio::test]
async fn a_function_rate_limit_holds_for_all_callers() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server
        .deploy_ok(
            "limited",
            "hello",
            json!({"rate_limit": {"per_second": 1, "burst": 2}}),
        )
        .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = reqwest::get(server.url("/fn/default/limited/"))
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            assert_eq!(response.headers()["ratelimit-limit"], "2");
            assert!(response.headers().contains_key("x-vireo-invocation-id"));
        }
    }
    assert_eq!(statuses, [200, 200, 429]);
    eventually(DEADLINE, || async {
        match reqwest::get(server.url("/fn/default/limited/"))
            .await
            .unwrap()
            .status()
            .as_u16()
        {
            200 => Ok(()),
            other => Err(format!("still {other}")),
        }
    })
    .await;
    let bad = server
        .deploy(
            "limited",
            guest("hello"),
            json!({"rate_limit": {"per_second": 0, "burst": 1}}),
        )
        .await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn a_namespace_concurrency_quota_is_shared_by_its_functions() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path())
        .config("[limits]\nqueue_timeout_ms = 300\n")
        .start();
    admin_cli(
        &server,
        &["ns", "create", "narrow", "--max-concurrency", "1"],
    );
    let admin = server.admin();
    for name in ["slow", "quick"] {
        let deployed = server
            .deploy_with(&admin, "narrow", name, guest("sleep"), json!({}))
            .await;
        assert_eq!(deployed.status(), 201);
    }
    // Two different functions: only the namespace quota can make the second wait and give up.
    let (slow, refused) = crate::support::start_holding_the_only_slot(
        &server,
        "/fn/narrow/slow/?ms=3000",
        "/fn/narrow/quick/?ms=0",
    )
    .await;
    let message = refused.text().await.unwrap();
    assert!(message.contains("max_concurrency quota of 1"), "{message}");
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    assert_eq!(
        reqwest::get(server.url("/fn/narrow/quick/?ms=0"))
            .await
            .unwrap()
            .status(),
        200
    );
}
