//! The manifest's aliases: each is pointed where the manifest says, when it points elsewhere.
//! Aliases the manifest does not name are left as they are.

use std::collections::BTreeMap;

use anyhow::Context as _;
use reqwest::Method;
use serde::Serialize;
use toml::Spanned;
use vireo_core::{AliasName, AliasTarget, Name};

use crate::client::Client;
use crate::manifest::AliasSpec;
use crate::views::FunctionView;

/// One alias: where it pointed, where it points now (or would), and whether that changed.
#[derive(Serialize)]
pub struct AliasChange {
    alias: String,
    from: Option<AliasTarget>,
    to: AliasTarget,
    changed: bool,
}

impl AliasChange {
    pub fn describe(&self, dry_run: bool) -> String {
        let to = target_text(&self.to);
        match (&self.from, self.changed) {
            (Some(_), false) => format!("alias {}: {to}, unchanged", self.alias),
            (None, _) if dry_run => format!("alias {}: would be created at {to}", self.alias),
            (None, _) => format!("alias {}: created at {to}", self.alias),
            (Some(from), true) if dry_run => format!(
                "alias {}: would move to {to} (now {})",
                self.alias,
                target_text(from)
            ),
            (Some(from), true) => {
                format!("alias {}: {to} (was {})", self.alias, target_text(from))
            }
        }
    }
}

/// `version 3`, or `version 3 90%, version 4 10%` (sticky by header x-user).
fn target_text(target: &AliasTarget) -> String {
    if let ([only], None) = (target.versions.as_slice(), &target.sticky) {
        return format!("version {}", only.version);
    }
    let split = target
        .versions
        .iter()
        .map(|part| format!("version {} {}%", part.version, part.weight))
        .collect::<Vec<_>>()
        .join(", ");
    match &target.sticky {
        Some(sticky) => format!("{split} (sticky by {sticky:?})"),
        None => split,
    }
}

/// Points each alias of `wanted` where it says (`latest`: `version`, the version the deploy
/// made or kept); on a dry run only compares.
pub async fn apply(
    client: &Client,
    function: &Name,
    wanted: &BTreeMap<AliasName, Spanned<AliasSpec>>,
    version: u32,
    dry_run: bool,
) -> anyhow::Result<Vec<AliasChange>> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let current: Option<FunctionView> = client
        .get_if_found(&client.function_path(function, ""))
        .await?;
    let mut changes = Vec::new();
    for (alias, spec) in wanted {
        let to = match spec.get_ref() {
            AliasSpec::Latest(_) => AliasTarget::single(version),
            AliasSpec::Version(number) => AliasTarget::single(*number),
            AliasSpec::Split(split) => split.clone(),
        };
        let from = current.as_ref().and_then(|view| pointed_at(view, alias));
        let changed = from.as_ref() != Some(&to);
        if changed && !dry_run {
            let path = client.function_path(function, &format!("/aliases/{alias}"));
            client
                .json(client.request(Method::PUT, &path).json(&to))
                .await
                .with_context(|| format!("pointing alias {alias} at {}", target_text(&to)))?;
        }
        changes.push(AliasChange {
            alias: alias.to_string(),
            from,
            to,
            changed,
        });
    }
    Ok(changes)
}

/// Where the alias points now.
fn pointed_at(view: &FunctionView, alias: &AliasName) -> Option<AliasTarget> {
    if let Some(split) = view.splits.get(alias.as_str()) {
        return Some(split.clone());
    }
    view.aliases
        .get(alias.as_str())
        .map(|version| AliasTarget::single(*version))
}
