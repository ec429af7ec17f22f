//! The manifest's cron schedules, named in the namespace (see `named.rs` for what is done).

use serde_json::{Value, json};
use vireo_core::Name;

use super::named::{self, Change, Listed};
use crate::client::Client;
use crate::manifest::ScheduleSpec;
use crate::views::{ScheduleList, ScheduleView};

pub async fn apply(
    client: &Client,
    function: &Name,
    wanted: &[ScheduleSpec],
    dry_run: bool,
) -> anyhow::Result<Vec<Change>> {
    let base = format!("/v1/namespaces/{}/schedules", client.namespace());
    let existing = client
        .get_if_found::<ScheduleList>(&base)
        .await?
        .map(|list| list.schedules)
        .unwrap_or_default();
    let wanted: Vec<Value> = wanted
        .iter()
        .map(|spec| create_body(function, spec))
        .collect();
    let kind = ("schedule", base.as_str());
    named::reconcile_posted(client, function, kind, (&wanted, &existing), same, dry_run).await
}

impl Listed for ScheduleView {
    fn name(&self) -> &str {
        &self.name
    }

    fn target(&self) -> &str {
        &self.function
    }
}

/// The API's body creating the schedule.
fn create_body(function: &Name, spec: &ScheduleSpec) -> Value {
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
fn same(body: &Value, view: &ScheduleView) -> bool {
    body["function"] == view.function.as_str()
        && body["schedule"] == view.schedule.as_str()
        && body["time_zone"] == view.time_zone.as_str()
        && body["payload"] == view.payload.as_str()
        && body["missed"] == view.missed.as_str()
}
