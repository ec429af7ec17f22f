//! Deploy, invoke, versions and aliases, and every deploy rejection.

use serde_json::{Value, json};

use crate::support::{Server, guest, guests, invocation_id, raw_status};

/// The `wait` example (the overload bench's function) answers after the time it is asked for.
#[tokio::test]
async fn the_wait_example_waits_as_asked() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("wait", "wait", json!({})).await;
    for (query, body, at_least_us) in [
        ("?ms=50", "waited 50 ms\n", 50_000),
        ("", "waited 20 ms\n", 20_000),
    ] {
        let response = reqwest::get(server.url(&format!("/fn/default/wait/{query}")))
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let id = invocation_id(&response);
        assert_eq!(response.text().await.unwrap(), body);
        let record = server.invocation(&id).await;
        assert!(
            record["duration_us"].as_u64().unwrap() >= at_least_us,
            "the guest ran for at least the time asked: {record}"
        );
    }
}

#[tokio::test]
async fn deployed_function_answers_with_its_bytes_and_sees_the_request() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let version = server.deploy_ok("hello", "hello", json!({})).await;
    assert_eq!(version["version"], 1);
    assert_eq!(version["settings"]["memory_mib"], 128);
    assert_eq!(version["settings"]["timeout_ms"], 10_000);

    let response = reqwest::get(server.url("/fn/default/hello/some/path?x=1"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    invocation_id(&response);
    assert_eq!(response.text().await.unwrap(), "Hello, Vireo!\n");

    server
        .deploy_ok("echo", "echo", json!({"env": {"GREETING": "hi"}}))
        .await;
    let response = reqwest::Client::new()
        .put(server.url("/fn/default/echo/a/b?q=2&r=3"))
        .header("x-custom", "yes")
        .header("connection", "keep-alive")
        .body("payload bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["method"], "PUT");
    assert_eq!(seen["path"], "/a/b");
    assert_eq!(seen["query"], "q=2&r=3");
    assert_eq!(seen["headers"]["x-custom"], "yes");
    assert!(
        seen["headers"].get("connection").is_none(),
        "hop-by-hop header reached the guest: {seen}"
    );
    assert_eq!(seen["body"], "payload bytes");
    assert_eq!(seen["env"], json!({"GREETING": "hi"}));

    // The same bytes and settings again do not make a new version.
    let again = server.deploy("hello", guest("hello"), json!({})).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        (again["version"].clone(), again["created"].clone()),
        (json!(1), json!(false))
    );

    let missing = reqwest::get(server.url("/fn/default/missing/"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    invocation_id(&missing);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let (status, openapi) = server.get_json("/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        openapi["paths"]["/v1/namespaces/{namespace}/functions/{function}/versions"]["post"]
            .is_object()
    );
}

#[tokio::test]
async fn versions_and_aliases_route_to_the_right_version() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("app", "hello", json!({})).await;
    let v2 = server.deploy_ok("app", "echo", json!({})).await;
    assert_eq!(v2["version"], 2);

    let body = |path: &'static str| {
        let url = server.url(path);
        async move {
            let response = reqwest::get(url).await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert!(
        body("/fn/default/app/").await.1.contains("\"method\""),
        "latest is the echo version"
    );
    assert_eq!(body("/fn/default/app@1/").await.1, "Hello, Vireo!\n");
    assert!(body("/fn/default/app@latest/x").await.1.contains("\"/x\""));
    assert_eq!(body("/fn/default/app@9/").await.0, 404);
    assert_eq!(body("/fn/default/app@prod/").await.0, 404);

    let client = server.admin();
    let alias = |name: &str, version: u32| {
        client
            .put(server.url(&format!(
                "/v1/namespaces/default/functions/app/aliases/{name}"
            )))
            .json(&json!({"version": version}))
            .send()
    };
    let set = alias("prod", 1).await.unwrap();
    assert_eq!(set.status(), 200);
    assert_eq!(
        set.json::<Value>().await.unwrap()["aliases"],
        json!({"latest": 2, "prod": 1})
    );
    assert_eq!(body("/fn/default/app@prod/").await.1, "Hello, Vireo!\n");
    assert_eq!(alias("latest", 1).await.unwrap().status(), 400);
    assert_eq!(alias("7", 1).await.unwrap().status(), 400);
    assert_eq!(alias("canary", 5).await.unwrap().status(), 404);

    let delete = client
        .delete(server.url("/v1/namespaces/default/functions/app/aliases/prod"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
    assert_eq!(body("/fn/default/app@prod/").await.0, 404);

    let (_, versions) = server
        .get_json("/v1/namespaces/default/functions/app/versions")
        .await;
    let numbers: Vec<u64> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2]);

    let delete = client
        .delete(server.url("/v1/namespaces/default/functions/app"))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 204);
    assert_eq!(body("/fn/default/app/").await.0, 404);
    assert_eq!(
        server
            .get_json("/v1/namespaces/default/functions/app")
            .await
            .0,
        404
    );
}

#[tokio::test]
async fn bad_deploys_are_rejected_with_a_message_naming_the_problem() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let cases: [(&str, Vec<u8>, Value, u16, &str); 11] = [
        (
            "junk",
            b"definitely not wasm".to_vec(),
            json!({}),
            422,
            "not a WebAssembly component",
        ),
        (
            "core",
            b"\0asm\x01\0\0\0".to_vec(),
            json!({}),
            422,
            "core WebAssembly module",
        ),
        (
            "cli",
            guest("cli-command"),
            json!({}),
            422,
            "does not export `wasi:http/incoming-handler@0.2.x`",
        ),
        (
            "importer",
            guest("missing-import"),
            json!({}),
            422,
            "`acme:missing/api@1.0.0`",
        ),
        // The imports are told before the settings.
        (
            "importer-with-bad-settings",
            guest("missing-import"),
            json!({"allowed_outbound_hosts": ["redis://cache.example.com:6379"]}),
            422,
            "`acme:missing/api@1.0.0`",
        ),
        (
            "spin-sdk",
            guest("spin-import"),
            json!({}),
            422,
            "imports `fermyon:spin/llm@2.0.0`, which Vireo does not implement yet",
        ),
        (
            "unknown-even-if-allowed",
            guest("missing-import"),
            json!({"allow_unimplemented_imports": true}),
            422,
            "`acme:missing/api@1.0.0`, which Vireo does not provide",
        ),
        (
            "Bad_Name",
            guest("hello"),
            json!({}),
            400,
            "[a-z0-9][a-z0-9-]{0,62}",
        ),
        (
            "big-memory",
            guest("hello"),
            json!({"memory_mib": 100000}),
            400,
            "memory_mib",
        ),
        (
            "typo",
            guest("hello"),
            json!({"memroy_mib": 1}),
            400,
            "unknown field",
        ),
        (
            "no-time",
            guest("hello"),
            json!({"timeout_ms": 0}),
            400,
            "timeout_ms",
        ),
    ];
    for (name, bytes, settings, status, message) in cases {
        let response = server.deploy(name, bytes, settings).await;
        let got = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(got, status, "{name}: {body}");
        let text = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            text.contains(message),
            "{name}: {text:?} should contain {message:?}"
        );
    }
    let (_, list) = server.get_json("/v1/namespaces/default/functions").await;
    assert_eq!(
        list["functions"],
        json!([]),
        "no rejected deploy left a function behind"
    );
    assert!(
        std::fs::read_dir(data.path().join("artifacts"))
            .unwrap()
            .next()
            .is_none(),
        "rejected artifacts are removed"
    );

    let head = format!(
        "POST /v1/namespaces/default/functions/huge/versions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: {}\r\n\r\n",
        server.admin_key,
        60 << 20
    );
    assert_eq!(
        raw_status(&server.address(), &head, vec![b'x'; 1 << 20]),
        413
    );
    let response = server.deploy("nowhere", guest("hello"), json!({})).await;
    assert_eq!(
        response.status(),
        201,
        "the server still works after the oversized upload"
    );
}

