//! `vireo deploy --from-spin spin.toml`: a Spin application manifest (version 2) read as a
//! Vireo project manifest. Every component an HTTP trigger names becomes a function with its
//! routes, outbound hosts, key-value stores, environment and variables, handed requests as
//! Spin's HTTP trigger does (`spin_http`). What Vireo cannot map is kept as a note the deploy
//! reports; nothing is dropped silently.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Deserialize;
use toml::{Spanned, Table};
use vireo_core::egress::AllowList;
use vireo_core::variables::{SecretRef, VariableValue};
use vireo_core::{Name, RoutePattern, SecretName, VersionSettings};

use crate::manifest::{self, BuildSpec, FunctionSpec, Manifest, RouteSpec};

/// The file `vireo deploy --from-spin` reads when given no path.
pub const FILE_NAME: &str = "spin.toml";

/// Where Spin's environment provider reads an application variable: `SPIN_VARIABLE_<NAME>`.
const VARIABLE_ENV_PREFIX: &str = "SPIN_VARIABLE_";

#[derive(Deserialize)]
struct SpinManifest {
    spin_manifest_version: toml::Value,
    #[serde(default)]
    variables: BTreeMap<String, AppVariable>,
    #[serde(default)]
    trigger: BTreeMap<String, Vec<Table>>,
    #[serde(default)]
    component: BTreeMap<String, Component>,
}

/// An application variable: its default, or required, and whether it is a secret.
#[derive(Deserialize)]
struct AppVariable {
    default: Option<String>,
    #[serde(default)]
    secret: bool,
}

#[derive(Deserialize)]
struct HttpTrigger {
    component: toml::Value,
    route: toml::Value,
    executor: Option<Table>,
}

#[derive(Deserialize)]
struct Component {
    source: toml::Value,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    build: Option<ComponentBuild>,
    /// Everything else the component says, checked against what is known to be harmless.
    #[serde(flatten)]
    rest: Table,
}

#[derive(Deserialize)]
struct ComponentBuild {
    command: Commands,
    workdir: Option<String>,
    #[serde(default)]
    watch: Vec<String>,
}

/// One shell command, or several run in turn.
#[derive(Deserialize)]
#[serde(untagged)]
enum Commands {
    One(String),
    Several(Vec<String>),
}

/// Keys of a component that change nothing about how it runs.
const IGNORED_COMPONENT_KEYS: [&str; 3] = ["description", "exclude_files", "tool"];

/// Reads the Spin manifest at `path` (or `./spin.toml`).
pub fn load(path: Option<&Path>) -> anyhow::Result<Manifest> {
    let path = path.map_or_else(|| PathBuf::from(FILE_NAME), Path::to_path_buf);
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {shown}"))?;
    let variables = std::env::vars()
        .filter_map(|(key, value)| {
            let name = key.strip_prefix(VARIABLE_ENV_PREFIX)?;
            Some((name.to_ascii_lowercase(), value))
        })
        .collect();
    let (functions, notes) = convert(&text, &variables).with_context(|| format!("in {shown}"))?;
    Ok(Manifest {
        shown,
        dir: manifest::directory_of(&path),
        functions,
        notes,
    })
}

/// The functions a Spin manifest defines and what of it is not mapped. `given` holds values of
/// application variables from the environment, as Spin's `SPIN_VARIABLE_*` provider reads them.
fn convert(
    text: &str,
    given: &BTreeMap<String, String>,
) -> anyhow::Result<(Vec<FunctionSpec>, Vec<String>)> {
    let manifest: SpinManifest = toml::from_str(text).map_err(|err| anyhow::anyhow!("{err}"))?;
    if manifest.spin_manifest_version != toml::Value::Integer(2) {
        bail!(
            "spin_manifest_version is {}; Vireo reads version 2 (`spin doctor` updates an older manifest)",
            manifest.spin_manifest_version
        );
    }
    let mut notes = Vec::new();
    let variables = app_variables(&manifest.variables, given)?;
    let mut routes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (kind, triggers) in &manifest.trigger {
        if kind != "http" {
            notes.push(format!(
                "{} {kind} trigger(s) not mapped: Vireo runs Spin components on HTTP only",
                triggers.len()
            ));
            continue;
        }
        for trigger in triggers {
            let trigger: HttpTrigger = trigger
                .clone()
                .try_into()
                .context("an HTTP trigger needs `component` and `route`")?;
            http_trigger(trigger, &mut routes, &mut notes);
        }
    }
    let mut functions = Vec::new();
    for (id, component) in manifest.component {
        let Some(routes) = routes.remove(&id) else {
            notes.push(format!(
                "component {id} not deployed: no HTTP trigger runs it"
            ));
            continue;
        };
        functions.push(function(&id, component, routes, &variables, &mut notes)?);
    }
    if let Some(id) = routes.keys().next() {
        bail!("an HTTP trigger names the component {id}, which the manifest does not define");
    }
    if functions.is_empty() {
        bail!("no component is run by an HTTP trigger: there is nothing Vireo can deploy");
    }
    Ok((functions, notes))
}

