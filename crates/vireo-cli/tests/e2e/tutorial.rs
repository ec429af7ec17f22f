//! The README's five-minute tutorial, run as written: its `sh` blocks, in order, in one shell,
//! against a real server, so the README cannot drift from the product.
//!
//! The substitutions, and nothing else: every `127.0.0.1:8080` in the text is this test's
//! server, and `VIREO_URL` points the CLI at it (with no saved profiles). The tutorial runs in a directory laid out like
//! the repository after `./scripts/demo.sh` (the examples, `target/release/vireo`, the built
//! `target/guests`, the server's data in `.vireo` with `hello` and `echo` deployed). That
//! directory is inside the repository's `target/`, so inside its Cargo workspace, where a copied
//! example must still build.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Server, guests};

const DEMO_ADDRESS: &str = "127.0.0.1:8080";

/// The tutorial's shell blocks, in order.
fn tutorial_blocks(readme: &str) -> Vec<String> {
    let start = readme
        .find("## Five-minute tutorial")
        .expect("the README has a tutorial");
    let rest = &readme[start + 2..];
    let section = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut blocks = Vec::new();
    let mut open: Option<String> = None;
    for line in section.lines() {
        match (&mut open, line.trim_end()) {
            (None, "```sh") => open = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                open = None;
            }
            (Some(block), line) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(open.is_none(), "a tutorial block is never closed");
    blocks
}

/// The output lines the tutorial shows (`# ` lines of their own), except those it elides
/// with `…`.
fn shown_outputs(block: &str) -> Vec<String> {
    block
        .lines()
        .filter_map(|line| line.strip_prefix("# "))
        .filter(|shown| !shown.contains('…'))
        .map(str::to_string)
        .collect()
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            if entry.file_name() != "target" {
                copy_tree(&entry.path(), &target);
            }
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_readme_tutorial_runs_as_written() {
    let root = repository_root();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = tutorial_blocks(&readme);
    assert!(blocks.len() >= 5, "found {} tutorial blocks", blocks.len());

    let checkout = tempfile::Builder::new()
        .prefix("tutorial-")
        .tempdir_in(root.join("target"))
        .unwrap();
    let dir = checkout.path();
    copy_tree(&root.join("examples"), &dir.join("examples"));
    std::fs::create_dir_all(dir.join("target/release")).unwrap();
    std::os::unix::fs::symlink(
        env!("CARGO_BIN_EXE_vireo"),
        dir.join("target/release/vireo"),
    )
    .unwrap();
    let built = guests();
    std::os::unix::fs::symlink(
        built.parent().unwrap().parent().unwrap(),
        dir.join("target/guests"),
    )
    .unwrap();

    let demo = |name: &str| format!("{name}={}", built.join(format!("{name}.wasm")).display());
    let server = Server::builder(&dir.join(".vireo"))
        .args(&["--deploy", &demo("hello"), "--deploy", &demo("echo")])
        .start();

    let address = server.address();
    let mut script = String::from("set -euo pipefail\n");
    let mut expected = Vec::new();
    for block in &blocks {
        let block = block.replace(DEMO_ADDRESS, &address);
        expected.extend(shown_outputs(&block));
        script.push_str(&block);
    }
    let mut shell = Command::new("bash");
    shell
        .arg("-c")
        .arg(&script)
        .current_dir(dir)
        .env("VIREO_URL", server.url(""))
        .env("XDG_CONFIG_HOME", dir.join(".config"))
        .stdin(std::process::Stdio::null());
    for inherited in [
        "VIREO_API_KEY",
        "VIREO_DATA",
        "VIREO_NAMESPACE",
        "VIREO_PROFILE",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
    ] {
        shell.env_remove(inherited);
    }
    let ran = shell.output().expect("run bash");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr),
    );
    assert!(
        ran.status.success(),
        "the tutorial failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        ran.status
    );
    let printed: Vec<&str> = stdout.lines().map(str::trim_end).collect();
    for shown in &expected {
        assert!(
            printed.contains(&shown.as_str()),
            "the tutorial shows {shown:?}, but the commands printed:\n{stdout}\n--- stderr\n{stderr}"
        );
    }
}

#[test]
fn blocks_and_their_shown_outputs_are_found() {
    let readme = "intro\n## Five-minute tutorial\ntext\n```sh\na # comment\n# out\n# cut…\n```\n\
                  ```json\nno\n```\n```sh\nb\n```\n## Next\n```sh\nnot this\n```\n";
    let blocks = tutorial_blocks(readme);
    assert_eq!(blocks, ["a # comment\n# out\n# cut…\n", "b\n"]);
    assert_eq!(shown_outputs(&blocks[0]), ["out"]);
}
