//! Mistakes a new user makes get an answer that says what to do, before anything is sent.

use std::process::Command;

/// `vireo ARGS…` against a server nobody runs; its stderr, after it failed.
fn refused(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(args)
        .env("VIREO_URL", "http://127.0.0.1:9")
        .env("VIREO_API_KEY", "vk_unused")
        .output()
        .expect("run vireo");
    assert!(!output.status.success(), "vireo {args:?} succeeded");
    String::from_utf8(output.stderr).unwrap()
}

#[test]
fn each_common_mistake_is_answered_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().to_str().unwrap();
    let said = refused(&["deploy", "hello", project]);
    assert!(
        said.contains("is a directory: pass the component's .wasm file, e.g.")
            && said.contains("target/wasm32-wasip2/release/hello.wasm"),
        "{said}"
    );

    let said = refused(&["--server", "127.0.0.1:8080", "ls"]);
    assert!(
        said.contains("it needs a scheme, e.g. http://127.0.0.1:8080"),
        "{said}"
    );

    let said = refused(&["dlq", "redrive", "hello"]);
    assert!(said.contains("<--id <ID>|--all>"), "{said}");

    let said = refused(&["keys", "create", "--role", "developer"]);
    assert!(said.contains("add -n NS"), "{said}");
    assert!(
        !said.contains("cannot reach"),
        "refused before any request: {said}"
    );
}

/// `vireo ls` against `server` without a key, with `data` as the data directory: its stderr.
fn refused_without_a_key(server: &crate::support::Server, data: &std::path::Path) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(["ls"])
        .env("VIREO_URL", &server.url)
        .env("VIREO_DATA", data)
        .env("XDG_CONFIG_HOME", data.join("cli-config"))
        .env_remove("VIREO_API_KEY")
        .env_remove("VIREO_PROFILE")
        .output()
        .expect("run vireo");
    assert!(!output.status.success());
    String::from_utf8(output.stderr).unwrap()
}

#[tokio::test]
async fn a_command_without_a_key_says_where_it_looked_and_what_to_pass() {
    let data = tempfile::tempdir().unwrap();
    let server = crate::support::Server::start(data.path());
    let elsewhere = tempfile::tempdir().unwrap();
    let said = refused_without_a_key(&server, elsewhere.path());
    assert!(
        said.contains(&format!(
            "no API key was sent: pass --api-key KEY, set VIREO_API_KEY or save one with `vireo \
             login --server URL` (no profile in {}; no server runs with the data directory {}",
            elsewhere
                .path()
                .join("cli-config/vireo/profiles.toml")
                .display(),
            elsewhere.path().display()
        )),
        "{said}"
    );
}

#[tokio::test]
async fn the_local_admin_key_goes_only_to_the_server_that_wrote_it() {
    let first_data = tempfile::tempdir().unwrap();
    let first = crate::support::Server::start(first_data.path());
    let second_data = tempfile::tempdir().unwrap();
    let second = crate::support::Server::start(second_data.path());

    // The first server's data directory, but the second server's port: nothing is sent.
    let said = refused_without_a_key(&second, first_data.path());
    assert!(
        said.contains(&format!(
            "; the local admin key in {} belongs to the server on {})",
            first_data.path().join("admin.key").display(),
            first.address()
        )),
        "{said}"
    );
    assert!(!said.contains("not valid"), "the key was not sent: {said}");
    // Its own server gets it.
    assert!(first.cli_ok(&["ls"]).contains("NAME"));
}
/// `vireo ARGS…` against `server` with `key`: (succeeded, stdout, stderr).
fn with_key(server: &crate::support::Server, key: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(args)
        .env("VIREO_URL", &server.url)
        .env("VIREO_API_KEY", key)
        .env_remove("VIREO_NAMESPACE")
        .output()
        .expect("run vireo");
    (
        output.status.success(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[tokio::test]
async fn a_key_used_outside_its_namespaces_is_told_which_to_pass() {
    let data = tempfile::tempdir().unwrap();
    let server = crate::support::Server::start(data.path());
    let admin = server.admin_key.clone();
    let developer = &server.developer_key_for_new_namespace("team");

    let (ok, _, said) = with_key(&server, developer, &["ls"]);
    assert!(!ok);
    assert!(
        said.contains("the only namespace this API key can use is team: pass -n team"),
        "{said}"
    );
    assert!(with_key(&server, developer, &["ls", "-n", "team"]).0);

    // A namespace that exists for nobody: the admin key is shown the ones there are.
    let (_, _, said) = with_key(&server, &admin, &["ls", "-n", "nope"]);
    assert!(
        said.contains("the namespaces this API key can use are default, team"),
        "{said}"
    );
    // A function missing from a namespace the key uses: no hint, it is the function.
    let (_, _, said) = with_key(&server, developer, &["versions", "nothing", "-n", "team"]);
    assert!(
        said.contains("does not exist") && !said.contains("pass -n"),
        "{said}"
    );
}

#[tokio::test]
async fn invoke_says_the_servers_error_once_and_a_functions_answer_is_its_output() {
    let data = tempfile::tempdir().unwrap();
    let server = crate::support::Server::start(data.path());
    server
        .deploy_ok("echo", "echo", serde_json::json!({}))
        .await;
    let admin = server.admin_key.clone();

    let (ok, stdout, stderr) = with_key(&server, &admin, &["invoke", "nothing"]);
    assert!(!ok);
    assert_eq!(stdout, "", "Vireo's error is not the function's output");
    assert_eq!(
        stderr
            .matches("function default/nothing does not exist")
            .count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .any(|line| line
                == "error: function default/nothing does not exist (HTTP 404 Not Found)"),
        "on a line of its own: {stderr}"
    );

    let (ok, stdout, stderr) = with_key(
        &server,
        &admin,
        &["invoke", "echo", "--path", "/?status=503"],
    );
    assert!(!ok);
    let answer: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        answer["query"], "status=503",
        "the function's answer is printed"
    );
    assert!(
        stderr.contains("error: echo answered HTTP 503 Service Unavailable"),
        "{stderr}"
    );
}