/// `vireo serve --deploy NAME=FILE` deploys the file into `default` at start; starting again with
/// the same file keeps its version.
#[tokio::test]
async fn components_named_at_start_are_deployed_once() {
    let data = tempfile::tempdir().unwrap();
    let components = tempfile::tempdir().unwrap();
    let file = components.path().join("hello.wasm");
    std::fs::write(&file, guest("hello")).unwrap();
    let deploy = format!("hello={}", file.display());
    let path = "/v1/namespaces/default/functions/hello";
    for start in ["first", "again"] {
        let server = Server::builder(data.path())
            .args(&["--deploy", &deploy])
            .start();
        let answer = reqwest::get(server.url("/fn/default/hello")).await.unwrap();
        assert_eq!(answer.status(), 200, "{start} start");
        let (status, function) = server.get_json(path).await;
        assert_eq!(status, 200, "{function}");
        assert_eq!(function["latest_version"], 1, "{start} start: {function}");
    }
}

#[tokio::test]
async fn a_redeploy_keeps_the_latest_settings_unless_told_otherwise() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let guarded = json!({"invoke_auth": "key", "rate_limit": {"per_second": 5, "burst": 10}, "memory_mib": 64});
    server.deploy_ok("app", "hello", guarded).await;
    let deploy = |file: &str, flags: &[&str]| {
        let file = guests().join(file);
        let mut args = vec!["deploy", "app", file.to_str().unwrap()];
        args.extend_from_slice(flags);
        let output = server.cli(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let server = &server;
    let settings = |version: u32| async move {
        let url = format!("/v1/namespaces/default/functions/app/versions/{version}");
        server.get_json(&url).await.1["settings"].clone()
    };

    // A plain redeploy of other bytes: a new version, nothing weakened, nothing to report.
    let said = deploy("echo.wasm", &[]);
    assert!(
        said.starts_with("deployed default/app version 2\nhttp://"),
        "{said}"
    );
    let second = settings(2).await;
    assert_eq!(
        (
            &second["invoke_auth"],
            &second["rate_limit"],
            &second["memory_mib"]
        ),
        (
            &json!("key"),
            &json!({"per_second": 5, "burst": 10}),
            &json!(64)
        )
    );
    let anonymous = reqwest::get(server.url("/fn/default/app/")).await.unwrap();
    assert_eq!(anonymous.status(), 401, "still only for keys");

    // A flag changes what it names and says so; the rest stays.
    let said = deploy("hello.wasm", &["--memory", "256"]);
    assert!(
        said.contains("version 3\n  memory_mib: 64 → 256\n"),
        "{said}"
    );
    assert_eq!(settings(3).await["invoke_auth"], "key");

    // --reset-settings starts from the defaults, and the changes are listed.
    let said = deploy("echo.wasm", &["--reset-settings"]);
    assert!(said.contains("version 4\n"), "{said}");
    assert!(
        said.contains("  invoke_auth: \"key\" → \"public\"\n"),
        "{said}"
    );
    assert!(said.contains("  memory_mib: 256 → 128\n"), "{said}");
    let fourth = settings(4).await;
    assert_eq!(
        (
            &fourth["invoke_auth"],
            &fourth["rate_limit"],
            &fourth["memory_mib"]
        ),
        (&json!("public"), &Value::Null, &json!(128))
    );
}

#[tokio::test]
async fn config_makes_a_version_with_new_settings_and_the_same_component() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let first = server
        .deploy_ok("app", "hello", json!({"invoke_auth": "key"}))
        .await;

    let output = server.cli(&["config", "app", "--memory", "256", "--env", "MODE=fast"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let said = String::from_utf8(output.stdout).unwrap();
    assert!(
        said.starts_with("deployed default/app version 2\n"),
        "{said}"
    );
    assert!(said.contains("  memory_mib: 128 → 256\n"), "{said}");
    let (_, second) = server
        .get_json("/v1/namespaces/default/functions/app/versions/2")
        .await;
    assert_eq!(second["component_sha256"], first["component_sha256"]);
    assert_eq!(
        (
            &second["settings"]["memory_mib"],
            &second["settings"]["invoke_auth"]
        ),
        (&json!(256), &json!("key"))
    );
    assert_eq!(second["settings"]["env"], json!({"MODE": "fast"}));

    // The same settings again change nothing.
    let again = server.cli(&["config", "app", "--memory", "256", "--env", "MODE=fast"]);
    let said = String::from_utf8(again.stdout).unwrap();
    assert!(
        said.starts_with("unchanged default/app version 2"),
        "{said}"
    );

    // A function without a version has no component to keep.
    let missing = server.cli(&["config", "nothing", "--memory", "256"]);
    assert!(!missing.status.success());
    let refused = String::from_utf8_lossy(&missing.stderr);
    assert!(
        refused.contains("has no version whose component"),
        "{refused}"
    );
}

#[tokio::test]
async fn every_setting_can_be_given_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("app", "hello", json!({})).await;
    let config = |flags: &[&str]| {
        let mut args = vec!["config", "app"];
        args.extend_from_slice(flags);
        server.cli(&args)
    };
    let succeeded = |output: std::process::Output| {
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };

    let said = succeeded(config(&[
        "--invoke-auth",
        "key",
        "--rate-limit",
        "1:1",
        "--cors-origin",
        "https://app.example.com",
    ]));
    assert!(
        said.contains("  invoke_auth: \"public\" → \"key\"\n"),
        "{said}"
    );
    let (_, second) = server
        .get_json("/v1/namespaces/default/functions/app/versions/2")
        .await;
    assert_eq!(
        second["settings"]["rate_limit"],
        json!({"per_second": 1, "burst": 1})
    );
    assert_eq!(
        second["settings"]["cors"]["allow_origins"],
        json!(["https://app.example.com"])
    );
    let anonymous = reqwest::get(server.url("/fn/default/app/")).await.unwrap();
    assert_eq!(anonymous.status(), 401, "only keys may invoke now");

    // A settings file gives many at once; `none` removes a limit.
    let file = data.path().join("settings.json");
    std::fs::write(&file, r#"{"memory_mib": 64, "invoke_auth": "public"}"#).unwrap();
    succeeded(config(&[
        "--settings",
        file.to_str().unwrap(),
        "--rate-limit",
        "none",
        "--cors-origin",
        "none",
    ]));
    let (_, third) = server
        .get_json("/v1/namespaces/default/functions/app/versions/3")
        .await;
    let settings = &third["settings"];
    assert_eq!(
        (
            &settings["memory_mib"],
            &settings["invoke_auth"],
            &settings["rate_limit"],
            &settings["cors"]
        ),
        (&json!(64), &json!("public"), &Value::Null, &Value::Null)
    );
    let anonymous = reqwest::get(server.url("/fn/default/app/")).await.unwrap();
    assert_eq!(anonymous.status(), 200, "public again");

    // A misspelt field in the file is named, and no version is made.
    std::fs::write(&file, r#"{"memroy_mib": 64}"#).unwrap();
    let refused = config(&["--settings", file.to_str().unwrap()]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("unknown field `memroy_mib`"), "{said}");
    let (_, function) = server
        .get_json("/v1/namespaces/default/functions/app")
        .await;
    assert_eq!(function["latest_version"], 3);
}

#[tokio::test]
async fn describe_shows_a_function_at_a_glance() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.deploy_ok("app", "hello", json!({})).await;
    server
        .deploy_ok("app", "hello", json!({"memory_mib": 64}))
        .await;
    let ok = |args: &[&str]| server.cli_ok(args);
    ok(&["alias", "app", "prod", "1"]);
    ok(&[
        "cron",
        "add",
        "app@prod",
        "--schedule",
        "0 0 * * *",
        "--name",
        "nightly",
    ]);
    let answer = reqwest::get(server.url("/fn/default/app/")).await.unwrap();
    assert_eq!(answer.text().await.unwrap(), "Hello, Vireo!\n");

    let described: Value = serde_json::from_str(&ok(&["describe", "app", "-o", "json"])).unwrap();
    assert_eq!(described["url"], format!("{}/fn/default/app", server.url));
    let versions: Vec<(u64, u64)> = described["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["settings"]["memory_mib"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, [(2, 64), (1, 128)], "latest's and prod's");
    assert_eq!(described["schedules"][0]["name"], "nightly");
    let recent = crate::support::eventually(crate::support::DEADLINE, || {
        let said = ok(&["describe", "app"]);
        async move {
            if said.contains("recent invocations, newest first (0 of these 1 did not end ok)") {
                Ok(said)
            } else {
                Err(said)
            }
        }
    })
    .await;
    assert!(recent.contains("\nversion 1 (prod): "), "{recent}");
    assert!(recent.contains("  memory_mib: 64\n"), "{recent}");
    assert!(recent.contains("nightly  app@prod"), "{recent}");
}

#[tokio::test]
async fn unimplemented_imports_may_be_linked_as_traps_when_the_version_asks() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let file = guests().join("spin_import.wasm");
    let said = server.cli_ok(&[
        "deploy",
        "sdk",
        file.to_str().unwrap(),
        "--allow-unimplemented-imports",
    ]);
    assert!(
        said.contains("  linked as traps (a call fails): fermyon:spin/llm@2.0.0\n"),
        "{said}"
    );

    // Never called: it runs; called: the trap fails that invocation alone.
    let uncalled = reqwest::get(server.url("/fn/default/sdk/")).await.unwrap();
    assert_eq!(uncalled.status(), 200);
    assert_eq!(uncalled.text().await.unwrap(), "never called");
    let called = reqwest::get(server.url("/fn/default/sdk/call"))
        .await
        .unwrap();
    assert_eq!(called.status(), 500);
    let id = crate::support::invocation_id(&called);
    let record = server.invocation(&id).await;
    assert_eq!(record["status"], "error", "{record}");
    let error = record["error"].as_str().unwrap();
    assert!(error.contains("fermyon:spin/llm"), "{record}");
    let again = reqwest::get(server.url("/fn/default/sdk/")).await.unwrap();
    assert_eq!(again.status(), 200, "the function keeps serving");
}
