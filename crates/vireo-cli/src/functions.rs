//! `vireo ls`, `versions`, `alias` and `rm`: looking at and managing functions.

use anyhow::Context as _;
use clap::Args;
use reqwest::Method;
use serde_json::json;
use vireo_core::{AliasName, Name};

use crate::args;
use crate::client::Client;
use crate::cron;
use crate::output::{self, Format};
use crate::views::{FunctionList, FunctionView, VersionList, VersionView};

#[derive(Args)]
pub struct VersionsArgs {
    /// The function whose versions to list.
    #[arg(value_parser = args::function_name)]
    name: Name,
}

#[derive(Args)]
pub struct AliasArgs {
    /// The function the alias belongs to.
    #[arg(value_parser = args::function_name)]
    name: Name,

    /// The alias, e.g. `prod`; call the function through it as NAME@ALIAS. `latest` is kept by
    /// Vireo itself.
    #[arg(value_parser = AliasName::parse)]
    alias: AliasName,

    /// The version the alias should point at (`8`), or versions with percentages summing to
    /// 100 to split its traffic (`7=95 8=5`: a canary of version 8).
    #[arg(required_unless_present = "delete", value_name = "VERSION[=PERCENT]", value_parser = parse_share)]
    versions: Vec<(u32, Option<u8>)>,

    /// Keep each caller on one version by this request header (e.g. `x-user-id`); raising a
    /// version's share then only moves callers to it.
    #[arg(long, value_name = "HEADER", conflicts_with = "sticky_cookie")]
    sticky_header: Option<String>,

    /// Keep each caller on one version by this cookie.
    #[arg(long, value_name = "COOKIE")]
    sticky_cookie: Option<String>,

    /// Delete the alias instead of pointing it somewhere.
    #[arg(long, conflicts_with_all = ["versions", "sticky_header", "sticky_cookie"])]
    delete: bool,
}

/// `8` or `8=5`.
fn parse_share(value: &str) -> Result<(u32, Option<u8>), String> {
    let (version, percent) = match value.split_once('=') {
        Some((version, percent)) => (version, Some(percent)),
        None => (value, None),
    };
    let version = version
        .parse()
        .map_err(|_| format!("{version:?} is not a version number"))?;
    let percent = percent
        .map(|p| {
            p.trim_end_matches('%')
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= 100)
                .ok_or_else(|| format!("{p:?} is not a percentage from 0 to 100"))
        })
        .transpose()?;
    Ok((version, percent))
}

