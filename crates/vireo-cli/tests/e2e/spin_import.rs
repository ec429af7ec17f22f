//! `vireo deploy --from-spin`: a Spin application manifest with two HTTP components, built from
//! an unmodified Spin SDK 5 component, deploys with its routes and variables and answers as
//! under Spin: the whole path, and the `spin-*` headers Spin's HTTP trigger sets.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::{Server, guests, stdout_json};

const SPIN_TOML: &str = r#"
spin_manifest_version = 2

[application]
name = "greetings"
version = "0.1.0"

[variables]
greeting = { default = "Hello" }

[[trigger.http]]
route = "/greet/..."
component = "greet"

[[trigger.http]]
route = "/kv/..."
component = "greet"

[[trigger.http]]
route = "/hola"
component = "hola"

[[trigger.cron]]
cron_expression = "0 * * * * *"
component = "greet"

[component.greet]
source = "app.wasm"
key_value_stores = ["default"]
[component.greet.variables]
greeting = "{{ greeting }}"

[component.hola]
source = "app.wasm"
files = ["static/**"]
[component.hola.variables]
greeting = "Hola"
"#;

/// The `name: value` lines the fixture answers for a path ending in `/spin-headers`.
fn header_lines(body: &str) -> BTreeMap<String, String> {
    body.lines()
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect()
}

async fn text_of(request: reqwest::RequestBuilder) -> String {
    let answer = request.send().await.unwrap();
    assert_eq!(answer.status(), 200);
    answer.text().await.unwrap()
}

#[tokio::test]
async fn a_spin_application_deploys_with_its_routes_and_answers_with_spins_headers() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let app = tempfile::tempdir().unwrap();
    std::fs::copy(guests().join("spin_app.wasm"), app.path().join("app.wasm")).unwrap();
    std::fs::write(app.path().join("spin.toml"), SPIN_TOML).unwrap();

    // A dry run says what would be made, and what cannot be mapped, and makes nothing.
    let dry = stdout_json(&server.cli_in(
        app.path(),
        &["deploy", "--from-spin", "--dry-run", "-o", "json"],
    ));
    let would: Vec<&str> = dry["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["function"].as_str().unwrap())
        .collect();
    assert_eq!(would, ["greet", "hola"]);
    let notes = dry["not_mapped"].to_string();
    assert!(notes.contains("cron trigger"), "{notes}");
    assert!(
        notes.contains("component hola's files is not mapped"),
        "{notes}"
    );
    let (status, _) = server
        .get_json("/v1/namespaces/default/functions/greet")
        .await;
    assert_eq!(status, 404, "a dry run deployed");

    let deployed = server.cli_in(app.path(), &["deploy", "--from-spin", "spin.toml"]);
    assert!(deployed.status.success(), "{deployed:?}");
    let said = String::from_utf8_lossy(&deployed.stderr);
    assert!(
        said.contains("note: 1 cron trigger(s) not mapped"),
        "{said}"
    );

    let client = reqwest::Client::new();
    // The whole path, as under Spin, with the application variable's default.
    let greeting = text_of(client.get(server.url("/greet/world"))).await;
    assert_eq!(greeting, "Hello, /greet/world");
    let hola = text_of(client.get(server.url("/hola"))).await;
    assert_eq!(hola, "Hola, /hola");
    // The default key-value store is granted, as in the manifest.
    text_of(client.get(server.url("/kv/visits"))).await;
    assert_eq!(
        text_of(client.get(server.url("/kv/visits"))).await,
        "visits=2"
    );

    // Spin's headers for a wildcard route; the client's own spin-* header is not believed.
    let body = text_of(
        client
            .get(server.url("/greet/x/spin-headers?q=1"))
            .header("spin-client-addr", "6.6.6.6:666"),
    )
    .await;
    let headers = header_lines(&body);
    let expected = [
        ("spin-base-path", "/".to_string()),
        ("spin-component-route", "/greet".to_string()),
        (
            "spin-full-url",
            format!("http://{}/greet/x/spin-headers?q=1", server.address()),
        ),
        ("spin-matched-route", "/greet/...".to_string()),
        ("spin-path-info", "/x/spin-headers".to_string()),
        ("spin-raw-component-route", "/greet/...".to_string()),
    ];
    for (name, value) in &expected {
        assert_eq!(headers.get(*name), Some(value), "{name} in {body}");
    }
    let client_addr = &headers["spin-client-addr"];
    assert!(client_addr.starts_with("127.0.0.1:"), "{client_addr}");

    // The function's own URL is mounted like Spin's catch-all route.
    let body = text_of(client.get(server.url("/fn/default/greet/a/spin-headers"))).await;
    let headers = header_lines(&body);
    assert_eq!(headers["spin-matched-route"], "/...");
    assert_eq!(headers["spin-path-info"], "/a/spin-headers");
    assert_eq!(headers["spin-component-route"], "");

    // Deploying the same application again changes nothing.
    let again = stdout_json(&server.cli_in(
        app.path(),
        &["deploy", "--from-spin", "spin.toml", "-o", "json"],
    ));
    for function in again["functions"].as_array().unwrap() {
        assert_eq!(function["new_version"], Value::Bool(false), "{again}");
        assert_eq!(function["version"], 1, "{again}");
    }
}

#[tokio::test]
async fn a_function_deployed_without_spin_http_sees_no_spin_headers() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let file = guests().join("spin_app.wasm");
    server.cli_ok(&["deploy", "plain", file.to_str().unwrap()]);
    let body = text_of(
        reqwest::Client::new()
            .get(server.url("/fn/default/plain/spin-headers"))
            .header("spin-path-info", "/forged"),
    )
    .await;
    // Only what the client sent itself: Vireo adds nothing unless the version asks.
    assert_eq!(body, "spin-path-info: /forged");
}
