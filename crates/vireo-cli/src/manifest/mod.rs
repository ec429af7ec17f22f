//! The project manifest `vireo.toml`: one function (or a `[[function]]` list) with its
//! component, how to build it, its version settings, aliases and schedules. Its settings are
//! core's `VersionSettings`, the very type the API takes, checked by the same validation.

mod schema;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;
use utoipa::ToSchema;
use vireo_core::message_filter::MessageFilter;
use vireo_core::source::DEFAULT_SOURCE_BATCH;
use vireo_core::{
    AliasName, AliasTarget, CronSchedule, InvokeAuth, MissedSlots, Name, ObjectEvent, RoutePattern,
    SecretName, SettingsLimits, SourceKind, SourceSpec, VersionSettings,
};

pub use schema::json_schema;

/// The file `vireo deploy` and `vireo build` look for in the current directory.
pub const FILE_NAME: &str = "vireo.toml";

/// A parsed and checked manifest, with where it was read from.
#[derive(Debug)]
pub struct Manifest {
    /// As the user knows it (`vireo.toml`, or the `-f` path), for messages.
    pub shown: String,
    /// The directory relative paths are taken from, and builds run in.
    pub dir: PathBuf,
    pub functions: Vec<FunctionSpec>,
    /// What the file asks that the deploy does not do (a Spin manifest's unmapped parts),
    /// reported with the deploy.
    pub notes: Vec<String>,
}

/// One function: what it is called, its built component, how to build it, and how it runs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionSpec {
    /// The function's name: lowercase letters, digits and `-`.
    #[schema(value_type = String)]
    pub name: Name,
    /// The namespace to deploy to [default: the CLI profile's, or `--namespace`].
    #[serde(default, deserialize_with = "namespace_name")]
    #[schema(value_type = Option<String>)]
    pub namespace: Option<Name>,
    /// The built component (`.wasm`), relative to this file's directory.
    #[schema(value_type = String)]
    pub component: PathBuf,
    /// How to build the component; without it the component must exist already.
    pub build: Option<BuildSpec>,
    /// The version settings, with the field names and shapes of the API's version settings;
    /// a field left out takes its default (not the previous version's).
    #[schema(value_type = Option<VersionSettings>)]
    pub settings: Option<Spanned<VersionSettings>>,
    /// Aliases this deploy sets: `"latest"` (the version the deploy makes or keeps), a version
    /// number, or a split as the API takes it (`{ versions = [...], sticky = ... }`).
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, AliasSpec>)]
    pub aliases: BTreeMap<AliasName, Spanned<AliasSpec>>,
    /// Cron schedules that invoke this function.
    #[serde(default)]
    pub schedules: Vec<ScheduleSpec>,
    /// Paths (and hosts) the function is published at besides `/fn/NAMESPACE/NAME`.
    #[serde(default)]
    pub routes: Vec<RouteSpec>,
    /// Event sources: streams of a broker whose every message invokes the function.
    #[serde(default)]
    pub sources: Vec<EventSourceSpec>,
    /// Buckets whose object changes invoke the function.
    #[serde(default)]
    pub notifications: Vec<NotificationSpec>,
}

/// How `vireo build` (and a `vireo deploy` that finds the component stale) builds the component.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BuildSpec {
    /// A shell command (`sh -c`), run in this file's directory.
    pub command: String,
    /// Files and directories of the sources: when one is newer than the component, `vireo
    /// deploy` builds first.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub watch: Vec<PathBuf>,
}

/// Where an alias points.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum AliasSpec {
    /// The version this deploy makes, or keeps when nothing changed.
    Latest(LatestWord),
    /// A version by number.
    Version(u32),
    /// Several versions by weight (summing to 100), optionally sticky.
    Split(AliasTarget),
}

/// The word `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum LatestWord {
    Latest,
}

/// A cron schedule of the function, with the API's schedule fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// The schedule's name in the namespace.
    #[serde(deserialize_with = "schedule_name")]
    #[schema(value_type = String)]
    pub name: Name,
    /// Five fields (`0 3 * * *`) or six with leading seconds.
    #[schema(value_type = String)]
    pub cron: Spanned<String>,
    /// IANA time zone the expression is read in [default: UTC].
    pub time_zone: Option<String>,
    /// Body of every fired invocation (sent as JSON when it parses as JSON, else as text).
    #[serde(default)]
    pub payload: String,
    /// Slots missed while no server ran: `skip` (default) or `catch-up-one`.
    #[serde(default)]
    pub missed: MissedSlots,
    /// The alias the schedule invokes [default: latest].
    #[schema(value_type = Option<String>)]
    pub alias: Option<AliasName>,
}