/// The request body that points an alias at `versions`.
fn alias_body(args: &AliasArgs) -> anyhow::Result<serde_json::Value> {
    let sticky = match (&args.sticky_header, &args.sticky_cookie) {
        (Some(header), _) => json!({ "header": header }),
        (_, Some(cookie)) => json!({ "cookie": cookie }),
        _ => serde_json::Value::Null,
    };
    match args.versions.as_slice() {
        [(version, None | Some(100))] => Ok(json!({ "version": version, "sticky": sticky })),
        shares => {
            let versions = shares
                .iter()
                .map(|(version, percent)| match percent {
                    Some(weight) => Ok(json!({ "version": version, "weight": weight })),
                    None => anyhow::bail!(
                        "give every version of a split its share, as VERSION=PERCENT (7=95 8=5)"
                    ),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            Ok(json!({ "versions": versions, "sticky": sticky }))
        }
    }
}

#[derive(Args)]
pub struct RmArgs {
    /// The function to delete.
    #[arg(value_parser = args::function_name)]
    name: Name,
}

pub async fn list(client: &Client, format: Format) -> anyhow::Result<()> {
    let answer = client
        .json(client.request(Method::GET, &client.functions_path()))
        .await
        .with_context(|| format!("listing the functions in namespace {}", client.namespace()))?;
    output::emit(format, answer, |list: FunctionList| {
        functions_table(&list.functions)
    })
}

pub async fn versions(client: &Client, format: Format, args: VersionsArgs) -> anyhow::Result<()> {
    let answer = client
        .json(client.request(Method::GET, &client.function_path(&args.name, "/versions")))
        .await
        .with_context(|| format!("listing the versions of {}", client.qualified(&args.name)))?;
    output::emit(format, answer, |list: VersionList| {
        versions_table(&list.versions)
    })
}

pub async fn alias(client: &Client, format: Format, args: AliasArgs) -> anyhow::Result<()> {
    let path = client.function_path(&args.name, &format!("/aliases/{}", args.alias));
    let target = format!("{}@{}", client.qualified(&args.name), args.alias);
    // clap guarantees VERSION or --delete.
    if args.delete {
        client
            .no_content(client.request(Method::DELETE, &path))
            .await
            .with_context(|| format!("deleting alias {target}"))?;
        return confirm(format, &format!("deleted alias {target}\n"));
    }
    let body = alias_body(&args)?;
    let answer = client
        .json(client.request(Method::PUT, &path).json(&body))
        .await
        .with_context(|| format!("pointing alias {target} at {}", shares(&args.versions)))?;
    output::emit(format, answer, |_: FunctionView| {
        format!("alias {target} -> {}\n", shares(&args.versions))
    })
}

pub async fn remove(client: &Client, format: Format, args: RmArgs) -> anyhow::Result<()> {
    let function = client.qualified(&args.name);
    // What goes with it, read first so the message can say (the store deletes it all at once).
    let info: FunctionView = output::decode(
        client
            .json(client.request(Method::GET, &client.function_path(&args.name, "")))
            .await
            .with_context(|| format!("removing {function}"))?,
    )?;
    let scheduled: Vec<String> = cron::schedules_of(client, &args.name)
        .await?
        .iter()
        .filter_map(|schedule| schedule["name"].as_str().map(str::to_string))
        .collect();
    client
        .no_content(client.request(Method::DELETE, &client.function_path(&args.name, "")))
        .await
        .with_context(|| format!("removing {function}"))?;
    confirm(format, &removed_message(&function, &info, &scheduled))
}

/// What `vireo rm` removed, by name where names help.
fn removed_message(function: &str, info: &FunctionView, schedules: &[String]) -> String {
    let versions = info.latest_version.unwrap_or(0);
    let named = |(one, many): (&str, &str), names: Vec<&str>| match names.as_slice() {
        [] => format!("no {many}"),
        [name] => format!("{one} {name}"),
        names => format!("{many} {}", names.join(", ")),
    };
    let aliases = named(
        ("alias", "aliases"),
        info.aliases
            .keys()
            .map(String::as_str)
            .filter(|alias| *alias != "latest")
            .collect(),
    );
    let schedules = named(
        ("schedule", "schedules"),
        schedules.iter().map(String::as_str).collect(),
    );
    format!(
        "removed {function}: {versions} version{}, {aliases}, {schedules}, and its invocation \
         records, logs and async invocations\n",
        if versions == 1 { "" } else { "s" }
    )
}

/// Says what was done; with `-o json` the empty answer stays empty, so scripts see no stray text.
fn confirm(format: Format, message: &str) -> anyhow::Result<()> {
    match format {
        Format::Table => output::write_stdout(message.as_bytes()),
        Format::Json => Ok(()),
        Format::Csv => Err(output::csv_unsupported()),
    }
}

fn functions_table(functions: &[FunctionView]) -> String {
    output::table(
        ["NAME", "LATEST", "ALIASES", "CREATED"],
        functions.iter().map(|function| {
            [
                function.name.clone(),
                output::or_dash(function.latest_version),
                aliases(function),
                output::timestamp(function.created_at_us),
            ]
        }),
    )
}

/// `7 (95 %), 8 (5 %)`, or just `8`.
fn shares(versions: &[(u32, Option<u8>)]) -> String {
    versions
        .iter()
        .map(|(version, share)| match share {
            Some(percent) if versions.len() > 1 => format!("{version} ({percent} %)"),
            _ => version.to_string(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `latest=3, prod=7:95%+8:5%`: `latest` first, the others by name; a split alias with its
/// versions' shares.
pub fn aliases(function: &FunctionView) -> String {
    let latest = function.aliases.get_key_value(AliasName::LATEST);
    let others = function
        .aliases
        .iter()
        .filter(|(name, _)| *name != AliasName::LATEST);
    latest
        .into_iter()
        .chain(others)
        .map(|(name, version)| match function.splits.get(name) {
            Some(split) => {
                let shares: Vec<String> = split
                    .versions
                    .iter()
                    .map(|arm| format!("{}:{}%", arm.version, arm.weight))
                    .collect();
                format!("{name}={}", shares.join("+"))
            }
            None => format!("{name}={version}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn versions_table(versions: &[VersionView]) -> String {
    output::table(
        ["VERSION", "SHA256", "SIZE", "MEMORY", "TIMEOUT", "CREATED"],
        versions.iter().map(|version| {
            [
                version.version.to_string(),
                version.component_sha256.chars().take(12).collect(),
                output::size(version.component_size),
                format!("{} MiB", version.settings.memory_mib),
                output::duration_ms(version.settings.timeout_ms),
                output::timestamp(version.created_at_us),
            ]
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removal_names_what_went_with_the_function() {
        let info = |aliases: &[(&str, u32)]| FunctionView {
            name: "echo".into(),
            created_at_us: 0,
            latest_version: Some(3),
            aliases: aliases.iter().map(|(a, v)| (a.to_string(), *v)).collect(),
            splits: Default::default(),
            reuse_fallback_versions: Vec::new(),
        };
        assert_eq!(
            removed_message(
                "default/echo",
                &info(&[("latest", 3), ("prod", 2)]),
                &["nightly".into()]
            ),
            "removed default/echo: 3 versions, alias prod, schedule nightly, and its invocation \
             records, logs and async invocations\n"
        );
        assert_eq!(
            removed_message(
                "default/echo",
                &info(&[("latest", 3)]),
                &["a".into(), "b".into()]
            ),
            "removed default/echo: 3 versions, no aliases, schedules a, b, and its invocation \
             records, logs and async invocations\n"
        );
    }

    #[test]
    fn shares_are_parsed_and_a_split_needs_every_share() {
        assert_eq!(parse_share("8"), Ok((8, None)));
        assert_eq!(parse_share("8=5%"), Ok((8, Some(5))));
        assert!(parse_share("8=101").is_err());
        assert!(parse_share("x=5").is_err());
        let args = |versions: Vec<(u32, Option<u8>)>| AliasArgs {
            name: Name::parse("function", "app").unwrap(),
            alias: AliasName::parse("prod").unwrap(),
            versions,
            sticky_header: Some("x-user-id".into()),
            sticky_cookie: None,
            delete: false,
        };
        assert_eq!(
            alias_body(&args(vec![(7, Some(95)), (8, Some(5))])).unwrap(),
            json!({"versions": [{"version": 7, "weight": 95}, {"version": 8, "weight": 5}],
                   "sticky": {"header": "x-user-id"}})
        );
        assert_eq!(alias_body(&args(vec![(8, None)])).unwrap()["version"], 8);
        assert!(alias_body(&args(vec![(7, Some(95)), (8, None)])).is_err());
    }

    #[test]
    fn functions_table_lists_latest_alias_first() {
        let list: FunctionList = serde_json::from_str(
            r#"{"functions":[
                {"namespace":"default","name":"hello","created_at":"x","created_at_us":0,
                 "latest_version":3,"aliases":{"canary":3,"latest":3,"prod":2},"url":"/fn/default/hello"},
                {"namespace":"default","name":"empty","created_at":"x","created_at_us":0,
                 "latest_version":null,"aliases":{},"url":"/fn/default/empty"}]}"#,
        )
        .unwrap();
        let text = functions_table(&list.functions);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["NAME", "LATEST", "ALIASES", "CREATED"]
        );
        assert!(lines[1].contains("latest=3, canary=3, prod=2"), "{text}");
        assert!(lines[1].ends_with("1970-01-01T00:00:00Z"), "{text}");
        assert!(lines[2].starts_with("empty  -"), "{text}");
    }

    #[test]
    fn versions_table_shows_short_hashes_and_human_units() {
        let list: VersionList = serde_json::from_str(
            r#"{"versions":[{"namespace":"default","function":"hello","version":1,
                "component_sha256":"0123456789abcdef0123","component_size":97306,
                "settings":{"memory_mib":128,"timeout_ms":10000,"env":{},"max_concurrency":null},
                "created_at":"x","created_at_us":0}]}"#,
        )
        .unwrap();
        let text = versions_table(&list.versions);
        let row: Vec<&str> = text
            .lines()
            .nth(1)
            .unwrap()
            .split("  ")
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            row,
            [
                "1",
                "0123456789ab",
                "95.0 KiB",
                "128 MiB",
                "10s",
                "1970-01-01T00:00:00Z"
            ]
        );
    }
}
