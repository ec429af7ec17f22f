//! The project manifest `vireo.toml`: `vireo deploy` from it (building a stale component,
//! settings, aliases, schedules, `--dry-run`), `vireo build`'s checks, errors that name the
//! line, `vireo schema`, and `vireo dev`.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::support::{Server, eventually, guests, install_tls_provider, stdout_json};

fn fixture(name: &str) -> PathBuf {
    guests().join(format!("{name}.wasm"))
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "vireo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of_failure(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "vireo succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The CLI in `dir` with no server to talk to: for what it decides before connecting.
fn vireo_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vireo"))
        .args(args)
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir.join("cli-config"))
        .env("VIREO_URL", "http://127.0.0.1:9")
        .env_remove("VIREO_API_KEY")
        .env_remove("VIREO_PROFILE")
        .env_remove("VIREO_NAMESPACE")
        .output()
        .expect("run vireo")
}

/// A project whose build copies the fixture named in `src/which` to `dist/app.wasm`, so a
/// change of that source file changes the component.
fn write_manifest(project: &Path, greeting: &str, cron: &str) {
    let manifest = format!(
        r#"name = "app"
component = "dist/app.wasm"

[build]
command = "mkdir -p dist && cp \"$(cat src/which)\" dist/app.wasm"
watch = ["src"]

[settings]
memory_mib = 64
env = {{ GREETING = "{greeting}" }}

[aliases]
live = "latest"

[[schedules]]
name = "nightly"
cron = "{cron}"

[[routes]]
route = "/greet"
alias = "live"
"#
    );
    std::fs::write(project.join("vireo.toml"), manifest).unwrap();
}

/// Points the project's source at `fixture`, edited after the last build: the component (if
/// built) is dated a minute earlier, as if the edit came a minute after the build.
fn change_source(project: &Path, fixture_name: &str) {
    std::fs::write(
        project.join("src/which"),
        fixture(fixture_name).to_str().unwrap(),
    )
    .unwrap();
    let component = project.join("dist/app.wasm");
    if component.exists() {
        let earlier = SystemTime::now() - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&component)
            .unwrap()
            .set_modified(earlier)
            .unwrap();
    }
}

