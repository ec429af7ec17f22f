//! `vireo describe NAME`: one function at a glance — where it answers, its aliases, the
//! settings of the versions they point at, its schedules and how its recent invocations went.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context as _;
use clap::Args;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use vireo_core::Name;

use crate::args;
use crate::client::Client;
use crate::output::{self, Format};
use crate::views::{FunctionView, InvocationView, ScheduleView};
use crate::{cron, functions, invocations};

#[derive(Args)]
pub struct DescribeArgs {
    /// The function to describe.
    #[arg(value_parser = args::function_name)]
    name: Name,

    /// How many of its newest invocations to show.
    #[arg(long, value_name = "N", default_value_t = 10)]
    recent: u32,
}

/// What `-o json` prints: the server's answers, gathered.
#[derive(Deserialize)]
struct Described {
    url: String,
    function: FunctionView,
    versions: Vec<DescribedVersion>,
    schedules: Vec<ScheduleView>,
    recent_invocations: Vec<InvocationView>,
}

#[derive(Deserialize)]
struct DescribedVersion {
    version: u32,
    component_sha256: String,
    component_size: u64,
    created_at_us: i64,
    settings: Map<String, Value>,
}

pub async fn run(client: &Client, format: Format, args: DescribeArgs) -> anyhow::Result<()> {
    let name = &args.name;
    let what = || format!("describing {}", client.qualified(name));
    let function = client
        .json(client.request(Method::GET, &client.function_path(name, "")))
        .await
        .with_context(what)?;
    let aliases: BTreeMap<String, u32> =
        output::decode(function["aliases"].clone()).with_context(what)?;
    // The versions traffic can reach: each alias's, `latest` included, newest first.
    let targets: BTreeSet<u32> = aliases.values().copied().collect();
    let mut versions = Vec::new();
    for version in targets.iter().rev() {
        let path = client.function_path(name, &format!("/versions/{version}"));
        versions.push(
            client
                .json(client.request(Method::GET, &path))
                .await
                .with_context(what)?,
        );
    }
    let schedules = cron::schedules_of(client, name).await?;
    let recent = client
        .json(
            client
                .request(Method::GET, &client.function_path(name, "/invocations"))
                .query(&[("limit", args.recent)]),
        )
        .await
        .with_context(what)?;
    let described = json!({
        "url": format!("{}/fn/{}/{name}", client.base_url(), client.namespace()),
        "function": function,
        "versions": versions,
        "schedules": schedules,
        "recent_invocations": recent["invocations"],
    });
    output::emit(format, described, |described: Described| {
        render(&client.qualified(name), &described)
    })
}

fn render(function: &str, described: &Described) -> String {
    let info = &described.function;
    let mut text = output::details(&[
        ("function", function.to_string()),
        ("url", described.url.clone()),
        ("created", output::timestamp(info.created_at_us)),
        ("aliases", functions::aliases(info)),
    ]);
    for version in &described.versions {
        let pointed: Vec<&str> = info
            .aliases
            .iter()
            .filter(|(_, target)| **target == version.version)
            .map(|(alias, _)| alias.as_str())
            .collect();
        text.push_str(&format!(
            "\nversion {} ({}): {}, sha256 {}, created {}\n",
            version.version,
            pointed.join(", "),
            output::size(version.component_size),
            version
                .component_sha256
                .chars()
                .take(12)
                .collect::<String>(),
            output::timestamp(version.created_at_us),
        ));
        for (setting, value) in &version.settings {
            text.push_str(&format!("  {setting}: {}\n", setting_text(value)));
        }
        if info.reuse_fallback_versions.contains(&version.version) {
            text.push_str(REUSE_FALLBACK_WARNING);
        }
    }
    text.push_str("\nschedules:");
    if described.schedules.is_empty() {
        text.push_str(" none (`vireo cron add` makes one)\n");
    } else {
        text.push('\n');
        text.push_str(&cron::schedules_table(&described.schedules));
    }
    let recent = &described.recent_invocations;
    let failed = recent.iter().filter(|i| i.status != "ok").count();
    if recent.is_empty() {
        text.push_str("\nrecent invocations: none yet\n");
    } else {
        text.push_str(&format!(
            "\nrecent invocations, newest first ({failed} of these {} did not end ok):\n",
            recent.len()
        ));
        text.push_str(&invocations::table(recent));
    }
    text
}

const REUSE_FALLBACK_WARNING: &str = "  warning: an instance returned without answering its second request, so this server runs every request of this version on a fresh instance (instance_reuse has no effect)\n";

/// A setting as people read it: text bare, `none` for null, anything else as compact JSON.
fn setting_text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "none".to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_shows_aliases_settings_schedules_and_recent_failures() {
        let described: Described = serde_json::from_value(json!({
            "url": "http://127.0.0.1:8080/fn/default/echo",
            "function": {"name": "echo", "created_at_us": 0, "latest_version": 2,
                         "aliases": {"latest": 2, "prod": 1}, "reuse_fallback_versions": [1]},
            "versions": [
                {"version": 2, "component_sha256": "ab".repeat(32), "component_size": 2048,
                 "created_at_us": 0, "settings": {"memory_mib": 64, "invoke_auth": "key",
                 "rate_limit": null, "secrets": ["DB_PASSWORD"]}},
                {"version": 1, "component_sha256": "cd".repeat(32), "component_size": 1024,
                 "created_at_us": 0, "settings": {"memory_mib": 128}}
            ],
            "schedules": [],
            "recent_invocations": [
                {"id": "x", "namespace": "default", "function": "echo", "version": 2,
                 "trigger": "http", "started_at_us": 0, "duration_us": 10, "status": "error",
                 "http_status": 500, "cold": false, "error": "trap"}
            ]
        }))
        .unwrap();
        let text = render("default/echo", &described);
        assert!(text.contains("aliases:  latest=2, prod=1\n"), "{text}");
        assert!(
            text.contains("\nversion 2 (latest): 2.0 KiB, sha256 abababababab"),
            "{text}"
        );
        assert!(text.contains("\nversion 1 (prod): "), "{text}");
        assert_eq!(
            text.matches(REUSE_FALLBACK_WARNING).count(),
            1,
            "only version 1 fell back: {text}"
        );
        assert!(
            text.contains(&format!("memory_mib: 128\n{REUSE_FALLBACK_WARNING}")),
            "{text}"
        );
        assert!(text.contains("  invoke_auth: key\n  memory_mib: 64\n  rate_limit: none\n  secrets: [\"DB_PASSWORD\"]\n"), "{text}");
        assert!(
            text.contains("schedules: none (`vireo cron add` makes one)"),
            "{text}"
        );
        assert!(text.contains("(1 of these 1 did not end ok)"), "{text}");
    }
}
