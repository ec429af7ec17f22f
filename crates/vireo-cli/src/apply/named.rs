//! What the manifest's named things (schedules, routes) and the server's have to do with each
//! other: each the manifest lists is created when missing and replaced (deleted and created
//! again) when it differs; one of another function by the same name is an error; those of the
//! function the manifest does not list are left alone, and said so.

use std::future::Future;

use anyhow::bail;
use serde::Serialize;
use vireo_core::Name;

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

/// Makes `existing` what `wanted` says for `function`, through `create` and `delete` (neither
/// called on a dry run).
pub async fn reconcile<W, E, C, CF, D, DF>(
    function: &Name,
    wanted: &[W],
    existing: &[E],
    rules: Rules<W, E>,
    dry_run: bool,
    (create, delete): (C, D),
) -> anyhow::Result<Vec<Change>>
where
    C: Fn(&W) -> CF,
    CF: Future<Output = anyhow::Result<()>>,
    D: Fn(&E) -> DF,
    DF: Future<Output = anyhow::Result<()>>,
{
    let change = |name: String, action| Change {
        name,
        action,
        kind: rules.kind,
    };
    let mut changes = Vec::new();
    for want in wanted {
        let name = (rules.wanted_name)(want);
        let current = existing
            .iter()
            .find(|exists| (rules.existing_name)(exists) == name);
        let action = match current {
            None => Action::Created,
            Some(exists) if (rules.owner)(exists) != function.as_str() => bail!(
                "the {} {name} belongs to the function {}, not {function}: rename the one in the manifest",
                rules.kind,
                (rules.owner)(exists)
            ),
            Some(exists) if (rules.same)(want, exists) => Action::Unchanged,
            Some(_) => Action::Replaced,
        };
        if !dry_run {
            if let (Action::Replaced, Some(exists)) = (action, current) {
                delete(exists).await?;
            }
            if action != Action::Unchanged {
                create(want).await?;
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