async fn answer(server: &Server, path: &str) -> (u16, String) {
    let response = reqwest::get(server.url(path)).await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The environment the echo fixture saw.
fn env_seen(body: &str) -> Value {
    let seen: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    seen["env"].clone()
}

async fn version_count(server: &Server) -> usize {
    let (status, versions) = server
        .get_json("/v1/namespaces/default/functions/app/versions")
        .await;
    assert_eq!(status, 200, "{versions}");
    versions["versions"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_project_deploys_from_its_manifest_and_stays_in_step_with_it() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    std::fs::create_dir(dir.join("src")).unwrap();
    change_source(dir, "echo");
    write_manifest(dir, "hello", "0 3 * * *");

    // First deploy: no component yet, so it builds; then version 1, the alias, the schedule.
    let first = stdout(&server.cli_in(dir, &["deploy"]));
    assert!(first.contains("built default/app in"), "{first}");
    assert!(first.contains("deployed default/app version 1"), "{first}");
    assert!(
        first.contains("alias live: created at version 1"),
        "{first}"
    );
    assert!(first.contains("schedule nightly: created"), "{first}");
    assert!(first.contains("route /greet: created"), "{first}");
    let (status, body) = answer(&server, "/greet").await;
    assert_eq!(
        (status, env_seen(&body)),
        (200, json!({"GREETING": "hello"}))
    );
    let (status, body) = answer(&server, "/fn/default/app/").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env_seen(&body), json!({"GREETING": "hello"}));
    assert_eq!(answer(&server, "/fn/default/app@live/").await.0, 200);
    let (_, version) = server
        .get_json("/v1/namespaces/default/functions/app/versions/1")
        .await;
    assert_eq!(version["settings"]["memory_mib"], 64);

    // A changed setting: the dry run says what would change and changes nothing.
    write_manifest(dir, "hi", "0 3 * * *");
    let plan = stdout_json(&server.cli_in(dir, &["deploy", "--dry-run", "-o", "json"]));
    assert_eq!(plan["dry_run"], true);
    let planned = &plan["functions"][0];
    assert_eq!(planned["new_version"], true, "{plan}");
    assert_eq!(planned["component_changed"], false, "{plan}");
    assert_eq!(planned["version"], 2, "{plan}");
    assert_eq!(
        planned["settings_changed"],
        json!([{"setting": "env", "from": {"GREETING": "hello"}, "to": {"GREETING": "hi"}}])
    );
    assert_eq!(planned["aliases"][0]["changed"], true, "{plan}");
    assert_eq!(planned["schedules"][0]["action"], "unchanged", "{plan}");
    let said = stdout(&server.cli_in(dir, &["deploy", "--dry-run"]));
    assert!(
        said.contains("would deploy default/app as version 2 with other settings (same component)"),
        "{said}"
    );
    assert!(
        said.contains(r#"env: {"GREETING":"hello"} → {"GREETING":"hi"}"#),
        "{said}"
    );
    assert!(
        said.contains("alias live: would move to version 2 (now version 1)"),
        "{said}"
    );
    assert_eq!(version_count(&server).await, 1);
    let (_, body) = answer(&server, "/fn/default/app/").await;
    assert_eq!(env_seen(&body), json!({"GREETING": "hello"}));

    // Deployed: version 2 with it, and the alias follows; the fresh component is not rebuilt.
    let second = stdout(&server.cli_in(dir, &["deploy"]));
    assert!(!second.contains("built"), "{second}");
    assert!(
        second.contains("deployed default/app version 2"),
        "{second}"
    );
    assert!(
        second.contains("env: {\"GREETING\":\"hello\"} → {\"GREETING\":\"hi\"}"),
        "{second}"
    );
    assert!(
        second.contains("alias live: version 2 (was version 1)"),
        "{second}"
    );
    let (_, body) = answer(&server, "/fn/default/app@live/").await;
    assert_eq!(env_seen(&body), json!({"GREETING": "hi"}));

    // Unchanged: no new version, and the dry run says so too.
    let plan = stdout_json(&server.cli_in(dir, &["deploy", "--dry-run", "-o", "json"]));
    assert_eq!(plan["functions"][0]["new_version"], false, "{plan}");
    assert_eq!(plan["functions"][0]["version"], 2, "{plan}");
    let third = stdout(&server.cli_in(dir, &["deploy"]));
    assert!(
        third.contains("unchanged default/app version 2 (identical to the latest version)"),
        "{third}"
    );
    assert!(
        third.contains("alias live: version 2, unchanged"),
        "{third}"
    );
    assert!(third.contains("schedule nightly: unchanged"), "{third}");
    assert!(third.contains("route /greet: unchanged"), "{third}");
    assert_eq!(version_count(&server).await, 2);

    // A newer source rebuilds; a different component makes a version; a new cron replaces the
    // schedule.
    change_source(dir, "hello");
    write_manifest(dir, "hi", "30 4 * * *");
    let plan = stdout(&server.cli_in(dir, &["deploy", "--dry-run"]));
    assert!(plan.contains("would build default/app first"), "{plan}");
    assert!(
        plan.contains("schedule nightly: would be replaced"),
        "{plan}"
    );
    let fourth = stdout(&server.cli_in(dir, &["deploy", "-o", "json"]));
    let fourth: Value = serde_json::from_str(&fourth).unwrap();
    let deployed = &fourth["functions"][0];
    assert_eq!(deployed["version"], 3, "{fourth}");
    assert_eq!(deployed["component_changed"], true, "{fourth}");
    assert!(
        deployed["build_reason"]
            .as_str()
            .unwrap()
            .contains("newer than"),
        "{fourth}"
    );
    assert_eq!(deployed["schedules"][0]["action"], "replaced", "{fourth}");
    assert_eq!(deployed["routes"][0]["action"], "unchanged", "{fourth}");
    assert_eq!(
        answer(&server, "/fn/default/app@live/").await,
        (200, "hi, Vireo!\n".to_string()),
        "the hello fixture greets with GREETING"
    );
    let (_, schedule) = server
        .get_json("/v1/namespaces/default/schedules/nightly")
        .await;
    assert_eq!(schedule["schedule"], "30 4 * * *", "{schedule}");
    assert_eq!(version_count(&server).await, 3);
}

#[tokio::test]
async fn several_functions_deploy_from_one_manifest() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.cli_ok(&["ns", "create", "team-a"]);
    let project = tempfile::tempdir().unwrap();
    let manifest = format!(
        r#"[[function]]
name = "hello"
component = "{hello}"

[[function]]
name = "echo"
namespace = "team-a"
component = "{echo}"
settings = {{ env = {{ WHO = "team-a" }} }}
"#,
        hello = fixture("hello").display(),
        echo = fixture("echo").display(),
    );
    std::fs::write(project.path().join("vireo.toml"), manifest).unwrap();
    let said = stdout(&server.cli_in(project.path(), &["deploy"]));
    assert!(said.contains("deployed default/hello version 1"), "{said}");
    assert!(said.contains("deployed team-a/echo version 1"), "{said}");
    assert_eq!(
        answer(&server, "/fn/default/hello/").await,
        (200, "Hello, Vireo!\n".to_string())
    );
    let (status, body) = answer(&server, "/fn/team-a/echo/").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(env_seen(&body), json!({"WHO": "team-a"}));
}

#[test]
fn manifest_errors_name_the_file_line_and_key() {
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    let missing = stderr_of_failure(&vireo_in(dir, &["deploy"]));
    assert!(
        missing.contains("no vireo.toml in this directory"),
        "{missing}"
    );
    std::fs::write(
        dir.join("vireo.toml"),
        "name = \"app\"\ncomponent = \"app.wasm\"\n\n[settings]\nmemory_mib = 64\n\nmemry_mib = 1\n",
    )
    .unwrap();
    for command in [&["deploy"][..], &["deploy", "--dry-run"], &["build"]] {
        let err = stderr_of_failure(&vireo_in(dir, command));
        assert!(
            err.contains("vireo.toml:7:1: unknown field `memry_mib`, expected one of"),
            "{command:?}: {err}"
        );
    }
    std::fs::write(
        dir.join("app.toml"),
        "name = \"app\"\ncomponent = \"app.wasm\"\nsettings = { instance_reuse = 0 }\n",
    )
    .unwrap();
    let err = stderr_of_failure(&vireo_in(dir, &["deploy", "-f", "app.toml"]));
    assert!(
        err.contains("app.toml:3:12: settings: instance_reuse must be between 1 and"),
        "{err}"
    );
    let err = stderr_of_failure(&vireo_in(
        dir,
        &["deploy", "-f", "app.toml", "--memory", "64"],
    ));
    assert!(
        err.contains("settings flags apply to `vireo deploy NAME FILE`"),
        "{err}"
    );
}

/// A project whose build copies `file` (or writes `bytes`) to the component.
fn project_building(dir: &Path, command: &str) {
    let manifest = format!(
        "name = \"app\"\ncomponent = \"out/app.wasm\"\n\n[build]\ncommand = '''mkdir -p out && {command}'''\n"
    );
    std::fs::write(dir.join("vireo.toml"), manifest).unwrap();
}

#[test]
fn build_runs_the_command_and_checks_the_component_as_deploy_would() {
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();

    project_building(
        dir,
        &format!("cp '{}' out/app.wasm", fixture("hello").display()),
    );
    let built = stdout(&vireo_in(dir, &["build"]));
    assert!(built.starts_with("app: out/app.wasm ("), "{built}");
    assert!(built.contains("KiB), built in"), "{built}");
    assert!(built.contains("a component Vireo runs"), "{built}");
    let report: Value =
        serde_json::from_slice(&vireo_in(dir, &["build", "-o", "json"]).stdout).unwrap();
    let size = std::fs::metadata(fixture("hello")).unwrap().len();
    assert_eq!(report["functions"][0]["size_bytes"], size, "{report}");

    // An empty core module: what wasm32-wasip1 or emscripten builds make.
    project_building(dir, r"printf '\0asm\1\0\0\0' > out/app.wasm");
    let err = stderr_of_failure(&vireo_in(dir, &["build"]));
    assert!(
        err.contains("This is a core wasm module, not a component"),
        "{err}"
    );
    assert!(err.contains("componentize-js"), "{err}");
    assert!(err.contains("cargo build --target wasm32-wasip2"), "{err}");

    project_building(dir, "echo 'export default {}' > out/app.wasm");
    let err = stderr_of_failure(&vireo_in(dir, &["build"]));
    assert!(err.contains("not WebAssembly at all"), "{err}");

    // A component that runs as a command, not an HTTP handler.
    project_building(
        dir,
        &format!("cp '{}' out/app.wasm", fixture("cli-command").display()),
    );
    let err = stderr_of_failure(&vireo_in(dir, &["build"]));
    assert!(
        err.contains("does not export `wasi:http/incoming-handler"),
        "{err}"
    );
    assert!(err.contains("does not handle HTTP requests"), "{err}");

    // An import of Spin's that Vireo knows but does not implement: refused unless the settings
    // allow linking it as a trap, which the build then says.
    project_building(
        dir,
        &format!("cp '{}' out/app.wasm", fixture("spin_import").display()),
    );
    let err = stderr_of_failure(&vireo_in(dir, &["build"]));
    assert!(
        err.contains("`fermyon:spin/llm@2.0.0`, which Vireo does not implement yet"),
        "{err}"
    );
    assert!(
        err.contains("set `allow_unimplemented_imports = true` under [settings]"),
        "{err}"
    );
    let manifest = std::fs::read_to_string(dir.join("vireo.toml")).unwrap();
    std::fs::write(
        dir.join("vireo.toml"),
        format!("{manifest}\n[settings]\nallow_unimplemented_imports = true\n"),
    )
    .unwrap();
    let built = stdout(&vireo_in(dir, &["build"]));
    assert!(
        built.contains("linked as traps (a call fails): fermyon:spin/llm@2.0.0"),
        "{built}"
    );

    project_building(
        dir,
        &format!("cp '{}' out/app.wasm", fixture("missing_import").display()),
    );
    let err = stderr_of_failure(&vireo_in(dir, &["build"]));
    assert!(
        err.contains("imports `acme:missing/api@1.0.0`, which Vireo does not provide"),
        "{err}"
    );
    assert!(
        err.contains("build it for the world `wasi:http/proxy`"),
        "{err}"
    );

    project_building(dir, "exit 3");
    let err = stderr_of_failure(&vireo_in(dir, &["build"]));
    assert!(err.contains("the build command of app failed"), "{err}");
}

#[test]
fn the_schema_accepts_the_manifest_and_rejects_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let schema_text = stdout(&vireo_in(dir.path(), &["schema"]));
    let schema: Value = serde_json::from_str(&schema_text).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    let example = include_str!("../../src/manifest/example.toml");
    let example: Value = toml::from_str(example).unwrap();
    let mut typo = example.clone();
    typo["settings"]["memry_mib"] = json!(1);
    let several = json!({"function": [example.clone(), example.clone()]});
    let verdicts = validate(&schema, &[example, typo, several]);
    assert_eq!(verdicts, ["valid", "invalid", "valid"]);
}

