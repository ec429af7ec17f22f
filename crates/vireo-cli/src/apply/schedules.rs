//! The manifest's cron schedules, named in the namespace (see `named.rs` for what is done).

use anyhow::Context as _;
use reqwest::Method;
use serde_json::{Value, json};
use vireo_core::Name;

use super::named::{self, Change, Rules};
use crate::client::Client;
use crate::manifest::ScheduleSpec;
use crate::output;
use crate::views::{ScheduleList, ScheduleView};

pub async fn apply(
    client: &Client,
    function: &Name,
    wanted: &[ScheduleSpec],
    dry_run: bool,
) -> anyhow::Result<Vec<Change>> {
    let base = format!("/v1/namespaces/{}/schedules", client.namespace());
    let existing: Vec<ScheduleView> = match client
        .json_if_found(client.request(Method::GET, &base))
        .await?
    {
        Some(answer) => output::decode::<ScheduleList>(answer)?.schedules,
        None => Vec::new(),
    };
    let wanted: Vec<Value> = wanted
        .iter()
        .map(|spec| create_body(function, spec))
        .collect();
    let rules = Rules {
        kind: "schedule",
        wanted_name: |body: &Value| body["name"].as_str().unwrap_or_default().to_string(),
        existing_name: |view: &ScheduleView| view.name.clone(),
        owner: |view: &ScheduleView| function_of(&view.function).to_string(),
        same,
    };
    let create = |body: &Value| {
        let request = client.request(Method::POST, &base).json(body);
        let name = body["name"].clone();
        async move {
            client
                .json(request)
                .await
                .map(drop)
                .with_context(|| format!("creating the schedule {name}"))
        }
    };
    let delete = |view: &ScheduleView| {
        let request = client.request(Method::DELETE, &format!("{base}/{}", view.name));
        let name = view.name.clone();
        async move {
            client
                .no_content(request)
                .await
                .with_context(|| format!("replacing the schedule {name}"))
        }
    };
    named::reconcile(
        function,
        &wanted,
        &existing,
        rules,
        dry_run,
        (create, delete),
    )
    .await
}

/// `name` of `name@alias`.
fn function_of(target: &str) -> &str {
    target.split_once('@').map_or(target, |(name, _)| name)
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
