//! The dashboard in a real browser: Debian's headless Chromium, driven by playwright-core from
//! `tests/browser/dashboard.mjs`, against the real binary. This side prepares what the pages
//! show (functions with versions and an alias, a viewer key, an async invocation in the
//! dead-letter queue) through the API; the script does what a person would and checks what
//! they would see. Screenshots land in `target/dashboard-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::support::{DEADLINE, Server, eventually, invocation_id, stdout_json};

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
    server.deploy_ok("probe", "probe", json!({})).await;
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
        14,
        "{stdout}"
    );
}