/// Each document's verdict under `schema`, from python-jsonschema (Draft 2020-12, the schema
/// itself checked first).
fn validate(schema: &Value, documents: &[Value]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schema.json"), schema.to_string()).unwrap();
    std::fs::write(
        dir.path().join("documents.json"),
        Value::from(documents.to_vec()).to_string(),
    )
    .unwrap();
    let script = r#"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open("schema.json"))
Draft202012Validator.check_schema(schema)
validator = Draft202012Validator(schema)
for document in json.load(open("documents.json")):
    print("valid" if validator.is_valid(document) else "invalid")
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .current_dir(dir.path())
        .output()
        .expect("python3 (scripts/test.sh installs it with jsonschema)");
    assert!(
        output.status.success(),
        "python-jsonschema failed (scripts/test.sh installs it): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// A running `vireo dev` and what it printed so far; stopped with SIGTERM when dropped, which
/// also stops the server it started.
struct Dev {
    child: std::process::Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Dev {
    fn start(dir: &Path) -> Dev {
        install_tls_provider();
        let mut child = Command::new(env!("CARGO_BIN_EXE_vireo"))
            .arg("dev")
            .current_dir(dir)
            .env("XDG_CONFIG_HOME", dir.join("cli-config"))
            .env_remove("VIREO_URL")
            .env_remove("VIREO_DATA")
            .env_remove("VIREO_API_KEY")
            .env_remove("VIREO_PROFILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run vireo dev");
        let collect = |pipe: Box<dyn std::io::Read + Send>| {
            let text = Arc::new(Mutex::new(String::new()));
            let sink = Arc::clone(&text);
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut text = sink.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                }
            });
            text
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        Dev {
            child,
            stdout,
            stderr,
        }
    }

    fn printed(&self) -> String {
        format!(
            "{}\n--- stderr ---\n{}",
            self.stdout.lock().unwrap(),
            self.stderr.lock().unwrap()
        )
    }

    fn stop(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("wait for vireo dev")
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.stop();
        }
    }
}