/// Each application variable as a version binds it: a secret to the namespace's secret of the
/// same name in capitals, any other to its value (from the environment, else its default).
fn app_variables(
    declared: &BTreeMap<String, AppVariable>,
    given: &BTreeMap<String, String>,
) -> anyhow::Result<BTreeMap<String, VariableValue>> {
    let mut bound = BTreeMap::new();
    for (name, variable) in declared {
        let value = if variable.secret {
            let secret = SecretName::parse(&name.to_ascii_uppercase())
                .with_context(|| format!("the secret variable {name}"))?;
            VariableValue::Secret(SecretRef { secret })
        } else {
            match given.get(name).or(variable.default.as_ref()) {
                Some(value) => VariableValue::Text(value.clone()),
                None => bail!(
                    "the variable {name} is required and has no value: set {VARIABLE_ENV_PREFIX}{} for the deploy, as for `spin up`",
                    name.to_ascii_uppercase()
                ),
            }
        };
        bound.insert(name.clone(), value);
    }
    Ok(bound)
}

/// Records the route of one HTTP trigger under its component, or a note why it has none.
fn http_trigger(
    trigger: HttpTrigger,
    routes: &mut BTreeMap<String, Vec<String>>,
    notes: &mut Vec<String>,
) {
    let toml::Value::String(id) = trigger.component else {
        notes.push(
            "an HTTP trigger with a component defined inline is not mapped: give the component \
             its own [component.ID] table"
                .to_string(),
        );
        return;
    };
    let executor = trigger
        .executor
        .as_ref()
        .and_then(|executor| executor.get("type"))
        .and_then(toml::Value::as_str);
    if let Some(executor) = executor.filter(|executor| !matches!(*executor, "spin" | "http")) {
        notes.push(format!(
            "component {id}'s {executor} executor is not mapped: Vireo runs wasi:http components"
        ));
        return;
    }
    let entry = routes.entry(id.clone()).or_default();
    match trigger.route {
        toml::Value::String(route) => match vireo_route(&route) {
            Ok(route) => entry.push(route),
            Err(why) => notes.push(format!("component {id}'s route {route} not mapped: {why}")),
        },
        _ => notes.push(format!(
            "component {id} is private (no route): it answers only at /fn/NAMESPACE/{id}"
        )),
    }
}

/// A Spin route (`/hello`, `/hello/...`, `/...`) as a Vireo route pattern (`/hello`,
/// `/hello/*`, `/*`).
fn vireo_route(route: &str) -> Result<String, String> {
    if route.split('/').any(|segment| segment.starts_with(':')) {
        return Err("Vireo's routes have no named segments".to_string());
    }
    let pattern = match route.strip_suffix("/...") {
        Some(prefix) => format!("{prefix}/*"),
        None if route.len() > 1 => route.trim_end_matches('/').to_string(),
        None => route.to_string(),
    };
    RoutePattern::parse(&pattern)
        .map(|pattern| pattern.to_string())
        .map_err(|err| err.to_string())
}

