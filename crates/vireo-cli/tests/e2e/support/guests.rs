//! Guest components, built from source once per test run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

pub fn workspace_root() -> PathBuf {
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

/// Builds `tests/js/<name>.js` into a component with componentize-js, once per test run, and
/// returns its bytes. The node packages come from `npm ci` in `tests/js` (scripts/test.sh); the
/// build script is the JavaScript template's (`tests/js/build.mjs` and `wit` link to it), run
/// as if it lived in `tests/js` so that it finds the packages installed there. The source is
/// built from a directory of its own beside the template's `serve.js`, which it may import:
/// componentize-js reads only the source's directory, and follows no link out of it.
pub fn js_guest(name: &str) -> Vec<u8> {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let out = built.entry(name.to_string()).or_insert_with(|| {
        let dir = workspace_root().join("tests/js");
        assert!(
            dir.join("node_modules/@bytecodealliance/componentize-js")
                .exists(),
            "componentize-js is not installed: run scripts/test.sh, or `npm ci` in {}",
            dir.display()
        );
        let out_dir = workspace_root().join("target/guests/js");
        std::fs::create_dir_all(&out_dir).expect("create target/guests/js");
        let out = out_dir.join(format!("{name}.wasm"));
        let source = out_dir.join(name);
        std::fs::create_dir_all(&source).expect("create the source's directory");
        let root = workspace_root();
        for (from, to) in [
            (dir.join(format!("{name}.js")), format!("{name}.js")),
            (
                root.join("templates/js/src/serve.js"),
                "serve.js".to_string(),
            ),
        ] {
            std::fs::copy(&from, source.join(to))
                .unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        }
        let status = Command::new("node")
            .current_dir(&dir)
            .arg("--preserve-symlinks-main")
            .arg("build.mjs")
            .arg(source.join(format!("{name}.js")))
            .arg(&out)
            .status()
            .expect("run node to build a JavaScript guest (is nodejs installed?)");
        assert!(
            status.success(),
            "building tests/js/{name}.js with componentize-js failed"
        );
        out
    });
    std::fs::read(&*out).unwrap_or_else(|e| panic!("read {}: {e}", out.display()))
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
