//! Guest components, built from source once per test run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// Builds the example and fixture components once per test run (cargo's own lock makes
/// concurrent test processes wait for the first build) and returns the directory of `.wasm`s.
pub fn guests() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = workspace_root();
        let target_dir = root.join("target/guests");
        for manifest in guest_manifests(&root) {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
                .arg(&manifest)
                .arg("--target-dir")
                .arg(&target_dir)
                .status()
                .expect("run cargo to build guest components");
            assert!(status.success(), "building {} for wasm32-wasip2 failed (is the target installed? rustup target add wasm32-wasip2)", manifest.display());
        }
        target_dir.join("wasm32-wasip2/release")
    })
}

/// Each example is a workspace of its own (so a copy builds anywhere); the fixtures are one.
fn guest_manifests(root: &Path) -> Vec<PathBuf> {
    let examples = std::fs::read_dir(root.join("examples")).expect("list the examples");
    let mut manifests: Vec<PathBuf> = examples
        .map(|entry| entry.expect("list the examples").path().join("Cargo.toml"))
        .filter(|manifest| manifest.exists())
        .collect();
    manifests.sort();
    manifests.push(root.join("tests/fixtures/Cargo.toml"));
    manifests
}

pub fn guest(name: &str) -> Vec<u8> {
    // Library components are named with underscores, binaries keep their hyphens.
    let file = [name.replace('-', "_"), name.to_string()]
        .map(|stem| guests().join(format!("{stem}.wasm")))
        .into_iter()
        .find(|file| file.exists())
        .unwrap_or_else(|| panic!("no component named {name} in {}", guests().display()));
    std::fs::read(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()))
}
