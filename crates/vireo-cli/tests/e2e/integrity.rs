//! Nothing Vireo maps or runs is trusted from disk unchecked: a damaged precompiled artifact is
//! discarded and compiled again, component bytes swapped under another's hash are refused with
//! 503, deploying the same bytes again repairs both, and the temporary files of interrupted
//! writes are gone after a restart.

use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::{DEADLINE, Server, eventually, guest};

const HELLO: &str = "Hello, Vireo!\n";
const DISCARDED: &str = "discarded a damaged precompiled artifact";

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn component_sha(version: &Value) -> String {
    version["component_sha256"]
        .as_str()
        .expect("a version names its component")
        .to_string()
}

fn blob(server: &Server, sha: &str) -> PathBuf {
    server.data.join("components").join(format!("{sha}.wasm"))
}

/// The precompiled artifact of the component with hash `sha`.
fn artifact(server: &Server, sha: &str) -> PathBuf {
    let dir = server.data.join("artifacts");
    std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            name.starts_with(sha) && name.ends_with(".cwasm")
        })
        .unwrap_or_else(|| panic!("no artifact of {sha} in {}", dir.display()))
}

/// Whether the artifact's bytes match the sha256 recorded beside it.
fn intact(artifact: &Path) -> bool {
    let recorded = std::fs::read_to_string(format!("{}.sha256", artifact.display()));
    let bytes = std::fs::read(artifact).unwrap_or_default();
    recorded.is_ok_and(|line| line.split_whitespace().next() == Some(&sha256_hex(&bytes)))
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    SixteenBytesInTheMiddle,
    Truncated,
    Garbage,
}

/// Damages the file in place (as a failing disk or a careless operator would) and returns what
/// it holds then.
fn damage(path: &Path, how: Damage) -> Vec<u8> {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    let size = file.metadata().unwrap().len();
    match how {
        Damage::SixteenBytesInTheMiddle => file.write_all_at(&[0xcc; 16], size / 2).unwrap(),
        Damage::Truncated => file.set_len(size / 3).unwrap(),
        Damage::Garbage => {
            file.set_len(0).unwrap();
            file.write_all_at(&[0x5a; 4096], 0).unwrap();
        }
    }
    drop(file);
    std::fs::read(path).unwrap()
}

async fn get(server: &Server, function: &str) -> (u16, String) {
    let response = reqwest::get(server.url(&format!("/fn/default/{function}/")))
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// Waits until `function` has no version loaded, so its next request loads it from disk.
async fn scaled_to_zero(server: &Server, function: &str) {
    let path = format!("/v1/namespaces/default/functions/{function}");
    eventually(DEADLINE, || async {
        match server.get_json(&path).await {
            (200, view) if view["warm_versions"] == json!([]) => Ok(()),
            (status, view) => Err(format!("{function} still loaded: {status} {view}")),
        }
    })
    .await;
}

#[tokio::test]
async fn a_damaged_artifact_is_discarded_and_compiled_again() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_config(data.path(), "[scaling]\nidle_ttl_ms = 100\n");
    let sha = component_sha(&server.deploy_ok("hello", "hello", json!({})).await);
    let path = artifact(&server, &sha);
    assert!(intact(&path));

    let damages = [
        Damage::SixteenBytesInTheMiddle,
        Damage::Truncated,
        Damage::Garbage,
    ];
    for (seen, how) in damages.into_iter().enumerate() {
        // Nothing maps the file while it is damaged: the version is not loaded.
        scaled_to_zero(&server, "hello").await;
        let damaged = damage(&path, how);

        assert_eq!(get(&server, "hello").await, (200, HELLO.into()), "{how:?}");
        let discarded = server.log_lines(DISCARDED);
        assert_eq!(discarded.len(), seen + 1, "{how:?}: {discarded:#?}");
        let line = discarded.last().unwrap();
        assert!(
            line.contains(&path.display().to_string()) && line.contains("sha256 is"),
            "{how:?}: the log names the file and why: {line}"
        );
        assert!(intact(&path), "{how:?}: compiled again and recorded");
        assert_ne!(std::fs::read(&path).unwrap(), damaged, "{how:?}: replaced");
    }

    // A server starting on a damaged artifact recompiles too.
    scaled_to_zero(&server, "hello").await;
    damage(&path, Damage::SixteenBytesInTheMiddle);
    server.terminate();
    assert!(server.wait_exit().success());
    let server = Server::start(data.path());
    assert_eq!(get(&server, "hello").await, (200, HELLO.into()));
    server.logged(DISCARDED).await;
    assert!(intact(&path));
}

