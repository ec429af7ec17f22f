//! `vireo routes` (publish functions at paths and hosts) and `vireo hosts` (which namespace
//! may route which host; admin keys only).

use anyhow::Context as _;
use clap::Subcommand;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use vireo_core::InvokeAuth;

use crate::client::Client;
use crate::output::{self, Format};
use crate::settings_args::parse_invoke_auth;

#[derive(Subcommand)]
pub enum RoutesCommand {
    /// Publish a function at a route: `/hello`, `/orders/*` (a prefix; the function sees the
    /// path after it), `api.example.com/orders/*` or `*.example.com/*` (hosts an admin
    /// claimed for the namespace with `vireo hosts claim`).
    Add {
        #[arg(value_name = "[HOST]/PATH")]
        route: String,
        /// The function, optionally `@version` or `@alias`.
        #[arg(long, value_name = "NAME[@VERSION|@ALIAS]")]
        function: String,
        /// Who may call the function through this route, instead of the version's own
        /// setting: public, key, or `{"jwt":{"issuer":"…","audiences":["…"],"jwks_url":"…"}}`
        /// [default: the version's]
        #[arg(long, value_name = "WHO", value_parser = parse_invoke_auth)]
        invoke_auth: Option<InvokeAuth>,
    },
    /// List the namespace's routes.
    Ls,
    /// Remove a route, written as it was added.
    Rm {
        #[arg(value_name = "[HOST]/PATH")]
        route: String,
    },
}

#[derive(Subcommand)]
pub enum HostsCommand {
    /// Let a namespace route a host (`api.example.com`) or every subdomain of one
    /// (`*.example.com`); no other namespace may then route it.
    Claim {
        host: String,
        /// The namespace that may route the host.
        #[arg(long = "for", value_name = "NS")]
        namespace: String,
    },
    /// List which namespace may route which host.
    Ls,
    /// Release a claim no route uses any more.
    Release { host: String },
}

#[derive(Deserialize)]
pub struct RouteView {
    pub route: String,
    /// `function@selector`.
    pub function: String,
    #[serde(default)]
    pub invoke_auth: Option<InvokeAuth>,
    created_at_us: i64,
}

/// The AUTH column: the route's own `invoke_auth`, or the version's when it has none.
fn auth_column(auth: Option<&InvokeAuth>) -> String {
    match auth {
        None => "(version's)".to_string(),
        Some(InvokeAuth::Public) => "public".to_string(),
        Some(InvokeAuth::Key) => "key".to_string(),
        Some(InvokeAuth::Jwt(jwt)) => format!("jwt ({})", jwt.issuer),
    }
}

#[derive(Deserialize)]
pub struct RouteList {
    pub routes: Vec<RouteView>,
}

#[derive(Deserialize)]
struct HostClaim {
    host: String,
    namespace: String,
    created_at_us: i64,
}

#[derive(Deserialize)]
struct HostList {
    hosts: Vec<HostClaim>,
}

pub async fn run(client: &Client, format: Format, command: RoutesCommand) -> anyhow::Result<()> {
    let namespace = client.namespace().clone();
    let path = format!("/v1/namespaces/{namespace}/routes");
    match command {
        RoutesCommand::Add {
            route,
            function,
            invoke_auth,
        } => {
            let body = json!({ "route": route, "function": function, "invoke_auth": invoke_auth });
            let answer = client
                .json(client.request(Method::POST, &path).json(&body))
                .await
                .with_context(|| format!("adding route {route} in namespace {namespace}"))?;
            output::emit(format, answer, |added: RouteView| {
                format!("route {} -> {namespace}/{}\n", added.route, added.function)
            })
        }
        RoutesCommand::Ls => {
            let answer = client
                .json(client.request(Method::GET, &path))
                .await
                .with_context(|| format!("listing the routes of namespace {namespace}"))?;
            output::emit(format, answer, |list: RouteList| {
                output::table(
                    ["ROUTE", "FUNCTION", "AUTH", "CREATED"],
                    list.routes.iter().map(|route| {
                        [
                            route.route.clone(),
                            route.function.clone(),
                            auth_column(route.invoke_auth.as_ref()),
                            output::timestamp(route.created_at_us),
                        ]
                    }),
                )
            })
        }
        RoutesCommand::Rm { route } => {
            client
                .no_content(
                    client
                        .request(Method::DELETE, &path)
                        .query(&[("route", &route)]),
                )
                .await
                .with_context(|| format!("removing route {route} of namespace {namespace}"))?;
            let answer = json!({"namespace": namespace.as_str(), "route": route, "deleted": true});
            output::emit(format, answer, |_: serde_json::Value| {
                format!("route {route} removed\n")
            })
        }
    }
}

pub async fn hosts(client: &Client, format: Format, command: HostsCommand) -> anyhow::Result<()> {
    match command {
        HostsCommand::Claim { host, namespace } => {
            client
                .no_content(
                    client
                        .request(Method::PUT, &format!("/v1/hosts/{host}"))
                        .json(&json!({ "namespace": namespace })),
                )
                .await
                .with_context(|| format!("claiming host {host} for namespace {namespace}"))?;
            let answer = json!({"host": host, "namespace": namespace});
            output::emit(format, answer, |_: serde_json::Value| {
                format!("host {host} claimed for namespace {namespace}\n")
            })
        }
        HostsCommand::Ls => {
            let answer = client
                .json(client.request(Method::GET, "/v1/hosts"))
                .await
                .context("listing host claims")?;
            output::emit(format, answer, |list: HostList| {
                output::table(
                    ["HOST", "NAMESPACE", "CLAIMED"],
                    list.hosts.iter().map(|claim| {
                        [
                            claim.host.clone(),
                            claim.namespace.clone(),
                            output::timestamp(claim.created_at_us),
                        ]
                    }),
                )
            })
        }
        HostsCommand::Release { host } => {
            client
                .no_content(client.request(Method::DELETE, &format!("/v1/hosts/{host}")))
                .await
                .with_context(|| format!("releasing host {host}"))?;
            let answer = json!({"host": host, "released": true});
            output::emit(format, answer, |_: serde_json::Value| {
                format!("host {host} released\n")
            })
        }
    }
}
