//! Configuration variables: text or bound to a secret, read by a guest through
//! `wasi:config/store` and `fermyon:spin/variables` alike.

use serde_json::{Value, json};

use crate::secrets::set_secret;
use crate::support::{DEADLINE, Server, eventually, guests};

/// What the `config` fixture says of the variable `name`.
async fn read(server: &Server, name: &str) -> String {
    let response = reqwest::get(server.url(&format!("/fn/default/cfg/?name={name}")))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

#[tokio::test]
async fn variables_reach_both_interfaces_and_secret_bound_ones_stay_sealed() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    set_secret(&server, "default/DB_PASSWORD", "first-password");
    let file = guests().join("config.wasm");
    let file = file.to_str().unwrap();

    // A secret that does not exist is refused by name, and nothing is deployed.
    let refused = server.cli(&[
        "deploy",
        "cfg",
        file,
        "--var-secret",
        "token=NO_SUCH_SECRET",
    ]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("NO_SUCH_SECRET"), "{said}");
    let refused = server.cli(&["deploy", "cfg", file, "--var", "API_URL=x"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("invalid variable name \"API_URL\""),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    server.cli_ok(&[
        "deploy",
        "cfg",
        file,
        "--var",
        "api_url=https://api.example.com",
        "--var-secret",
        "db_password=DB_PASSWORD",
        "--instance-reuse",
        "100",
    ]);
    assert_eq!(
        read(&server, "api_url").await,
        "spin: ok https://api.example.com\nwasi: some https://api.example.com\n\
         all: api_url=https://api.example.com,db_password=first-password\n"
    );
    let unset = read(&server, "nothing").await;
    assert!(
        unset.starts_with("spin: undefined no variable named nothing\nwasi: none\n"),
        "{unset}"
    );
    let invalid = read(&server, "Not-A-Name").await;
    assert!(
        invalid.starts_with("spin: invalid-name Not-A-Name\n"),
        "{invalid}"
    );

    // The version shows the binding, never the value.
    let (_, version) = server
        .get_json("/v1/namespaces/default/functions/cfg/versions/1")
        .await;
    assert_eq!(
        version["settings"]["variables"],
        json!({"api_url": "https://api.example.com", "db_password": {"secret": "DB_PASSWORD"}})
    );
    assert!(!version.to_string().contains("first-password"));

    // A new value reaches the next invocation, past the kept instance.
    set_secret(&server, "default/DB_PASSWORD", "second-password");
    let server = &server;
    eventually(DEADLINE, || async move {
        let seen = read(server, "db_password").await;
        if seen.starts_with("spin: ok second-password\n") {
            Ok(())
        } else {
            Err(seen)
        }
    })
    .await;

    // A redeploy keeps them, like every setting.
    let said = server.cli_ok(&["config", "cfg", "--memory", "64"]);
    assert!(said.contains("version 2"), "{said}");
    let (_, second) = server
        .get_json("/v1/namespaces/default/functions/cfg/versions/2")
        .await;
    assert_eq!(
        second["settings"]["variables"],
        version["settings"]["variables"]
    );
    assert_ne!(second["settings"]["variables"], Value::Null);
}

#[tokio::test]
async fn an_unmodified_spin_sdk_component_reads_its_variables() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let file = guests().join("spin_app.wasm");
    let file = file.to_str().unwrap();
    server.cli_ok(&["deploy", "spin", file, "--var", "greeting=Hallo"]);
    let answer = reqwest::get(server.url("/fn/default/spin/welt"))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.unwrap(), "Hallo, /welt");

    // Without the variable, the SDK's `undefined` error is the component's 500.
    server.cli_ok(&["deploy", "spin", file, "--reset-settings"]);
    let answer = reqwest::get(server.url("/fn/default/spin/welt"))
        .await
        .unwrap();
    assert_eq!(answer.status(), 500);
    let said = answer.text().await.unwrap();
    assert!(said.contains("no variable named greeting"), "{said}");
}
