//! `vireo new` and the templates it writes: each language's project builds with its own
//! toolchain (`vireo build` runs its vireo.toml's build command), deploys from its manifest
//! (`vireo deploy`), and answers with the request's body, a variable, an environment variable
//! and a key-value counter.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{Server, stdout_json, workspace_root};

/// `vireo new` needs no server.
fn vireo(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(args)
        .output()
        .expect("run vireo")
}

/// The virtual environment scripts/test.sh installs templates/python/requirements.txt into.
const PYTHON_TOOLCHAIN: &str = "target/templates-python";

/// What every template answers a POST of `tests` with, the `visits` count aside.
fn expected_answer(visits: u32) -> String {
    format!("Hello, tests!\nvisits: {visits}\nstage: dev\n")
}

/// Runs `vireo new LANGUAGE NAME` into a fresh directory under `parent`; the project's path.
fn new_project(server: &Server, parent: &Path, language: &str, name: &str) -> PathBuf {
    let project = parent.join(name);
    let dir = project.to_str().unwrap();
    let created = stdout_json(&server.cli(&["new", language, name, "--dir", dir, "-o", "json"]));
    assert_eq!(created["dir"], dir);
    assert_eq!(created["next_steps"][0], format!("cd {dir}"));
    let files = created["files"].as_array().unwrap();
    assert!(files.contains(&"vireo.toml".into()), "{created}");
    project
}

/// Lends the project the toolchain this test run installed, so each template's dependencies are
/// built or downloaded once per machine, not once per run; returns the PATH to build with.
fn lend_toolchain(language: &str, project: &Path) -> String {
    let root = workspace_root();
    let path = std::env::var("PATH").unwrap_or_default();
    match language {
        // The guest fixtures' target directory: spin-sdk and its dependencies are built there
        // already, with the same versions (Cargo.lock) and profile.
        "rust" => {
            let guests = root.join("target/guests");
            std::fs::create_dir_all(&guests).expect("create target/guests");
            std::os::unix::fs::symlink(guests, project.join("target"))
                .expect("link the target directory");
            path
        }
        // tests/js's packages: the template pins the same ones (checked below).
        "js" => {
            let modules = root.join("tests/js/node_modules");
            assert!(
                modules.join("@bytecodealliance/componentize-js").exists(),
                "componentize-js is not installed: run scripts/test.sh, or `npm ci` in tests/js"
            );
            std::os::unix::fs::symlink(modules, project.join("node_modules"))
                .expect("link node_modules");
            path
        }
        "python" => {
            let bin = root.join(PYTHON_TOOLCHAIN).join("bin");
            assert!(
                bin.join("componentize-py").exists(),
                "componentize-py is not installed in {PYTHON_TOOLCHAIN}: run scripts/test.sh"
            );
            format!("{}:{path}", bin.display())
        }
        other => panic!("no toolchain for {other}"),
    }
}

/// `vireo new` → `vireo build` → `vireo deploy` (both from the project's vireo.toml) → two
/// requests, the second counting one more visit.
async fn template_answers(language: &str) {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let projects = tempfile::tempdir().unwrap();
    let project = new_project(&server, projects.path(), language, "greet");
    let path = lend_toolchain(language, &project);
    for step in [["build", "-o", "json"], ["deploy", "-o", "json"]] {
        let done = server.cli_in_with_path(&project, &step, &path);
        assert!(
            done.status.success(),
            "{language}: vireo {} failed: {}{}",
            step[0],
            String::from_utf8_lossy(&done.stdout),
            String::from_utf8_lossy(&done.stderr)
        );
    }

    let client = reqwest::Client::new();
    for visits in [1, 2] {
        let response = client
            .post(server.url("/fn/default/greet/"))
            .body("tests")
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(
            (status.as_u16(), text.as_str()),
            (200, expected_answer(visits).as_str()),
            "{language}, request {visits}"
        );
    }
    // The second request went to the first one's instance where the template reuses them.
    let (_, function) = server
        .get_json("/v1/namespaces/default/functions/greet")
        .await;
    assert_eq!(
        function["reuse_fallback_versions"],
        serde_json::json!([]),
        "{language}: {function}"
    );
}

#[tokio::test]
async fn the_rust_template_builds_deploys_and_answers() {
    template_answers("rust").await;
}

#[tokio::test]
async fn the_python_template_builds_deploys_and_answers() {
    template_answers("python").await;
}

#[tokio::test]
async fn the_js_template_builds_deploys_and_answers() {
    template_answers("js").await;
}

/// The JS template links tests/js's installed packages above: both must pin the same ones.
#[test]
fn the_js_template_pins_the_packages_tests_js_installs() {
    let root = workspace_root();
    let packages = |path: &str| -> Value {
        let lock: Value =
            serde_json::from_str(&std::fs::read_to_string(root.join(path)).unwrap()).unwrap();
        let mut packages = lock["packages"].clone();
        packages.as_object_mut().unwrap().remove("");
        packages
    };
    assert_eq!(
        packages("templates/js/package-lock.json"),
        packages("tests/js/package-lock.json")
    );
}

/// The JS template's world imports Spin's interfaces as Vireo serves them: its WIT files are the
/// runtime's, unchanged.
#[test]
fn the_js_template_imports_spin_interfaces_as_vireo_serves_them() {
    let root = workspace_root();
    let template = root.join("templates/js/wit/spin");
    let mut files: Vec<_> = std::fs::read_dir(&template)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    files.sort();
    assert_eq!(files, ["key-value.wit", "package.wit", "variables.wit"]);
    for file in files {
        assert_eq!(
            std::fs::read_to_string(template.join(&file)).unwrap(),
            std::fs::read_to_string(root.join("crates/vireo-runtime/wit/deps/spin").join(&file))
                .unwrap(),
            "{file:?}"
        );
    }
}

#[test]
fn new_refuses_a_directory_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let output = vireo(&[
        "new",
        "rust",
        "greet",
        "--dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("is not empty"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(
        left.len(),
        1,
        "nothing written beside the file that was there"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "mine"
    );

    let unknown = vireo(&["new", "cobol", "greet", "--dir", "unused"]);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("js, python, rust"), "{stderr}");
}

#[test]
fn new_lists_the_templates_with_their_toolchains() {
    let listed = stdout_json(&vireo(&["new", "--list", "-o", "json"]));
    let templates = listed["templates"].as_array().unwrap();
    let languages: Vec<&str> = templates
        .iter()
        .map(|t| t["language"].as_str().unwrap())
        .collect();
    assert_eq!(languages, ["js", "python", "rust"]);
    let python = &templates[1]["toolchain"];
    assert!(
        python.as_str().unwrap().contains("componentize-py"),
        "{python}"
    );
    let table = vireo(&["new", "--list"]);
    assert!(table.status.success());
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("wasm32-wasip2"), "{table}");
}