#[tokio::test]
async fn another_components_bytes_under_a_hash_are_refused_until_deployed_again() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let a = component_sha(&server.deploy_ok("a", "hello", json!({})).await);
    let b = component_sha(&server.deploy_ok("b", "echo", json!({})).await);
    // B must be compiled from its stored bytes, and those are A's.
    std::fs::remove_file(artifact(&server, &b)).unwrap();
    std::fs::copy(blob(&server, &a), blob(&server, &b)).unwrap();

    let (status, body) = get(&server, "b").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        !body.contains(HELLO.trim()),
        "A's code never runs as B: {body}"
    );
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["error"]["code"], "unavailable", "{body}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("damaged; deploy it again"),
        "{body}"
    );
    let logged = server.logged("refused a damaged component").await;
    assert!(logged.contains(&b), "{logged}");
    assert_eq!(
        get(&server, "a").await,
        (200, HELLO.into()),
        "still serving"
    );
    assert_eq!(get(&server, "b").await.0, 503, "no better on a second try");

    let redeployed = server.deploy("b", guest("echo"), json!({})).await;
    assert_eq!(redeployed.status(), 200, "the same bytes and settings");
    let redeployed: Value = redeployed.json().await.unwrap();
    assert_eq!(
        (
            redeployed["version"].as_u64(),
            redeployed["created"].as_bool()
        ),
        (Some(1), Some(false))
    );
    assert_eq!(std::fs::read(blob(&server, &b)).unwrap(), guest("echo"));
    let (status, body) = get(&server, "b").await;
    assert_eq!(status, 200, "{body}");
    let echoed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["method"], "GET", "B runs its own code: {body}");
}

#[tokio::test]
async fn deploying_the_same_bytes_over_a_damaged_artifact_repairs_it() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let sha = component_sha(&server.deploy_ok("hello", "hello", json!({})).await);
    let path = artifact(&server, &sha);

    let damaged = damage(&path, Damage::SixteenBytesInTheMiddle);
    let again = server.deploy("hello", guest("hello"), json!({})).await;
    assert_eq!(
        again.status(),
        200,
        "unchanged: {}",
        again.text().await.unwrap()
    );
    assert!(intact(&path));
    assert_ne!(std::fs::read(&path).unwrap(), damaged);
    server.logged(DISCARDED).await;

    damage(&path, Damage::Truncated);
    server.deploy_ok("copy", "hello", json!({})).await;
    assert!(intact(&path));
    for function in ["hello", "copy"] {
        assert_eq!(get(&server, function).await, (200, HELLO.into()));
    }
}

#[tokio::test]
async fn temporary_files_of_interrupted_writes_are_removed_at_start() {
    let data = tempfile::tempdir().unwrap();
    let mut server = Server::start(data.path());
    let sha = component_sha(&server.deploy_ok("hello", "hello", json!({})).await);
    server.kill();

    let leftovers = [
        data.path().join("artifacts/.incoming-Xq3v9a"),
        data.path().join("artifacts/.tmpA1b2C3"),
        data.path().join("components/.incoming-Zz9y8x"),
    ];
    for file in &leftovers {
        std::fs::write(file, b"half a write").unwrap();
    }
    let server = Server::start(data.path());
    for file in &leftovers {
        assert!(!file.exists(), "{} is still there", file.display());
    }
    server
        .logged("removed temporary artifact files left by an interrupted write")
        .await;
    server
        .logged("removed temporary component files left by an interrupted write")
        .await;
    assert!(blob(&server, &sha).exists() && intact(&artifact(&server, &sha)));
    assert_eq!(get(&server, "hello").await, (200, HELLO.into()));
}
