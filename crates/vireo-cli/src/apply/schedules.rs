//! The manifest's cron schedules: created when missing, replaced when they differ. Schedules of
//! the function the manifest does not name are left as they are, and said so.

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde::Serialize;
use serde_json::json;
use vireo_core::Name;

use crate::client::Client;
use crate::manifest::ScheduleSpec;
use crate::output;
use crate::views::{ScheduleList, ScheduleView};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleAction {
    Created,
    Replaced,
    Unchanged,
    /// Invokes the function but is not in the manifest: left as it is.
    NotInManifest,
}

#[derive(Serialize)]
pub struct ScheduleChange {
    name: String,
    action: ScheduleAction,
}

impl ScheduleChange {
    pub fn describe(&self, dry_run: bool) -> String {
        let name = &self.name;
        match (self.action, dry_run) {
            (ScheduleAction::Created, false) => format!("schedule {name}: created"),
            (ScheduleAction::Created, true) => format!("schedule {name}: would be created"),
            (ScheduleAction::Replaced, false) => format!("schedule {name}: replaced"),
            (ScheduleAction::Replaced, true) => format!("schedule {name}: would be replaced"),
            (ScheduleAction::Unchanged, _) => format!("schedule {name}: unchanged"),
            (ScheduleAction::NotInManifest, _) => {
                format!("schedule {name}: not in the manifest, left as it is")
            }
        }
    }
}

pub async fn apply(
    client: &Client,
    function: &Name,
    wanted: &[ScheduleSpec],
    dry_run: bool,
) -> anyhow::Result<Vec<ScheduleChange>> {
    let base = format!("/v1/namespaces/{}/schedules", client.namespace());
    let existing: Vec<ScheduleView> = match client
        .json_if_found(client.request(Method::GET, &base))
        .await?
    {
        Some(answer) => output::decode::<ScheduleList>(answer)?.schedules,
        None => Vec::new(),
    };
    let invokes_function = |view: &ScheduleView| {
        view.function
            .split_once('@')
            .map_or(view.function.as_str(), |(name, _)| name)
            == function.as_str()
    };
    let mut changes = Vec::new();
    for spec in wanted {
        let body = create_body(function, spec);
        let current = existing.iter().find(|view| view.name == spec.name.as_str());
        let action = match current {
            None => ScheduleAction::Created,
            Some(view) if !invokes_function(view) => bail!(
                "the schedule {} of namespace {} invokes {}, not {function}: rename the one in the manifest",
                spec.name,
                client.namespace(),
                view.function
            ),
            Some(view) if same(view, &body) => ScheduleAction::Unchanged,
            Some(_) => ScheduleAction::Replaced,
        };
        if !dry_run && action != ScheduleAction::Unchanged {
            if action == ScheduleAction::Replaced {
                let path = format!("{base}/{}", spec.name);
                client
                    .no_content(client.request(Method::DELETE, &path))
                    .await
                    .with_context(|| format!("replacing the schedule {}", spec.name))?;
            }
            client
                .json(client.request(Method::POST, &base).json(&body))
                .await
                .with_context(|| format!("creating the schedule {}", spec.name))?;
        }
        changes.push(ScheduleChange {
            name: spec.name.to_string(),
            action,
        });
    }
    for view in existing.iter().filter(|view| invokes_function(view)) {
        if !wanted.iter().any(|spec| spec.name.as_str() == view.name) {
            changes.push(ScheduleChange {
                name: view.name.clone(),
                action: ScheduleAction::NotInManifest,
            });
        }
    }
    Ok(changes)
}

/// The API's body creating the schedule.
fn create_body(function: &Name, spec: &ScheduleSpec) -> serde_json::Value {
    let target = match &spec.alias {
        Some(alias) => format!("{function}@{alias}"),
        None => function.to_string(),
    };
    json!({
        "name": spec.name,
        "function": target,
        "schedule": spec.cron.get_ref(),
        "time_zone": spec.time_zone.as_deref().unwrap_or("UTC"),
        "payload": spec.payload,
        "missed": spec.missed.as_str(),
    })
}

/// Whether the existing schedule is the one `body` would create.
fn same(view: &ScheduleView, body: &serde_json::Value) -> bool {
    body["function"] == view.function.as_str()
        && body["schedule"] == view.schedule.as_str()
        && body["time_zone"] == view.time_zone.as_str()
        && body["payload"] == view.payload.as_str()
        && body["missed"] == view.missed.as_str()
}