fn function(
    id: &str,
    component: Component,
    routes: Vec<String>,
    app_variables: &BTreeMap<String, VariableValue>,
    notes: &mut Vec<String>,
) -> anyhow::Result<FunctionSpec> {
    let name = Name::parse("function", id).with_context(|| format!("component {id}"))?;
    let toml::Value::String(source) = component.source else {
        bail!(
            "component {id}'s source is not a local file: download it first and name the .wasm file"
        );
    };
    for key in component.rest.keys() {
        if !IGNORED_COMPONENT_KEYS.contains(&key.as_str()) {
            notes.push(format!("component {id}'s {key} is not mapped"));
        }
    }
    let mut settings = VersionSettings {
        env: component.environment,
        spin_http: true,
        // Spin implements every interface its SDKs import; here one Vireo lacks traps when
        // called, and the deploy names it, rather than refusing the whole application.
        allow_unimplemented_imports: true,
        ..VersionSettings::default()
    };
    for host in component.allowed_outbound_hosts {
        match AllowList::parse(std::slice::from_ref(&host)) {
            Ok(_) => settings.allowed_outbound_hosts.push(host),
            Err(err) => notes.push(format!("component {id}: {err}; not mapped")),
        }
    }
    let grants = [
        (
            component.key_value_stores,
            "key-value store",
            "vireo kv stores create",
            &mut settings.key_value_stores,
        ),
        (
            component.sqlite_databases,
            "SQLite database",
            "vireo sqlite create",
            &mut settings.sqlite_databases,
        ),
    ];
    for (names, what, create, granted) in grants {
        for name in names {
            match Name::parse(what, &name) {
                Ok(name) => {
                    if name.as_str() != "default" {
                        notes.push(format!(
                            "component {id} opens the {what} {name}: create it with `{create} {name}` if the namespace lacks it"
                        ));
                    }
                    granted.insert(name);
                }
                Err(err) => notes.push(format!("component {id}: {err}; not mapped")),
            }
        }
    }
    for (variable, template) in component.variables {
        match bind(&template, app_variables) {
            Ok(value) => {
                settings.variables.insert(variable, value);
            }
            Err(why) => notes.push(format!(
                "component {id}'s variable {variable} not mapped: {why}"
            )),
        }
    }
    let routes = routes
        .into_iter()
        .map(|route| RouteSpec {
            route: Spanned::new(0..0, route),
            alias: None,
            invoke_auth: None,
        })
        .collect();
    Ok(FunctionSpec {
        name,
        namespace: None,
        component: PathBuf::from(source),
        build: component.build.map(build_spec),
        settings: Some(Spanned::new(0..0, settings)),
        aliases: BTreeMap::new(),
        schedules: Vec::new(),
        routes,
        sources: Vec::new(),
        notifications: Vec::new(),
    })
}

/// A component variable's value: text, with `{{ name }}` replaced by application variables; a
/// value that is one secret variable whole is bound to that secret.
fn bind(
    template: &str,
    app_variables: &BTreeMap<String, VariableValue>,
) -> Result<VariableValue, String> {
    let mut text = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| format!("{template:?} has an unclosed {{{{"))?;
        let name = rest[start + 2..start + end].trim();
        let value = app_variables
            .get(name)
            .ok_or_else(|| format!("the application declares no variable {name}"))?;
        match value {
            VariableValue::Text(value) => {
                text.push_str(&rest[..start]);
                text.push_str(value);
            }
            VariableValue::Secret(_) if template.trim() == rest[start..start + end + 2].trim() => {
                return Ok(value.clone());
            }
            VariableValue::Secret(_) => {
                return Err(format!(
                    "it mixes text with the secret variable {name}, and Vireo binds a variable to a whole secret"
                ));
            }
        }
        rest = &rest[start + end + 2..];
    }
    text.push_str(rest);
    Ok(VariableValue::Text(text))
}

/// Spin's build: the command run in `workdir`, rebuilt when a watched file changes. Vireo
/// watches files and directories, so a glob is watched from the directory it starts in.
fn build_spec(build: ComponentBuild) -> BuildSpec {
    let command = match build.command {
        Commands::One(command) => command,
        Commands::Several(commands) => commands.join(" && "),
    };
    let command = match &build.workdir {
        Some(workdir) => format!("cd '{}' && {command}", workdir.replace('\'', r"'\''")),
        None => command,
    };
    let base = build.workdir.map(PathBuf::from).unwrap_or_default();
    let watch: BTreeSet<PathBuf> = build
        .watch
        .iter()
        .map(|glob| {
            let fixed: Vec<&str> = glob
                .split('/')
                .take_while(|part| !part.contains(['*', '?', '[', '{']))
                .collect();
            match base.join(fixed.join("/")) {
                path if path.as_os_str().is_empty() => PathBuf::from("."),
                path => path,
            }
        })
        .collect();
    BuildSpec {
        command,
        watch: watch.into_iter().collect(),
    }
}

#[cfg(test)]
mod tests;
