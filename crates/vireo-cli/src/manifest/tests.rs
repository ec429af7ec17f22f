use super::*;

/// A manifest with every part (the e2e schema test validates the same file).
const EXAMPLE: &str = include_str!("example.toml");

fn error(text: &str) -> String {
    parse("vireo.toml", text).unwrap_err().to_string()
}

#[test]
fn the_example_parses_into_the_api_settings() {
    let functions = parse("vireo.toml", EXAMPLE).unwrap();
    let [greet] = functions.as_slice() else {
        panic!("one function")
    };
    assert_eq!(greet.name.as_str(), "greet");
    assert_eq!(greet.component, PathBuf::from("dist/greet.wasm"));
    let build = greet.build.as_ref().unwrap();
    assert_eq!(build.command, "npm run build");
    assert_eq!(
        build.watch,
        [PathBuf::from("src"), PathBuf::from("package.json")]
    );
    let settings = greet.settings();
    let expected: VersionSettings = serde_json::from_value(serde_json::json!({
        "memory_mib": 128,
        "timeout_ms": 10000,
        "env": {"GREETING": "hello"},
        "key_value_stores": ["default"],
        "variables": {"api_url": "https://api.example.com", "db_password": {"secret": "DB_PASSWORD"}},
        "invoke_auth": "key",
        "allowed_outbound_hosts": ["https://api.example.com"],
    }))
    .unwrap();
    assert_eq!(settings, expected);
    let alias = |name: &str| {
        greet.aliases[&AliasName::parse(name).unwrap()]
            .get_ref()
            .clone()
    };
    assert_eq!(alias("live"), AliasSpec::Latest(LatestWord::Latest));
    assert_eq!(alias("stable"), AliasSpec::Version(1));
    assert!(matches!(alias("canary"), AliasSpec::Split(split) if split.versions.len() == 2));
    assert_eq!(greet.schedules[0].cron.get_ref(), "0 3 * * *");
    assert_eq!(greet.routes[0].route.get_ref(), "/greet");
    assert_eq!(
        greet.routes[0].invoke_auth,
        Some(vireo_core::InvokeAuth::Public)
    );
}

#[test]
fn a_file_without_settings_gets_the_default_settings() {
    let functions = parse("vireo.toml", "name = \"hi\"\ncomponent = \"hi.wasm\"\n").unwrap();
    assert_eq!(functions[0].settings(), VersionSettings::default());
    assert!(functions[0].build.is_none() && functions[0].aliases.is_empty());
}

#[test]
fn unknown_keys_are_named_with_their_line_and_column() {
    let err = error(
        "name = \"hi\"\ncomponent = \"hi.wasm\"\n\n[settings]\nmemory_mib = 64\n\nmemry_mib = 1\n",
    );
    assert!(
        err.starts_with("vireo.toml:7:1: unknown field `memry_mib`, expected one of"),
        "{err}"
    );
    assert!(err.contains("`memory_mib`"), "{err}");
    let err = error("name = \"hi\"\ncomponent = \"hi.wasm\"\ncomponnet = 1\n");
    assert!(
        err.starts_with("vireo.toml:3:1: unknown field `componnet`"),
        "{err}"
    );
    let err = error("component = \"hi.wasm\"\n");
    assert!(err.contains("missing field `name`"), "{err}");
    let err = error("name = \"hi\"\ncomponent = \"hi.wasm\"\n[settings]\nmemory_mib = \"lots\"\n");
    assert!(err.starts_with("vireo.toml:4:14: invalid type"), "{err}");
    let err = error("name = \"hi\"\nnamespace = \"Team\"\ncomponent = \"hi.wasm\"\n");
    assert!(
        err.starts_with("vireo.toml:2:13: invalid namespace name \"Team\""),
        "{err}"
    );
    let err = error(
        "name = \"hi\"\ncomponent = \"hi.wasm\"\n[[schedules]]\nname = \"Nightly\"\ncron = \"0 3 * * *\"\n",
    );
    assert!(
        err.starts_with("vireo.toml:4:8: invalid schedule name"),
        "{err}"
    );
    let err = error("name = \"hi\"\ncomponent = \"hi.wasm\"\nname = \"again\"\n");
    assert!(err.starts_with("vireo.toml:3:1: "), "{err}");
}