#[tokio::test]
async fn dev_serves_the_project_and_redeploys_when_a_source_changes() {
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    std::fs::create_dir(dir.join("src")).unwrap();
    change_source(dir, "echo");
    write_manifest(dir, "hello", "0 3 * * *");
    let mut dev = Dev::start(dir);
    let url = eventually(Duration::from_secs(60), || {
        let printed = dev.printed();
        async move {
            printed
                .lines()
                .find_map(|line| line.strip_prefix("vireo dev: a local server on "))
                .and_then(|rest| rest.split_whitespace().next())
                .map(str::to_string)
                .ok_or(printed)
        }
    })
    .await;
    let get = |path: &str| {
        let url = format!("{url}{path}");
        async move {
            let response = reqwest::get(&url).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            Ok::<_, String>((status, response.text().await.map_err(|e| e.to_string())?))
        }
    };
    let body = eventually(Duration::from_secs(60), || async {
        match get("/fn/default/app/").await? {
            (200, body) => Ok(body),
            other => Err(format!("{other:?}\n{}", dev.printed())),
        }
    })
    .await;
    assert_eq!(env_seen(&body), json!({"GREETING": "hello"}));
    assert!(
        dir.join(".vireo/vireo.db").exists(),
        "the store is in the project's .vireo/"
    );

    // Saving a source file rebuilds and redeploys: the hello fixture answers now, and the
    // line it prints shows up in dev's output.
    change_source(dir, "hello");
    eventually(Duration::from_secs(60), || async {
        match get("/fn/default/app/").await? {
            (200, body) if body == "hello, Vireo!\n" => Ok(()),
            other => Err(format!("{other:?}\n{}", dev.printed())),
        }
    })
    .await;
    eventually(Duration::from_secs(30), || {
        let printed = dev.printed();
        async move {
            if printed.contains("stdout hello called: /") {
                Ok(())
            } else {
                Err(printed)
            }
        }
    })
    .await;
    assert!(
        dev.printed().contains("deployed default/app version 2"),
        "{}",
        dev.printed()
    );

    // SIGTERM stops dev and the server it started.
    assert!(dev.stop().success(), "{}", dev.printed());
    assert!(
        get("/fn/default/app/").await.is_err(),
        "the local server still answers"
    );
}