/// A route to the function, as `vireo routes add` makes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// `[HOST]/PATH`: `/hello`, `/orders/*` (a prefix), `api.example.com/orders/*`.
    #[schema(value_type = String)]
    pub route: Spanned<String>,
    /// The alias the route invokes [default: latest].
    #[schema(value_type = Option<String>)]
    pub alias: Option<AliasName>,
    /// Who may call the function through this route, instead of the version's own
    /// `invoke_auth` [default: the version's].
    pub invoke_auth: Option<InvokeAuth>,
}

/// An event source invoking the function, with the API's source fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSourceSpec {
    /// The source's name in the namespace.
    #[serde(deserialize_with = "source_name")]
    #[schema(value_type = String)]
    pub name: Name,
    /// The broker: `redis`, `nats`, `mqtt`, `postgres` or `amqp` (RabbitMQ).
    pub kind: SourceKind,
    /// The broker's URL, without a password (`redis://127.0.0.1:6379/0`,
    /// `nats://127.0.0.1:4222`, `mqtt://127.0.0.1:1883`, `amqp://guest@127.0.0.1:5672/%2f`).
    #[schema(value_type = String)]
    pub url: Spanned<String>,
    /// What is read: a Redis stream key, a JetStream stream, an MQTT topic filter, a
    /// PostgreSQL table, a RabbitMQ queue.
    pub stream: String,
    /// Only the messages on subjects matching this filter (JetStream) [default: all].
    pub subject: Option<String>,
    /// A secret of the namespace holding the broker's password.
    #[schema(value_type = Option<String>)]
    pub password_secret: Option<SecretName>,
    /// Most messages taken per receive, and per invocation when batching [default: 100, at
    /// most 1000].
    pub batch_size: Option<u32>,
    /// Deliver up to `batch_size` messages per invocation as a JSON array, gathered for at most
    /// this many milliseconds (at most 5000) [default: one invocation per message].
    pub batch_window_ms: Option<u32>,
    /// Only messages whose JSON body matches invoke the function: fields each with a list of
    /// patterns (`{ type = ["order.created"], amount = [{ numeric = [">", 100] }] }`; also
    /// prefix, suffix, exists, anything-but; tables descend) [default: every message].
    #[schema(value_type = Option<Object>)]
    pub filter: Option<MessageFilter>,
    /// MQTT only: the subscription's QoS, 1 (at least once) or 0 (best effort) [default: 1].
    pub qos: Option<u8>,
    /// The alias the source invokes [default: latest].
    #[schema(value_type = Option<String>)]
    pub alias: Option<AliasName>,
}

impl EventSourceSpec {
    /// Where it reads, as core checks and stores it.
    pub fn spec(&self) -> SourceSpec {
        SourceSpec {
            kind: self.kind,
            url: self.url.get_ref().clone(),
            stream: self.stream.clone(),
            subject: self.subject.clone(),
            password_secret: self.password_secret.clone(),
            batch_size: self.batch_size.unwrap_or(DEFAULT_SOURCE_BATCH),
            batch_window_ms: self.batch_window_ms,
            filter: self.filter.clone(),
            qos: self.qos,
        }
    }
}

/// Changes to a bucket's objects that invoke the function, as `vireo buckets notify` sets.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NotificationSpec {
    /// A bucket of the namespace.
    #[serde(deserialize_with = "bucket_name")]
    #[schema(value_type = String)]
    pub bucket: Name,
    /// `created`, `deleted` or both.
    #[schema(value_type = Vec<String>)]
    pub events: Spanned<BTreeSet<ObjectEvent>>,
    /// Only keys starting with this [default: every key].
    #[serde(default)]
    pub prefix: String,
    /// Only keys ending with this [default: every key].
    #[serde(default)]
    pub suffix: String,
}

/// Several functions in one file.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FunctionList {
    /// The functions, each with the keys of a one-function file.
    pub function: Vec<FunctionSpec>,
}

/// `Name`'s own deserializing calls every name a function's, in its errors; these say what
/// the name is of.
fn namespace_name<'de, D: serde::Deserializer<'de>>(names: D) -> Result<Option<Name>, D::Error> {
    Option::<String>::deserialize(names)?
        .map(|name| Name::parse("namespace", &name).map_err(serde::de::Error::custom))
        .transpose()
}

fn schedule_name<'de, D: serde::Deserializer<'de>>(names: D) -> Result<Name, D::Error> {
    Name::parse("schedule", &String::deserialize(names)?).map_err(serde::de::Error::custom)
}

fn source_name<'de, D: serde::Deserializer<'de>>(names: D) -> Result<Name, D::Error> {
    Name::parse("source", &String::deserialize(names)?).map_err(serde::de::Error::custom)
}

fn bucket_name<'de, D: serde::Deserializer<'de>>(names: D) -> Result<Name, D::Error> {
    Name::parse("bucket", &String::deserialize(names)?).map_err(serde::de::Error::custom)
}

impl FunctionSpec {
    /// The settings the version gets: the file's, or all defaults.
    pub fn settings(&self) -> VersionSettings {
        self.settings
            .as_ref()
            .map(|settings| settings.get_ref().clone())
            .unwrap_or_default()
    }
}

