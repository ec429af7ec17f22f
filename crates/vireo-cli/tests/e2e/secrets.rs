//! Secrets: set from stdin, granted to functions as environment variables, changed and deleted
//! while functions are warm, refused when missing at deploy, and never in clear on disk.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Server, guest, guests, stdout_json};

/// What the `echo` fixture saw in its environment.
async fn env_of(server: &Server, function: &str) -> Value {
    let response = reqwest::get(server.url(&format!("/fn/default/{function}/")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "invoking {function}");
    let seen: Value = response.json().await.unwrap();
    seen["env"].clone()
}

pub(crate) fn set_secret(server: &Server, secret: &str, input: &str) -> String {
    let output = server.cli_with_stdin(&["secrets", "set", secret], input.as_bytes());
    assert!(
        output.status.success(),
        "secrets set {secret}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Deploys `echo` through the CLI, granted `DB_PASSWORD`; instance reuse keeps an instance
/// (with its environment) between requests, so a change must reach past it.
fn deploy_granted(server: &Server, function: &str) {
    let file = guests().join("echo.wasm");
    let output = server.cli(&[
        "deploy",
        function,
        file.to_str().unwrap(),
        "--secret",
        "DB_PASSWORD",
        "--env",
        "PLAIN=1",
        "--instance-reuse",
        "10",
    ]);
    assert!(
        output.status.success(),
        "deploy {function}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn granted_functions_see_secrets_and_every_change_at_once() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());

    let said = set_secret(&server, "default/DB_PASSWORD", "first-value\n");
    assert_eq!(said, "secret default/DB_PASSWORD created\n");
    let listed = stdout_json(&server.cli(&["secrets", "ls", "default", "-o", "json"]));
    assert_eq!(listed["secrets"][0]["name"], "DB_PASSWORD");
    assert!(!listed.to_string().contains("first-value"), "{listed}");
    let table = server.cli(&["secrets", "ls"]);
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(
        table.starts_with("NAME") && table.contains("DB_PASSWORD"),
        "{table}"
    );
    assert!(!table.contains("first-value"), "{table}");

    deploy_granted(&server, "granted");
    server
        .deploy_ok("plain", "echo", json!({"env": {"PLAIN": "1"}}))
        .await;
    assert_eq!(
        env_of(&server, "granted").await,
        json!({"DB_PASSWORD": "first-value", "PLAIN": "1"}),
        "the granted secret joins env, newline stripped"
    );
    assert_eq!(env_of(&server, "plain").await, json!({"PLAIN": "1"}));

    // The version view shows the grant, never the value.
    let (status, versions) = server
        .call(
            Method::GET,
            "/v1/namespaces/default/functions/granted/versions",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        versions["versions"][0]["settings"]["secrets"],
        json!(["DB_PASSWORD"])
    );
    assert!(!versions.to_string().contains("first-value"));

    // The warm version (and its kept instance) see the new value on the next invocation.
    let said = set_secret(&server, "DB_PASSWORD", "second-value");
    assert_eq!(said, "secret default/DB_PASSWORD updated\n");
    assert_eq!(
        env_of(&server, "granted").await["DB_PASSWORD"],
        "second-value"
    );

    let removed = server.cli(&["secrets", "rm", "default/DB_PASSWORD"]);
    assert_eq!(
        String::from_utf8(removed.stdout).unwrap(),
        "secret default/DB_PASSWORD deleted\n"
    );
    let listed = stdout_json(&server.cli(&["secrets", "ls", "-o", "json"]));
    assert_eq!(listed, json!({"secrets": []}));
    let failed = reqwest::get(server.url("/fn/default/granted/"))
        .await
        .unwrap();
    assert_eq!(
        failed.status(),
        503,
        "a version whose secret is gone cannot load"
    );
    let failed: Value = failed.json().await.unwrap();
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("secret default/DB_PASSWORD granted to this version does not exist"),
        "{failed}"
    );
    let again = server.cli(&["secrets", "rm", "default/DB_PASSWORD"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("does not exist"));
}

#[tokio::test]
async fn bad_secrets_and_grants_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let put = |path: &'static str, value: Value| {
        server.call(Method::PUT, path, Some(json!({"value": value})))
    };

    let (status, body) = put("/v1/namespaces/default/secrets/db-password", json!("v")).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("letters, digits and _")
    );
    let (status, _) = put("/v1/namespaces/nowhere/secrets/TOKEN", json!("v")).await;
    assert_eq!(status, 404);
    let (status, body) = put("/v1/namespaces/default/secrets/TOKEN", json!("")).await;
    assert_eq!(status, 400, "{body}");
    let oversized = "x".repeat(64 * 1024 + 1);
    let (status, _) = put("/v1/namespaces/default/secrets/TOKEN", json!(oversized)).await;
    assert_eq!(status, 413);
    let (status, _) = put("/v1/namespaces/default/secrets/TOKEN", json!("v")).await;
    assert_eq!(status, 201);
    let (status, _) = put("/v1/namespaces/default/secrets/TOKEN", json!("w")).await;
    assert_eq!(status, 204, "a replacement");
    let (status, _) = server
        .call(
            Method::DELETE,
            "/v1/namespaces/default/secrets/ABSENT",
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = server
        .call(Method::GET, "/v1/namespaces/nowhere/secrets", None)
        .await;
    assert_eq!(status, 404);

    let empty = server.cli_with_stdin(&["secrets", "set", "TOKEN"], b"\n");
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("must not be empty"));

    let response = server
        .deploy(
            "greedy",
            guest("echo"),
            json!({"secrets": ["TOKEN", "MISSING_ONE"]}),
        )
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("do not exist in namespace default: MISSING_ONE"),
        "{message}"
    );
    let response = server
        .deploy(
            "clash",
            guest("echo"),
            json!({"secrets": ["TOKEN"], "env": {"TOKEN": "x"}}),
        )
        .await;
    assert_eq!(response.status(), 400, "a name in env and secrets");
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn values_are_never_on_disk_in_clear_and_the_key_file_is_private() {
    const VALUE: &str = "at-rest-check-5f0c1d2e-value";
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path());
    set_secret(&server, "default/DB_PASSWORD", VALUE);
    deploy_granted(&server, "granted");
    assert_eq!(env_of(&server, "granted").await["DB_PASSWORD"], VALUE);
    server.terminate();
    assert!(server.wait_exit().success());

    let key_file = data.path().join("master.key");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let files = files_under(data.path());
    assert!(files.iter().any(|f| f.ends_with("vireo.db")), "{files:?}");
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        assert!(
            !bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()),
            "{} holds the secret in clear",
            file.display()
        );
    }

    // The key survives a restart, so the stored value still opens.
    let mut server = Server::start(data.path());
    assert_eq!(env_of(&server, "granted").await["DB_PASSWORD"], VALUE);
    server.terminate();
    assert!(server.wait_exit().success());

    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = Server::builder(data.path()).start_fails();
    assert!(refused.contains("chmod 600"), "{refused}");
}
