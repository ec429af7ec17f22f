use super::*;

const APP: &str = r#"
spin_manifest_version = 2

[application]
name = "shop"
version = "0.1.0"

[variables]
greeting = { default = "hello" }
region = { required = true }
api_token = { required = true, secret = true }

[[trigger.http]]
route = "/api/..."
component = "api"

[[trigger.http]]
route = "/api-health"
component = "api"

[[trigger.http]]
route = "/users/:id"
component = "api"

[[trigger.http]]
route = { private = true }
component = "internal"

[[trigger.redis]]
channel = "orders"
component = "worker"

[component.api]
source = "target/wasm32-wasip2/release/api.wasm"
allowed_outbound_hosts = ["https://payments.example.com", "https://{{ host }}"]
key_value_stores = ["default", "carts"]
sqlite_databases = ["default", "orders"]
environment = { STAGE = "prod" }
files = ["static/**"]
description = "the API"
[component.api.variables]
greeting = "{{ greeting }}, from {{region}}"
token = "{{ api_token }}"
bearer = "Bearer {{ api_token }}"
[component.api.build]
command = ["cargo build --target wasm32-wasip2 --release", "ls"]
workdir = "api"
watch = ["src/**/*.rs", "Cargo.toml"]

[component.internal]
source = "internal.wasm"

[component.worker]
source = "worker.wasm"
"#;

fn converted(given: &[(&str, &str)]) -> anyhow::Result<(Vec<FunctionSpec>, Vec<String>)> {
    let given = given
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    convert(APP, &given)
}

fn text(value: &str) -> VariableValue {
    VariableValue::Text(value.to_string())
}

#[test]
fn each_component_an_http_trigger_runs_becomes_a_function_with_its_routes() {
    let (functions, notes) = converted(&[("region", "eu")]).unwrap();
    let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["api", "internal"]);
    let api = &functions[0];
    let routes: Vec<&str> = api
        .routes
        .iter()
        .map(|r| r.route.get_ref().as_str())
        .collect();
    assert_eq!(routes, ["/api/*", "/api-health"]);
    assert!(functions[1].routes.is_empty());
    let expected = [
        "1 redis trigger(s) not mapped",
        "component api's route /users/:id not mapped: Vireo's routes have no named segments",
        "component internal is private (no route)",
        "component worker not deployed: no HTTP trigger runs it",
        "component api's files is not mapped",
        "invalid allowed_outbound_hosts entry \"https://{{ host }}\"",
        "component api opens the key-value store carts: create it with `vireo kv stores create carts`",
        "component api opens the SQLite database orders: create it with `vireo sqlite create orders`",
        "component api's variable bearer not mapped: it mixes text with the secret variable api_token",
    ];
    for expected in expected {
        assert!(
            notes.iter().any(|note| note.contains(expected)),
            "no note says {expected:?}: {notes:#?}"
        );
    }
    assert_eq!(notes.len(), expected.len(), "{notes:#?}");
}

#[test]
fn settings_carry_over_and_requests_are_shaped_as_spin_does() {
    let (functions, _) = converted(&[("region", "eu")]).unwrap();
    let settings = functions[0].settings();
    assert!(settings.spin_http);
    assert!(settings.allow_unimplemented_imports);
    assert_eq!(settings.env["STAGE"], "prod");
    assert_eq!(
        settings.allowed_outbound_hosts,
        ["https://payments.example.com"]
    );
    let stores: Vec<&str> = settings.key_value_stores.iter().map(Name::as_str).collect();
    assert_eq!(stores, ["carts", "default"]);
    let databases: Vec<&str> = settings.sqlite_databases.iter().map(Name::as_str).collect();
    assert_eq!(databases, ["default", "orders"]);
    assert_eq!(settings.variables["greeting"], text("hello, from eu"));
    assert_eq!(
        settings.variables["token"],
        VariableValue::Secret(SecretRef {
            secret: SecretName::parse("API_TOKEN").unwrap()
        })
    );
    assert!(!settings.variables.contains_key("bearer"));
}

#[test]
fn the_build_runs_in_its_workdir_and_watches_where_its_globs_start() {
    let (functions, _) = converted(&[("region", "eu")]).unwrap();
    let build = functions[0].build.as_ref().unwrap();
    assert_eq!(
        build.command,
        "cd 'api' && cargo build --target wasm32-wasip2 --release && ls"
    );
    assert_eq!(
        build.watch,
        [PathBuf::from("api/Cargo.toml"), PathBuf::from("api/src")]
    );
    assert_eq!(
        functions[0].component,
        PathBuf::from("target/wasm32-wasip2/release/api.wasm")
    );
}

#[test]
fn an_environment_value_overrides_a_default_and_a_required_variable_needs_one() {
    let (functions, _) = converted(&[("region", "us"), ("greeting", "hi")]).unwrap();
    assert_eq!(
        functions[0].settings().variables["greeting"],
        text("hi, from us")
    );
    let refused = converted(&[]).unwrap_err().to_string();
    assert!(
        refused.contains("the variable region is required")
            && refused.contains("SPIN_VARIABLE_REGION"),
        "{refused}"
    );
}

#[test]
fn routes_translate_to_vireo_patterns() {
    assert_eq!(vireo_route("/...").unwrap(), "/*");
    assert_eq!(vireo_route("/hello/...").unwrap(), "/hello/*");
    assert_eq!(vireo_route("/hello/").unwrap(), "/hello");
    assert_eq!(vireo_route("/").unwrap(), "/");
    let reserved = vireo_route("/fn/...").unwrap_err();
    assert!(reserved.contains("Vireo's own"), "{reserved}");
}

#[test]
fn manifests_vireo_cannot_read_are_refused_with_the_reason() {
    let old = convert("spin_manifest_version = \"1\"\n", &BTreeMap::new()).unwrap_err();
    assert!(old.to_string().contains("Vireo reads version 2"), "{old}");
    let remote = "spin_manifest_version = 2\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n\
                  [component.a]\nsource = { url = \"https://example.com/a.wasm\", digest = \"sha256:00\" }\n";
    let refused = convert(remote, &BTreeMap::new()).unwrap_err();
    assert!(
        refused.to_string().contains("not a local file"),
        "{refused}"
    );
    let dangling =
        "spin_manifest_version = 2\n[[trigger.http]]\nroute = \"/\"\ncomponent = \"b\"\n";
    let refused = convert(dangling, &BTreeMap::new()).unwrap_err();
    assert!(refused.to_string().contains("does not define"), "{refused}");
}
