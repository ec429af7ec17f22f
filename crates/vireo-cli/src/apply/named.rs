//! What the manifest's named things (schedules, routes) and the server's have to do with each
//! other: each the manifest lists is created when missing and replaced (deleted and created
//! again) when it differs; one of another function by the same name is an error; those of the
//! function the manifest does not list are left alone, and said so.

use anyhow::{Context as _, bail};
use reqwest::RequestBuilder;
use serde::Serialize;
use vireo_core::Name;

use crate::client::Client;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Created,
    Replaced,
    Unchanged,
    /// Belongs to the function but is not in the manifest: left as it is.
    NotInManifest,
}

/// One named thing and what the deploy did (or would do) to it.
#[derive(Serialize)]
pub struct Change {
    name: String,
    action: Action,
    /// `schedule`, `route`: for the sentence.
    #[serde(skip)]
    kind: &'static str,
}

impl Change {
    pub fn new(kind: &'static str, name: String, action: Action) -> Self {
        Self { name, action, kind }
    }

    pub fn describe(&self, dry_run: bool) -> String {
        let (kind, name) = (self.kind, &self.name);
        let done = match (self.action, dry_run) {
            (Action::Created, false) => "created",
            (Action::Created, true) => "would be created",
            (Action::Replaced, false) => "replaced",
            (Action::Replaced, true) => "would be replaced",
            (Action::Unchanged, _) => "unchanged",
            (Action::NotInManifest, _) => "not in the manifest, left as it is",
        };
        format!("{kind} {name}: {done}")
    }
}

/// How to tell a kind of thing apart: by name, by the function it belongs to, and whether an
/// existing one is what the manifest wants.
pub struct Rules<W, E> {
    pub kind: &'static str,
    pub wanted_name: fn(&W) -> String,
    pub existing_name: fn(&E) -> String,
    /// The name of the function an existing one belongs to.
    pub owner: fn(&E) -> String,
    pub same: fn(&W, &E) -> bool,
}

/// Makes `existing` what `wanted` says for `function`, with the requests `create` and `delete`
/// make (none sent on a dry run).
#[allow(
    clippy::too_many_arguments,
    reason = "the two sides, how to compare them, and the two requests"
)]
pub async fn reconcile<W, E>(
    client: &Client,
    function: &Name,
    (wanted, existing): (&[W], &[E]),
    rules: Rules<W, E>,
    dry_run: bool,
    create: impl Fn(&W) -> RequestBuilder,
    delete: impl Fn(&E) -> RequestBuilder,
) -> anyhow::Result<Vec<Change>> {
    let kind = rules.kind;
    let change = |name: String, action| Change::new(kind, name, action);
    let mut changes = Vec::new();
    for want in wanted {
        let name = (rules.wanted_name)(want);
        let current = existing
            .iter()
            .find(|exists| (rules.existing_name)(exists) == name);
        let action = match current {
            None => Action::Created,
            Some(exists) if (rules.owner)(exists) != function.as_str() => bail!(
                "the {kind} {name} belongs to the function {}, not {function}: rename the one in the manifest",
                (rules.owner)(exists)
            ),
            Some(exists) if (rules.same)(want, exists) => Action::Unchanged,
            Some(_) => Action::Replaced,
        };
        if !dry_run {
            if let (Action::Replaced, Some(exists)) = (action, current) {
                client
                    .no_content(delete(exists))
                    .await
                    .with_context(|| format!("replacing the {kind} {name}"))?;
            }
            if action != Action::Unchanged {
                client
                    .json(create(want))
                    .await
                    .with_context(|| format!("creating the {kind} {name}"))?;
            }
        }
        changes.push(change(name, action));
    }
    for exists in existing {
        let name = (rules.existing_name)(exists);
        let listed = wanted.iter().any(|want| (rules.wanted_name)(want) == name);
        if (rules.owner)(exists) == function.as_str() && !listed {
            changes.push(change(name, Action::NotInManifest));
        }
    }
    Ok(changes)
}

/// `name` of `name@alias` or `name@version`.
pub fn function_of(target: &str) -> &str {
    target.split_once('@').map_or(target, |(name, _)| name)
}