#[test]
fn settings_get_the_servers_validation_at_their_table() {
    let err = error("name = \"hi\"\ncomponent = \"hi.wasm\"\n\n[settings]\ninstance_reuse = 0\n");
    assert!(
        err.starts_with("vireo.toml:4:1: settings: instance_reuse must be between 1 and"),
        "{err}"
    );
    let err =
        error("name = \"hi\"\ncomponent = \"hi.wasm\"\nsettings = { env = { \"1X\" = \"v\" } }\n");
    assert!(
        err.contains("vireo.toml:3:12: settings: invalid environment variable name"),
        "{err}"
    );
}

#[test]
fn aliases_and_triggers_are_checked() {
    let err = error(
        "name = \"hi\"\ncomponent = \"hi.wasm\"\n[aliases]\nlive = { versions = [{ version = 1, weight = 60 }] }\n",
    );
    assert!(err.starts_with("vireo.toml:4:8: alias live: "), "{err}");
    let err = error("name = \"hi\"\ncomponent = \"hi.wasm\"\n[aliases]\nlive = \"newest\"\n");
    assert!(err.starts_with("vireo.toml:4:8: "), "{err}");
    let err = error(
        "name = \"hi\"\ncomponent = \"hi.wasm\"\n[[schedules]]\nname = \"n\"\ncron = \"0 3 * *\"\n",
    );
    assert!(
        err.starts_with("vireo.toml:5:8: schedule n: invalid cron expression"),
        "{err}"
    );
    let err = error("name = \"hi\"\ncomponent = \"hi.wasm\"\n[[routes]]\nroute = \"greet\"\n");
    assert!(err.starts_with("vireo.toml:4:9: route: "), "{err}");
    let err = error(
        "name = \"hi\"\ncomponent = \"hi.wasm\"\n[[sources]]\nname = \"in\"\nkind = \"redis\"\nurl = \"http://127.0.0.1:6379\"\nstream = \"s\"\n",
    );
    assert!(err.starts_with("vireo.toml:6:7: source in: "), "{err}");
    let err = error(
        "name = \"hi\"\ncomponent = \"hi.wasm\"\n[[notifications]]\nbucket = \"up\"\nevents = []\n",
    );
    assert!(
        err.starts_with("vireo.toml:5:10: notification: events must name"),
        "{err}"
    );
}

#[test]
fn several_functions_come_as_a_list() {
    let text = "[[function]]\nname = \"a\"\ncomponent = \"a.wasm\"\n\n[[function]]\nname = \"b\"\ncomponent = \"b.wasm\"\n[function.settings]\nmemory_mib = 64\n";
    let functions = parse("vireo.toml", text).unwrap();
    let names: Vec<&str> = functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(functions[1].settings().memory_mib, 64);
    let err = error("name = \"a\"\n[[function]]\nname = \"b\"\ncomponent = \"b.wasm\"\n");
    assert!(
        err.contains("unknown field `name`, expected `function`"),
        "{err}"
    );
    let err = error(
        "[[function]]\nname = \"a\"\ncomponent = \"a.wasm\"\n[[function]]\nname = \"a\"\ncomponent = \"b.wasm\"\n",
    );
    assert!(err.contains("the function a is defined twice"), "{err}");
}

#[test]
fn the_schema_describes_the_manifest() {
    let schema = json_schema();
    let text = schema.to_string();
    assert!(!text.contains("#/components/"), "{text}");
    let function = &schema["$defs"]["FunctionSpec"];
    assert_eq!(function["additionalProperties"], serde_json::json!(false));
    assert!(function["properties"]["settings"].is_object());
    let settings = &schema["$defs"]["VersionSettings"];
    assert!(
        settings["properties"]["memory_mib"].is_object(),
        "{settings}"
    );
    assert_eq!(settings["additionalProperties"], serde_json::json!(false));
}
