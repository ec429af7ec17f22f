//! The manifest's routes, named by their pattern in the namespace (see `named.rs` for what is
//! done).

use anyhow::Context as _;
use reqwest::Method;
use serde::Serialize;
use vireo_core::{InvokeAuth, Name, RoutePattern};

use super::named::{self, Change, Rules};
use crate::client::Client;
use crate::manifest::RouteSpec;
use crate::output;
use crate::routes::{RouteList, RouteView};

/// The API's body adding the route; `route` as the server writes it back.
#[derive(Serialize)]
struct AddRoute {
    route: String,
    function: String,
    invoke_auth: Option<InvokeAuth>,
}

pub async fn apply(
    client: &Client,
    function: &Name,
    wanted: &[RouteSpec],
    dry_run: bool,
) -> anyhow::Result<Vec<Change>> {
    let base = format!("/v1/namespaces/{}/routes", client.namespace());
    let existing: Vec<RouteView> = match client
        .json_if_found(client.request(Method::GET, &base))
        .await?
    {
        Some(answer) => output::decode::<RouteList>(answer)?.routes,
        None => Vec::new(),
    };
    let wanted = wanted
        .iter()
        .map(|spec| {
            let pattern = RoutePattern::parse(spec.route.get_ref())?;
            let selector = spec.alias.as_ref().map_or("latest", |alias| alias.as_str());
            Ok(AddRoute {
                route: pattern.to_string(),
                function: format!("{function}@{selector}"),
                invoke_auth: spec.invoke_auth.clone(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let rules = Rules {
        kind: "route",
        wanted_name: |add: &AddRoute| add.route.clone(),
        existing_name: |view: &RouteView| view.route.clone(),
        owner: |view: &RouteView| {
            let target = view.function.as_str();
            target
                .split_once('@')
                .map_or(target, |(name, _)| name)
                .to_string()
        },
        same: |add: &AddRoute, view: &RouteView| {
            add.function == view.function && add.invoke_auth == view.invoke_auth
        },
    };
    let create = |add: &AddRoute| {
        let request = client.request(Method::POST, &base).json(add);
        let route = add.route.clone();
        async move {
            client
                .json(request)
                .await
                .map(drop)
                .with_context(|| format!("adding the route {route}"))
        }
    };
    let delete = |view: &RouteView| {
        let request = client
            .request(Method::DELETE, &base)
            .query(&[("route", &view.route)]);
        let route = view.route.clone();
        async move {
            client
                .no_content(request)
                .await
                .with_context(|| format!("replacing the route {route}"))
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
