//! The manifest's routes, named by their pattern in the namespace (see `named.rs` for what is
//! done).

use reqwest::Method;
use serde::Serialize;
use vireo_core::{InvokeAuth, Name, RoutePattern};

use super::named::{self, Change, Listed, Rules};
use crate::client::Client;
use crate::manifest::RouteSpec;
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
    let existing = client
        .get_if_found::<RouteList>(&base)
        .await?
        .map(|list| list.routes)
        .unwrap_or_default();
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
        same: |add: &AddRoute, view: &RouteView| {
            add.function == view.function && add.invoke_auth == view.invoke_auth
        },
    };
    named::reconcile(
        client,
        function,
        (&wanted, &existing),
        rules,
        dry_run,
        |add| client.request(Method::POST, &base).json(add),
        |view| {
            client
                .request(Method::DELETE, &base)
                .query(&[("route", &view.route)])
        },
    )
    .await
}

impl Listed for RouteView {
    fn name(&self) -> &str {
        &self.route
    }

    fn target(&self) -> &str {
        &self.function
    }
}