/// What is wrong with a manifest, at `file:line:column` when it is one place.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ManifestError(String);

impl Manifest {
    /// Reads `path`, or `./vireo.toml` when none is given.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let (path, shown) = match path {
            Some(path) => (path.to_path_buf(), path.display().to_string()),
            None => (PathBuf::from(FILE_NAME), FILE_NAME.to_string()),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && shown == FILE_NAME => {
                anyhow::bail!(
                    "no {FILE_NAME} in this directory: run this in a project's directory, pass \
                     -f PATH, or deploy one component with `vireo deploy NAME FILE`"
                )
            }
            Err(err) => return Err(anyhow::Error::new(err).context(format!("reading {shown}"))),
        };
        let functions = parse(&shown, &text)?;
        Ok(Self {
            shown,
            dir: directory_of(&path),
            functions,
            notes: Vec::new(),
        })
    }

    /// A path of the manifest, relative to its directory.
    pub fn path_of(&self, relative: &Path) -> PathBuf {
        if self.dir == Path::new(".") {
            relative.to_path_buf()
        } else {
            self.dir.join(relative)
        }
    }
}

/// The directory a manifest's relative paths are taken from: the one the file is in.
pub fn directory_of(manifest: &Path) -> PathBuf {
    match manifest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The functions `text` (the file `shown`) defines, checked as the server checks them.
pub fn parse(shown: &str, text: &str) -> Result<Vec<FunctionSpec>, ManifestError> {
    let at = |span: Option<Range<usize>>, message: &str| located(shown, text, span, message);
    let toml_error = |err: toml::de::Error| at(err.span(), err.message());
    let table: toml::Table = toml::from_str(text).map_err(toml_error)?;
    let functions = if table.contains_key("function") {
        toml::from_str::<FunctionList>(text)
            .map_err(toml_error)?
            .function
    } else {
        vec![toml::from_str::<FunctionSpec>(text).map_err(toml_error)?]
    };
    if functions.is_empty() {
        return Err(at(None, "the `function` list is empty"));
    }
    for function in &functions {
        check(function).map_err(|(span, message)| at(span, &message))?;
    }
    let mut seen = std::collections::BTreeSet::new();
    for function in &functions {
        let namespace = function.namespace.as_ref().map(Name::as_str);
        if !seen.insert((namespace, function.name.as_str())) {
            return Err(at(
                None,
                &format!("the function {} is defined twice", function.name),
            ));
        }
    }
    Ok(functions)
}

/// The checks serde cannot make: the settings' validation (the server's own maximums are the
/// server's to check), alias splits and cron expressions.
fn check(function: &FunctionSpec) -> Result<(), (Option<Range<usize>>, String)> {
    /// Only the server knows its maximums; every other bound is checked here.
    const UNBOUNDED: SettingsLimits = SettingsLimits {
        max_memory_mib: u32::MAX,
        max_timeout_ms: u64::MAX,
    };
    if let Some(settings) = &function.settings {
        settings
            .get_ref()
            .validate(&UNBOUNDED)
            .map_err(|err| (Some(settings.span()), format!("settings: {err}")))?;
    }
    for (alias, target) in &function.aliases {
        if let AliasSpec::Split(split) = target.get_ref() {
            split
                .validate()
                .map_err(|err| (Some(target.span()), format!("alias {alias}: {err}")))?;
        }
    }
    for route in &function.routes {
        RoutePattern::parse(route.route.get_ref())
            .map_err(|err| (Some(route.route.span()), format!("route: {err}")))?;
    }
    for source in &function.sources {
        source.spec().validate().map_err(|err| {
            (
                Some(source.url.span()),
                format!("source {}: {err}", source.name),
            )
        })?;
    }
    for notification in &function.notifications {
        if notification.events.get_ref().is_empty() {
            return Err((
                Some(notification.events.span()),
                "notification: events must name at least one of created and deleted".to_string(),
            ));
        }
    }
    for schedule in &function.schedules {
        CronSchedule::parse(schedule.cron.get_ref(), schedule.time_zone.as_deref()).map_err(
            |err| {
                (
                    Some(schedule.cron.span()),
                    format!("schedule {}: {err}", schedule.name),
                )
            },
        )?;
    }
    Ok(())
}

/// `file:line:column: message` for a byte span of `text` (lines and columns count from 1).
fn located(shown: &str, text: &str, span: Option<Range<usize>>, message: &str) -> ManifestError {
    let message = message.trim_end();
    let Some(span) = span else {
        return ManifestError(format!("{shown}: {message}"));
    };
    let before = &text[..span.start.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, last)| last)
        .chars()
        .count()
        + 1;
    ManifestError(format!("{shown}:{line}:{column}: {message}"))
}

#[cfg(test)]
mod tests;
