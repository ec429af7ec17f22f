//! What the manifest's named things (schedules, routes) and the server's have to do with each
//! other: each the manifest lists is created when missing and replaced (deleted and created
//! again) when it differs; one of another function by the same name is an error; those of the
//! function the manifest does not list are left alone, and said so.

use anyhow::{Context as _, bail};
use reqwest::{Method, RequestBuilder};
use serde::Serialize;
use serde_json::Value;
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

/// What the server lists of a kind of thing: its name in the namespace, and the function it
/// invokes (`name@selector`).
pub trait Listed {
    fn name(&self) -> &str;
    fn target(&self) -> &str;

    /// The function it belongs to.
    fn owner(&self) -> &str {
        let target = self.target();
        target.split_once('@').map_or(target, |(name, _)| name)
    }
}

/// How the manifest's side of a kind of thing is named and compared with the server's.
pub struct Rules<W, E> {
    pub kind: &'static str,
    pub wanted_name: fn(&W) -> String,
    /// Whether an existing one is what the manifest wants.
    pub same: fn(&W, &E) -> bool,
}

/// Makes `existing` what `wanted` says for `function`, with the requests `create` and `delete`
/// make (none sent on a dry run).
pub async fn reconcile<W, E: Listed>(
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
        let current = existing.iter().find(|exists| exists.name() == name);
        let action = match current {
            None => Action::Created,
            Some(exists) if exists.owner() != function.as_str() => bail!(
                "the {kind} {name} belongs to the function {}, not {function}: rename the one in the manifest",
                exists.owner()
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
        let listed = wanted
            .iter()
            .any(|want| (rules.wanted_name)(want) == exists.name());
        if exists.owner() == function.as_str() && !listed {
            changes.push(change(exists.name().to_string(), Action::NotInManifest));
        }
    }
    Ok(changes)
}

/// For kinds created by POSTing a JSON body with a `name` to `base` and deleted at `base/NAME`
/// (schedules, sources): `wanted` are those bodies.
pub async fn reconcile_posted<E: Listed>(
    client: &Client,
    function: &Name,
    (kind, base): (&'static str, &str),
    (wanted, existing): (&[Value], &[E]),
    same: fn(&Value, &E) -> bool,
    dry_run: bool,
) -> anyhow::Result<Vec<Change>> {
    let rules = Rules {
        kind,
        wanted_name: |body: &Value| body["name"].as_str().unwrap_or_default().to_string(),
        same,
    };
    reconcile(
        client,
        function,
        (wanted, existing),
        rules,
        dry_run,
        |body| client.request(Method::POST, base).json(body),
        |exists| client.request(Method::DELETE, &format!("{base}/{}", exists.name())),
    )
    .await
}
