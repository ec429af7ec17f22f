//! The manifest's cron schedules, named in the namespace (see `named.rs` for what is done).

use reqwest::Method;
use serde_json::{Value, json};
use vireo_core::Name;

use super::named::{self, Change, Rules};
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
    let rules = Rules {
        kind: "schedule",
        wanted_name: |body: &Value| body["name"].as_str().unwrap_or_default().to_string(),
        existing_name: |view: &ScheduleView| view.name.clone(),
        owner: |view: &ScheduleView| named::function_of(&view.function).to_string(),
        same,
    };
    named::reconcile(
        client,
        function,
        (&wanted, &existing),
        rules,
        dry_run,
        |body| client.request(Method::POST, &base).json(body),
        |view| client.request(Method::DELETE, &format!("{base}/{}", view.name)),
    )
    .await
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
