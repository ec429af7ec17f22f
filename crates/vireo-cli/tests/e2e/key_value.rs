//! Key-value stores through the admin API and `vireo kv`: stores managed and listed with their
//! totals, values round-tripping byte for byte, keys any UTF-8 in one path segment, paged
//! listings, the limits and the namespace quota refusing a write without storing any of it,
//! roles, and data surviving a restart.

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Server, stdout_json};

/// Limits small enough for a test to cross them.
const LIMITS: &str = "[key_value]\nmax_key_bytes = 32\nmax_value_bytes = 1024\n";

fn key_url(server: &Server, store: &str, key: &str) -> String {
    server.url(&format!(
        "/v1/namespaces/default/kv/{store}/keys/{}",
        utf8_percent_encode(key, NON_ALPHANUMERIC)
    ))
}

/// `PUT` of raw bytes with `client`; the status and the JSON answer (null if none).
async fn put(
    client: &reqwest::Client,
    server: &Server,
    store: &str,
    key: &str,
    value: &[u8],
) -> (u16, Value) {
    let response = client
        .put(key_url(server, store, key))
        .body(value.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `GET` of a value with `client`: the status and the raw body.
async fn get(client: &reqwest::Client, server: &Server, store: &str, key: &str) -> (u16, Vec<u8>) {
    let response = client
        .get(key_url(server, store, key))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    if status == 200 {
        assert_eq!(
            response.headers()[reqwest::header::CONTENT_TYPE],
            "application/octet-stream"
        );
    }
    (status, response.bytes().await.unwrap().to_vec())
}

/// The CLI's stderr, for a run that must fail.
fn cli_fails(server: &Server, args: &[&str]) -> String {
    let output = server.cli(args);
    assert!(!output.status.success(), "vireo {args:?} succeeded");
    String::from_utf8(output.stderr).unwrap()
}

fn store_named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["stores"]
        .as_array()
        .unwrap()
        .iter()
        .find(|store| store["name"] == name)
        .unwrap_or_else(|| panic!("no store {name} in {list}"))
}

#[tokio::test]
async fn stores_are_listed_with_their_totals_created_and_deleted() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());

    let (status, listed) = server.get_json("/v1/namespaces/default/kv").await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["namespace"], "default");
    assert_eq!(listed["stores"].as_array().unwrap().len(), 1, "{listed}");
    let default = store_named(&listed, "default");
    assert_eq!(
        (default["keys"].as_u64(), default["bytes"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(listed["max_kv_bytes"], Value::Null);

    let said = server.cli_ok(&["kv", "stores", "create", "sessions"]);
    assert_eq!(said, "key-value store default/sessions created\n");
    let (status, duplicate) = server
        .call(
            Method::POST,
            "/v1/namespaces/default/kv",
            Some(json!({"name": "sessions"})),
        )
        .await;
    assert_eq!(status, 409, "{duplicate}");
    assert_eq!(duplicate["error"]["code"], "conflict");
    let (status, _) = server
        .call(
            Method::POST,
            "/v1/namespaces/default/kv",
            Some(json!({"name": "default"})),
        )
        .await;
    assert_eq!(status, 409, "default always exists");

    let admin = server.admin();
    assert_eq!(
        put(&admin, &server, "sessions", "user:42", b"0123456789")
            .await
            .0,
        201
    );
    assert_eq!(
        put(&admin, &server, "sessions", "user:43", b"01234")
            .await
            .0,
        201
    );
    assert_eq!(put(&admin, &server, "default", "flag", b"on").await.0, 201);
    let listed = stdout_json(&server.cli(&["kv", "stores", "ls", "-o", "json"]));
    let sessions = store_named(&listed, "sessions");
    assert_eq!(sessions["keys"], 2, "{listed}");
    assert_eq!(
        sessions["bytes"],
        7 + 10 + 7 + 5,
        "keys and values count: {listed}"
    );
    assert_eq!(store_named(&listed, "default")["bytes"], 4 + 2);
    assert_eq!(listed["bytes_used"], 29 + 6);
    let table = server.cli_ok(&["kv", "stores", "ls"]);
    assert!(table.starts_with("STORE"), "{table}");
    assert!(
        table.contains("sessions") && table.contains("29 B"),
        "{table}"
    );
    assert!(
        table.contains("uses 35 B (no max_kv_bytes quota)"),
        "{table}"
    );

    let refused = cli_fails(&server, &["kv", "stores", "rm", "default"]);
    assert!(
        refused.contains("cannot be deleted") && refused.contains("409"),
        "{refused}"
    );
    let said = server.cli_ok(&["kv", "stores", "rm", "sessions"]);
    assert_eq!(
        said,
        "key-value store default/sessions deleted with its keys\n"
    );
    let (status, gone) = server.get_json("/v1/namespaces/default/kv").await;
    assert_eq!(status, 200);
    assert_eq!(gone["stores"].as_array().unwrap().len(), 1, "{gone}");
    assert_eq!(gone["bytes_used"], 6, "the deleted store's bytes are freed");
    assert_eq!(get(&admin, &server, "sessions", "user:42").await.0, 404);
    let (status, _) = server
        .call(Method::DELETE, "/v1/namespaces/default/kv/sessions", None)
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn keys_and_binary_values_round_trip_through_the_api_and_the_cli() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin = server.admin();

    // Through the API: set, get, replace, delete; `/`, spaces and non-ASCII stay in the key.
    for key in ["a/b", "with spaces", "ключ/ü 🙂", "user:42", "100%?#"] {
        assert_eq!(
            put(&admin, &server, "default", key, key.as_bytes()).await.0,
            201,
            "{key}"
        );
        assert_eq!(
            get(&admin, &server, "default", key).await,
            (200, key.as_bytes().to_vec())
        );
    }
    assert_eq!(
        get(&admin, &server, "default", "b").await.0,
        404,
        "a/b is not a path"
    );
    assert_eq!(
        put(&admin, &server, "default", "a/b", b"replaced").await.0,
        204
    );
    assert_eq!(get(&admin, &server, "default", "a/b").await.1, b"replaced");
    let deleted = admin
        .delete(key_url(&server, "default", "a/b"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(get(&admin, &server, "default", "a/b").await.0, 404, "gone");
    let again = admin
        .delete(key_url(&server, "default", "a/b"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404, "deleting an absent key");

    // Through the CLI, binary: every byte value, from a file and from stdin.
    let binary: Vec<u8> = (0..=255u8).cycle().take(256 * 4).collect();
    let file = data.path().join("value.bin");
    std::fs::write(&file, &binary).unwrap();
    let from_file = format!("@{}", file.display());
    let said = server.cli_ok(&["kv", "set", "default", "bin/ä ry", &from_file]);
    assert_eq!(said, "\"bin/ä ry\" created in default/default (1.0 KiB)\n");
    let got = server.cli(&["kv", "get", "default", "bin/ä ry"]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(got.stdout, binary, "the bytes come back exactly");
    assert_eq!(get(&admin, &server, "default", "bin/ä ry").await.1, binary);
    let as_json = stdout_json(&server.cli(&["kv", "get", "default", "bin/ä ry", "-o", "json"]));
    assert_eq!(as_json["key"], "bin/ä ry");
    let decoded = base64_decode(as_json["value_base64"].as_str().unwrap());
    assert_eq!(decoded, binary, "{as_json}");

    let said = server.cli_ok(&["kv", "set", "default", "bin/ä ry", &from_file]);
    assert_eq!(said, "\"bin/ä ry\" replaced in default/default (1.0 KiB)\n");
    let piped = server.cli_with_stdin(&["kv", "set", "default", "piped", "@-"], b"line\n\x00end\n");
    assert!(
        piped.status.success(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    assert_eq!(
        get(&admin, &server, "default", "piped").await.1,
        b"line\n\x00end\n"
    );

    server.cli_ok(&["kv", "set", "default", "greeting", "héllo wörld"]);
    let as_json = stdout_json(&server.cli(&["kv", "get", "default", "greeting", "-o", "json"]));
    assert_eq!(
        as_json,
        json!({"namespace": "default", "store": "default", "key": "greeting", "value": "héllo wörld"})
    );

    let said = server.cli_ok(&["kv", "rm", "default", "greeting"]);
    assert_eq!(said, "\"greeting\" deleted from default/default\n");
    let missing = cli_fails(&server, &["kv", "get", "default", "greeting"]);
    assert!(missing.contains("404"), "{missing}");
    let missing = cli_fails(&server, &["kv", "rm", "default", "greeting"]);
    assert!(missing.contains("404"), "{missing}");
    let missing = cli_fails(&server, &["kv", "get", "nope", "greeting"]);
    assert!(
        missing.contains("key-value store default/nope does not exist"),
        "{missing}"
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn listings_page_by_cursor_and_narrow_by_prefix() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin = server.admin();
    server.cli_ok(&["kv", "stores", "create", "many"]);
    let mut expected: Vec<String> = (0..250).map(|i| format!("item/{i:03}")).collect();
    for key in &expected {
        assert_eq!(put(&admin, &server, "many", key, b"x").await.0, 201);
    }
    assert_eq!(put(&admin, &server, "many", "other", b"x").await.0, 201);

    // A page, its cursor on stderr, and the pages after it.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut args = vec![
            "kv", "ls", "many", "--prefix", "item/", "--limit", "100", "-o", "json",
        ];
        if let Some(cursor) = &cursor {
            args.extend(["--cursor", cursor.as_str()]);
        }
        let output = server.cli(&args);
        let page = stdout_json(&output);
        let stderr = String::from_utf8(output.stderr).unwrap();
        pages += 1;
        seen.extend(
            page["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|key| key.as_str().unwrap().to_string()),
        );
        cursor = page["next_cursor"].as_str().map(str::to_string);
        match &cursor {
            Some(next) => assert!(stderr.contains(&format!("--cursor {next}")), "{stderr}"),
            None => assert!(stderr.is_empty(), "{stderr}"),
        }
        if cursor.is_none() {
            break;
        }
        assert!(pages < 10, "the listing does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, expected, "every key once, in order");

    let all =
        stdout_json(&server.cli(&["kv", "ls", "many", "--all", "--limit", "100", "-o", "json"]));
    expected.push("other".into());
    assert_eq!(all, json!({"keys": expected, "next_cursor": null}));

    let table = server.cli_ok(&["kv", "ls", "many", "--prefix", "item/24"]);
    assert_eq!(
        table,
        "KEY\nitem/240\nitem/241\nitem/242\nitem/243\nitem/244\nitem/245\nitem/246\nitem/247\nitem/248\nitem/249\n"
    );
    let first = server.cli(&["kv", "ls", "many"]);
    let stdout = String::from_utf8(first.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1 + 100, "the server's default page");
    assert!(String::from_utf8(first.stderr).unwrap().contains("--all"));

    let (status, bad) = server
        .get_json("/v1/namespaces/default/kv/many/keys?cursor=bm90IGEga2V5%21")
        .await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_cursor")),
        "{bad}"
    );
    let (status, _) = server
        .get_json("/v1/namespaces/default/kv/many/keys?limit=1001")
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn limits_and_the_quota_refuse_a_write_and_store_none_of_it() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::builder(data.path()).config(LIMITS).start();
    let admin = server.admin();

    let (status, refused) = put(&admin, &server, "default", "big", &[1; 1025]).await;
    assert_eq!(status, 413, "{refused}");
    assert_eq!(refused["error"]["code"], "payload_too_large");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1024 bytes"),
        "{refused}"
    );
    assert_eq!(
        get(&admin, &server, "default", "big").await.0,
        404,
        "nothing stored"
    );
    assert_eq!(
        put(&admin, &server, "default", "big", &[1; 1024]).await.0,
        201
    );

    let long_key = "k".repeat(33);
    let (status, refused) = put(&admin, &server, "default", &long_key, b"v").await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_key");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("longer than the limit of 32"),
        "{refused}"
    );
    let refused = cli_fails(&server, &["kv", "set", "default", &long_key, "v"]);
    assert!(refused.contains("400"), "{refused}");
    let (status, _) = put(&admin, &server, "default", "nul\0key", b"v").await;
    assert_eq!(status, 400);

    // 3 + 1024 bytes are stored; the quota leaves room for 100 more.
    server.cli_ok(&["ns", "quota", "default", "--max-kv-bytes", "1127"]);
    assert_eq!(
        put(&admin, &server, "default", "small", &[2; 95]).await.0,
        201
    );
    let (status, refused) = put(&admin, &server, "default", "more", &[3; 10]).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "quota_exceeded");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_kv_bytes quota of 1127"),
        "{refused}"
    );
    assert_eq!(
        get(&admin, &server, "default", "more").await.0,
        404,
        "nothing stored"
    );
    let refused = cli_fails(&server, &["kv", "set", "default", "more", "0123456789"]);
    assert!(
        refused.contains("max_kv_bytes") && refused.contains("409"),
        "{refused}"
    );
    let listed = stdout_json(&server.cli(&["kv", "stores", "ls", "-o", "json"]));
    assert_eq!(
        (
            listed["bytes_used"].as_u64(),
            listed["max_kv_bytes"].as_u64()
        ),
        (Some(1127), Some(1127))
    );
    let table = server.cli_ok(&["kv", "stores", "ls"]);
    assert!(
        table.contains("uses 1.1 KiB of its max_kv_bytes quota of 1.1 KiB"),
        "{table}"
    );
    // A write that frees space always goes through.
    assert_eq!(
        put(&admin, &server, "default", "small", &[2; 5]).await.0,
        204
    );
    assert_eq!(
        put(&admin, &server, "default", "more", &[3; 10]).await.0,
        201
    );
}

#[tokio::test]
async fn viewers_read_and_other_tenants_see_nothing() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let admin = server.admin();
    assert_eq!(
        put(&admin, &server, "default", "secret-plan", b"attack at dawn")
            .await
            .0,
        201
    );
    let viewer = server.viewer_client();

    assert_eq!(
        get(&viewer, &server, "default", "secret-plan").await.1,
        b"attack at dawn"
    );
    let listed = viewer
        .get(server.url("/v1/namespaces/default/kv/default/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    let stores = viewer
        .get(server.url("/v1/namespaces/default/kv"))
        .send()
        .await
        .unwrap();
    assert_eq!(stores.status(), 200);
    assert_eq!(
        put(&viewer, &server, "default", "secret-plan", b"x")
            .await
            .0,
        403
    );
    let deleted = viewer
        .delete(key_url(&server, "default", "secret-plan"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 403);
    let created = viewer
        .post(server.url("/v1/namespaces/default/kv"))
        .json(&json!({"name": "mine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 403);
    assert_eq!(
        get(&admin, &server, "default", "secret-plan").await.1,
        b"attack at dawn"
    );

    let other = server.developer_key_for_new_namespace("other");
    let other = Server::client_with_key(&other);
    for (method, path) in [
        (Method::GET, "/v1/namespaces/default/kv".to_string()),
        (
            Method::GET,
            "/v1/namespaces/default/kv/default/keys".to_string(),
        ),
        (
            Method::DELETE,
            "/v1/namespaces/default/kv/default".to_string(),
        ),
    ] {
        let answer = other
            .request(method.clone(), server.url(&path))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{method} {path}");
        let body = answer.text().await.unwrap();
        assert!(!body.contains("secret-plan"), "{body}");
    }
    let (status, body) = get(&other, &server, "default", "secret-plan").await;
    assert_eq!(status, 404);
    assert!(!String::from_utf8_lossy(&body).contains("dawn"));
    assert_eq!(
        put(&other, &server, "default", "secret-plan", b"mine now")
            .await
            .0,
        404
    );
    assert_eq!(
        get(&admin, &server, "default", "secret-plan").await.1,
        b"attack at dawn"
    );
    // Its own namespace has its own default store, empty.
    let own = other
        .get(server.url("/v1/namespaces/other/kv/default/keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        own.json::<Value>().await.unwrap(),
        json!({"keys": [], "next_cursor": null})
    );
}

#[tokio::test]
async fn data_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path());
    server.cli_ok(&["kv", "stores", "create", "kept"]);
    let binary: Vec<u8> = (0..=255u8).rev().collect();
    assert_eq!(
        put(&server.admin(), &server, "kept", "k/1", &binary)
            .await
            .0,
        201
    );
    server.terminate();
    assert!(server.wait_exit().success());

    let server = server.restart().start();
    assert_eq!(
        get(&server.admin(), &server, "kept", "k/1").await,
        (200, binary)
    );
    let listed = stdout_json(&server.cli(&["kv", "stores", "ls", "-o", "json"]));
    assert_eq!(store_named(&listed, "kept")["keys"], 1, "{listed}");
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_stores() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.cli_ok(&["ns", "create", "brief"]);
    server.cli_ok(&["-n", "brief", "kv", "stores", "create", "notes"]);
    server.cli_ok(&["-n", "brief", "kv", "set", "notes", "k", "v"]);
    server.cli_ok(&["-n", "brief", "kv", "set", "default", "k", "v"]);
    server.cli_ok(&["ns", "rm", "brief"]);
    let missing = cli_fails(&server, &["-n", "brief", "kv", "stores", "ls"]);
    assert!(
        missing.contains("namespace brief does not exist"),
        "{missing}"
    );

    server.cli_ok(&["ns", "create", "brief"]);
    let listed = stdout_json(&server.cli(&["-n", "brief", "kv", "stores", "ls", "-o", "json"]));
    assert_eq!(listed["stores"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["bytes_used"], 0, "{listed}");
    let gone = cli_fails(&server, &["-n", "brief", "kv", "get", "default", "k"]);
    assert!(gone.contains("404"), "{gone}");
}