#[tokio::test]
async fn event_sources_come_from_the_manifest_and_are_replaced_when_they_differ() {
    let redis = vireo_testsvc::Redis::shared();
    let mut connection = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let stream = "manifest-orders";
    // A source reads only a stream that exists.
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("payload")
        .arg("first")
        .query_async(&mut connection)
        .await
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    let project = tempfile::tempdir().unwrap();
    let write = |batch: &str| {
        let manifest = format!(
            "name = \"orders\"\ncomponent = \"{}\"\n\n[[sources]]\nname = \"orders-in\"\nkind = \"redis\"\nurl = \"{}\"\nstream = \"{stream}\"\n{batch}",
            fixture("echo").display(),
            redis.url()
        );
        std::fs::write(project.path().join("vireo.toml"), manifest).unwrap();
    };
    write("");
    let first = stdout(&server.cli_in(project.path(), &["deploy"]));
    assert!(first.contains("source orders-in: created"), "{first}");
    let again = stdout(&server.cli_in(project.path(), &["deploy"]));
    assert!(again.contains("source orders-in: unchanged"), "{again}");

    write("batch_size = 10\n");
    let plan = stdout(&server.cli_in(project.path(), &["deploy", "--dry-run"]));
    assert!(
        plan.contains("source orders-in: would be replaced"),
        "{plan}"
    );
    let (_, source) = server
        .get_json("/v1/namespaces/default/sources/orders-in")
        .await;
    assert_eq!(source["batch_size"], 100, "{source}");
    let replaced = stdout(&server.cli_in(project.path(), &["deploy"]));
    assert!(
        replaced.contains("source orders-in: replaced"),
        "{replaced}"
    );
    let (_, source) = server
        .get_json("/v1/namespaces/default/sources/orders-in")
        .await;
    assert_eq!(source["batch_size"], 10, "{source}");

    // The replaced source delivers what is published from now on.
    let _: String = redis::cmd("XADD")
        .arg(stream)
        .arg("*")
        .arg("payload")
        .arg("second")
        .query_async(&mut connection)
        .await
        .unwrap();
    eventually(Duration::from_secs(30), || async {
        let (_, source) = server
            .get_json("/v1/namespaces/default/sources/orders-in")
            .await;
        if source["acknowledged"].as_u64() >= Some(1) {
            Ok(())
        } else {
            Err(source.to_string())
        }
    })
    .await;
}

