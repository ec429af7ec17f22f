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

#[tokio::test]
async fn a_command_without_a_key_says_where_it_looked_and_what_to_pass() {
    let data = tempfile::tempdir().unwrap();
    let server = crate::support::Server::start(data.path());
    let elsewhere = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(["ls"])
        .env("VIREO_URL", &server.url)
        .env("VIREO_DATA", elsewhere.path())
        .env_remove("VIREO_API_KEY")
        .output()
        .expect("run vireo");
    assert!(!output.status.success());
    let said = String::from_utf8(output.stderr).unwrap();
    let looked = elsewhere.path().join("admin.key");
    assert!(
        said.contains(&format!(
            "no API key was sent: pass --api-key KEY or set VIREO_API_KEY and there is no {}",
            looked.display()
        )),
        "{said}"
    );
}
