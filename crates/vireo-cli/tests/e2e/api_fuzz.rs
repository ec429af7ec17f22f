//! API fuzzing: schemathesis generates requests from `/v1/openapi.json`, sends them with an
//! admin key and checks every answer against the document: no 5xx, only documented statuses,
//! content types, headers and response schemas, 401 without the key, 405 with `Allow` for
//! methods a route does not take, and schema-violating requests rejected.
//!
//! One check is left out: `positive_data_acceptance`, which expects every request that fits the
//! schema to succeed. Much of the API validates beyond what JSON Schema says (a cron expression
//! must parse, a viewer key needs a namespace, a timeout must be under the server's maximum), so
//! schema-valid requests are rightly refused with 400.

use std::process::Command;

use serde_json::json;

use crate::support::Server;

/// The version `scripts/test.sh` installs, verified to work with this document.
const SCHEMATHESIS_VERSION: &str = "4.32.5";
/// Examples per operation and phase: about a minute on two cores.
const MAX_EXAMPLES: &str = "40";
/// Fixed, so a failure found once is found again; change it to explore further.
const SEED: &str = "20261130";
const ADMIN_KEY: &str = "vireo-fuzzing-admin-key-0123456789abcdef";

#[tokio::test]
async fn schemathesis_finds_no_server_error_or_broken_contract() {
    let version = Command::new("st")
        .arg("--version")
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "schemathesis is not installed ({error}): scripts/test.sh installs it, or run \
                 `pip install schemathesis=={SCHEMATHESIS_VERSION}`"
            )
        });
    let version = String::from_utf8_lossy(&version.stdout).into_owned();
    assert!(
        version.contains(SCHEMATHESIS_VERSION),
        "schemathesis {SCHEMATHESIS_VERSION} is the version this test was verified with; found {version}"
    );

    let data = tempfile::tempdir().unwrap();
    // The key is not stored, so a fuzzed `DELETE /v1/keys/{id}` cannot revoke it mid-run.
    let server = Server::builder(data.path()).admin_key(ADMIN_KEY).start();
    server.deploy_ok("echo", "echo", json!({})).await;
    // Hypothesis keeps its example database in the working directory.
    let work = tempfile::tempdir().unwrap();
    let schema = server.url("/v1/openapi.json");
    let run = tokio::task::spawn_blocking(move || {
        Command::new("st")
            .current_dir(work.path())
            .args(["--no-color", "run", &schema])
            .args(["--header", &format!("Authorization: Bearer {ADMIN_KEY}")])
            .args([
                "--max-examples",
                MAX_EXAMPLES,
                "--seed",
                SEED,
                "--workers",
                "1",
            ])
            .args(["--exclude-checks", "positive_data_acceptance"])
            .args(["--request-timeout", "20"])
            .output()
            .expect("run schemathesis")
    })
    .await
    .unwrap();
    assert!(
        run.status.success(),
        "schemathesis found problems ({}):\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}