#[tokio::test]
async fn dev_makes_the_namespaces_the_manifest_names() {
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    let manifest = format!(
        "[[function]]\nname = \"hello\"\nnamespace = \"team-a\"\ncomponent = \"{}\"\n",
        fixture("hello").display()
    );
    std::fs::write(dir.join("vireo.toml"), manifest).unwrap();
    let mut dev = Dev::start(dir);
    eventually(Duration::from_secs(60), || {
        let printed = dev.printed();
        async move {
            let url = printed
                .lines()
                .find_map(|line| line.strip_prefix("vireo dev: a local server on "))
                .and_then(|rest| rest.split_whitespace().next())
                .ok_or(printed.clone())?;
            match reqwest::get(format!("{url}/fn/team-a/hello/")).await {
                Ok(response) if response.status() == 200 => Ok(()),
                other => Err(format!("{other:?}\n{printed}")),
            }
        }
    })
    .await;
    assert!(
        dev.printed()
            .contains("vireo dev: created the namespace team-a"),
        "{}",
        dev.printed()
    );
    assert!(dev.stop().success(), "{}", dev.printed());
}

#[tokio::test]
async fn bucket_notifications_come_from_the_manifest() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(data.path());
    server.cli_ok(&["buckets", "create", "uploads"]);
    let project = tempfile::tempdir().unwrap();
    let write = |prefix: &str| {
        let manifest = format!(
            "name = \"thumbs\"\ncomponent = \"{}\"\n\n[[notifications]]\nbucket = \"uploads\"\nevents = [\"created\"]\nprefix = \"{prefix}\"\n",
            fixture("echo").display()
        );
        std::fs::write(project.path().join("vireo.toml"), manifest).unwrap();
    };
    write("in/");
    let first = stdout(&server.cli_in(project.path(), &["deploy"]));
    assert!(
        first.contains("notification of bucket uploads: created"),
        "{first}"
    );
    let again = stdout(&server.cli_in(project.path(), &["deploy"]));
    assert!(
        again.contains("notification of bucket uploads: unchanged"),
        "{again}"
    );
    write("images/");
    let plan = stdout(&server.cli_in(project.path(), &["deploy", "--dry-run"]));
    assert!(
        plan.contains("notification of bucket uploads: would be replaced"),
        "{plan}"
    );
    let replaced = stdout(&server.cli_in(project.path(), &["deploy"]));
    assert!(
        replaced.contains("notification of bucket uploads: replaced"),
        "{replaced}"
    );
    let (status, listed) = server
        .get_json("/v1/namespaces/default/buckets/uploads/notifications")
        .await;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        listed,
        json!([{"function": "thumbs", "events": ["created"], "prefix": "images/", "suffix": ""}])
    );
}
