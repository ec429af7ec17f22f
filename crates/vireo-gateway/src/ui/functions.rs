//! The namespaces a key sees, a namespace's functions with their last hour, and a function's
//! page: its charts, versions, aliases (moved from here), settings, schedules and queue.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::response::{Html, Redirect};
use maud::{Markup, html};
use serde::Deserialize;
use vireo_core::{
    Action, AliasTarget, Catalog, Deployer, Directory, FunctionInfo, Name, QueueAdmin, Records,
    ScheduleStore,
};

use super::activity::{self, Span};
use super::error::UiError;
use super::layout::{self, bytes, empty, page_of, pager, time};
use super::session::Viewer;
use super::{sources, split};
use crate::api::buckets::list_buckets;
use crate::api::key_value::list_stores;
use crate::api::schedules::set_paused;
use crate::auth::authorize;
use crate::extract::{AliasPath, FunctionPath, NamespacePath, SchedulePath};
use crate::state::NamespaceResources;

pub(crate) fn function_url(namespace: &Name, function: &Name) -> String {
    format!("/ui/ns/{namespace}/fn/{function}")
}

pub(crate) async fn namespaces(
    viewer: Viewer,
    State(directory): State<Arc<Directory>>,
) -> Result<Html<String>, UiError> {
    let visible: Vec<_> = directory
        .store()
        .list_namespaces()
        .await?
        .into_iter()
        .filter(|ns| viewer.caller.sees(&ns.name))
        .collect();
    let body = html! {
        h1 { "Namespaces" }
        @if visible.is_empty() {
            (empty("This key sees no namespace.", html! {
                "An admin creates one with " code { "vireo ns create NAME" }
                " and a key for it with " code { "vireo keys create --role developer --namespace NAME" } "."
            }))
        } @else {
            ul.cards {
                @for ns in &visible {
                    li { a href={ "/ui/ns/" (ns.name) } { (ns.name) } }
                }
            }
        }
    };
    Ok(layout::page("Namespaces", Some(&viewer), body))
}

/// `?page=N` of a paged table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageParam {
    #[serde(default = "first_page")]
    pub page: usize,
}

pub(crate) fn first_page() -> usize {
    1
}

pub(crate) async fn list(
    viewer: Viewer,
    State(catalog): State<Arc<dyn Catalog>>,
    State(records): State<Arc<dyn Records>>,
    State(resources): State<NamespaceResources>,
    NamespacePath(namespace): NamespacePath,
    Query(PageParam { page }): Query<PageParam>,
) -> Result<Html<String>, UiError> {
    let NamespaceResources {
        key_value,
        secrets,
        objects,
        directory,
        sources: source_services,
    } = resources;
    authorize(&viewer.caller, Action::Read, &namespace)?;
    let functions = catalog.list_functions(&namespace).await?;
    let sources = sources::of_namespace(catalog.clone(), source_services, &namespace).await?;
    let buckets = list_buckets(
        State(objects),
        State(directory.clone()),
        NamespacePath(namespace.clone()),
    )
    .await?
    .0;
    let stores = list_stores(
        State(key_value),
        State(directory),
        NamespacePath(namespace.clone()),
    )
    .await?
    .0;
    let secrets = secrets.list_secrets(&namespace).await?;
    let total = functions.len();
    let shown = page_of(&functions, page);
    let mut rows = Vec::with_capacity(shown.len());
    for info in shown.iter().cloned() {
        let hour =
            activity::summary(records.as_ref(), &namespace, &info.name, None, Span::Hour).await?;
        rows.push((info, hour));
    }
    let body = html! {
        h1 { "Functions in " (namespace) }
        p.links { a href={ "/ui/ns/" (namespace) "/usage" } { "Usage and cost" } }
        @if rows.is_empty() {
            (empty("No functions here yet.", html! {
                "Deploy one with " code { "vireo deploy NAME FILE.wasm --namespace " (namespace) }
                "; it shows up here with its versions, invocations and logs."
            }))
        } @else {
            div.scroll {
                table #functions {
                    thead { tr {
                        th { "Function" } th { "Latest" } th { "Aliases" }
                        th { "Last hour" } th { "Errors" } th { "Requests per minute" }
                    } }
                    tbody {
                        @for (info, hour) in &rows {
                            tr {
                                td { a href=(function_url(&namespace, &info.name)) { (info.name) } }
                                td { @match info.latest_version { Some(v) => { "v" (v) }, None => "not deployed" } }
                                td { (aliases(info)) }
                                td.num { (hour.total_requests()) }
                                td.num { (hour.total_errors()) }
                                td { (sparkline(&hour.requests)) }
                            }
                        }
                    }
                }
            }
            (pager(page, total, |p| format!("/ui/ns/{namespace}?page={p}")))
        }
        h2 #sources-heading { "Event sources" }
        (sources::table(&viewer, &namespace, &sources))
        h2 { "Key-value stores" }
        p.hint {
            (bytes(stores.bytes_used)) " stored"
            @if let Some(quota) = stores.max_kv_bytes { " of a quota of " (bytes(quota)) }
        }
        div.scroll { table #stores {
            thead { tr { th { "Store" } th { "Keys" } th { "Bytes" } th { "Created" } } }
            tbody {
                @for store in &stores.stores {
                    tr {
                        td { a href={ "/ui/ns/" (namespace) "/kv/" (store.name) } { (store.name) } }
                        td.num { (store.keys) }
                        td.num { (bytes(store.bytes)) }
                        td { (time(store.created_at_us)) }
                    }
                }
            }
        } }
        h2 { "Buckets" }
        p.hint {
            (bytes(buckets.bytes_used)) " stored"
            @if let Some(quota) = buckets.max_object_bytes { " of a quota of " (bytes(quota)) }
        }
        @if buckets.buckets.is_empty() {
            (empty("No buckets.", html! {
                "Create one with " code { "vireo buckets create NAME" } " and grant it with "
                code { "vireo deploy … --bucket NAME" } "."
            }))
        } @else {
            div.scroll { table #buckets {
                thead { tr { th { "Bucket" } th { "Objects" } th { "Bytes" } th { "Created" } } }
                tbody {
                    @for bucket in &buckets.buckets {
                        tr {
                            td { a href={ "/ui/ns/" (namespace) "/buckets/" (bucket.name) } { (bucket.name) } }
                            td.num { (bucket.objects) }
                            td.num { (bytes(bucket.bytes)) }
                            td { (time(bucket.created_at_us)) }
                        }
                    }
                }
            } }
        }
        h2 { "Secrets" }
        p.hint { "Names only: values never leave the server." }
        @if secrets.is_empty() {
            (empty("No secrets.", html! {
                "Set one with " code { "vireo secrets set NAME" } " (the value on standard input)."
            }))
        } @else {
            div.scroll { table #secrets {
                thead { tr { th { "Secret" } th { "Updated" } } }
                tbody {
                    @for secret in &secrets {
                        tr { td { (secret.name) } td { (time(secret.updated_at_us)) } }
                    }
                }
            } }
        }
    };
    Ok(layout::page(namespace.as_str(), Some(&viewer), body))
}

fn aliases(info: &FunctionInfo) -> Markup {
    html! {
        @for (alias, version) in &info.aliases {
            span.tag { (alias) " → v" (version) } " "
        }
    }
}

/// Counts as a small line drawn in SVG (presentation attributes only: no inline style).
#[expect(clippy::cast_precision_loss, reason = "counts per bucket are small")]
fn sparkline(counts: &[u64]) -> Markup {
    let (width, height) = (120.0, 24.0);
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = width / (counts.len().max(2) - 1) as f64;
    let points: Vec<String> = counts
        .iter()
        .enumerate()
        .map(|(i, count)| {
            let y = height - 1.0 - (*count as f64 / top) * (height - 2.0);
            format!("{:.1},{:.1}", i as f64 * step, y)
        })
        .collect();
    html! {
        svg.spark viewBox="0 0 120 24" width="120" height="24" role="img" aria-label="requests per minute, last hour" {
            polyline fill="none" stroke="currentColor" stroke-width="1.5" points=(points.join(" ")) {}
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PageParams {
    #[serde(default)]
    span: Span,
    version: Option<u32>,
    /// The page of the versions table.
    #[serde(default = "first_page")]
    versions_page: usize,
}

pub(crate) async fn page(
    viewer: Viewer,
    State(catalog): State<Arc<dyn Catalog>>,
    State(deployer): State<Arc<dyn Deployer>>,
    State(queue): State<Arc<dyn QueueAdmin>>,
    State(schedules): State<Arc<dyn ScheduleStore>>,
    FunctionPath {
        namespace,
        function,
    }: FunctionPath,
    Query(params): Query<PageParams>,
) -> Result<Html<String>, UiError> {
    authorize(&viewer.caller, Action::Read, &namespace)?;
    let info = catalog.get_function(&namespace, &function).await?;
    let mut versions = catalog.list_versions(&namespace, &function).await?;
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    let warm = deployer.warm_versions(&namespace, &function);
    let counts = queue.queue_counts(&namespace, &function).await?;
    let schedules: Vec<_> = schedules
        .list_schedules(&namespace)
        .await?
        .into_iter()
        .filter(|schedule| schedule.function == function)
        .collect();
    let here = function_url(&namespace, &function);
    let writable = viewer.may_write(&namespace);
    let activity_url = match params.version {
        Some(v) => format!("{here}/activity?span={}&version={v}", params.span.as_str()),
        None => format!("{here}/activity?span={}", params.span.as_str()),
    };
    let chosen = |span: Span, version: Option<u32>| match version {
        Some(v) => format!("{here}?span={}&version={v}", span.as_str()),
        None => format!("{here}?span={}", span.as_str()),
    };
    let body = html! {
        p.crumbs { a href={ "/ui/ns/" (namespace) } { (namespace) } " / " }
        h1 { (function) }
        p.links {
            a href={ (here) "/invocations" } { "Invocations" }
            a href={ (here) "/logs" } { "Live logs" }
            a href={ (here) "/dlq" } { "Dead letters (" (counts.dead) ")" }
        }
        section.charts data-activity=(activity_url) {
            div.pick {
                @for span in Span::ALL {
                    a.on[span == params.span] href=(chosen(span, params.version)) { "last " (span.as_str()) }
                }
                " · "
                a.on[params.version.is_none()] href=(chosen(params.span, None)) { "all versions" }
                @for v in &versions {
                    a.on[params.version == Some(v.version)] href=(chosen(params.span, Some(v.version))) { "v" (v.version) }
                }
            }
            p.totals aria-live="polite" { "Loading the last " (params.span.as_str()) "…" }
            div.chart data-chart="traffic" {}
            div.chart data-chart="duration" {}
            div.chart data-chart="cold" {}
        }
        h2 { "Aliases" }
        @if info.aliases.is_empty() {
            (empty("No aliases: nothing is deployed yet.", html! {
                "Deploy a version with " code { "vireo deploy " (function) " FILE.wasm" } "."
            }))
        } @else {
            div.scroll { table #aliases {
                thead { tr { th { "Alias" } th { "Version" } @if writable { th { "Move to" } } } }
                tbody {
                    @for (alias, version) in &info.aliases {
                        tr data-alias=(alias) {
                            td { (alias) }
                            td.version { (split::describe(&info, alias, *version)) }
                            @if writable {
                                td {
                                    @if alias != "latest" {
                                        form.inline method="post" action={ (here) "/aliases/" (alias) } {
                                            (viewer.csrf.field())
                                            select name="version" aria-label={ "version for " (alias) } {
                                                @for v in &versions {
                                                    option value=(v.version) selected[v.version == *version] { "v" (v.version) }
                                                }
                                            }
                                            button type="submit" { "Move" }
                                        }
                                    } @else {
                                        span.hint { "follows each deploy" }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
            @if writable { (split::form(&viewer, &info, &versions)) }
        }
        h2 { "Versions" }
        div.scroll { table #versions {
            thead { tr { th { "Version" } th { "Deployed" } th { "Size" } th { "Component" } th { "Loaded" } } }
            tbody {
                @for v in page_of(&versions, params.versions_page) {
                    tr {
                        td { "v" (v.version) }
                        td { (time(v.created_at_us)) }
                        td.num { (v.component_size / 1024) " KiB" }
                        td { code { (&v.component_sha256[..12.min(v.component_sha256.len())]) } }
                        td { @if warm.contains(&v.version) { "warm" } @else { "cold" } }
                    }
                }
            }
        } }
        (pager(params.versions_page, versions.len(), |p| format!("{}&versions_page={p}", chosen(params.span, params.version))))
        @if let Some(latest) = versions.first() {
            h2 { "Settings of v" (latest.version) }
            p.hint { "Secrets are shown by name; their values never leave the server." }
            pre.settings { (serde_json::to_string_pretty(&latest.settings).unwrap_or_default()) }
        }
        h2 { "Schedules" }
        @if schedules.is_empty() {
            (empty("No schedules run this function.", html! {
                "Add one with " code { "vireo cron add " (function) " --schedule \"*/5 * * * *\"" } "."
            }))
        } @else {
            div.scroll { table #schedules {
                thead { tr { th { "Schedule" } th { "Cron" } th { "Zone" } th { "State" } th { "Next" } @if writable { th {} } } }
                tbody {
                    @for schedule in &schedules {
                        tr data-schedule=(schedule.name) {
                            td { (schedule.name) }
                            td { code { (schedule.expression) } }
                            td { (schedule.time_zone) }
                            td.state { @if schedule.paused { "paused" } @else { "active" } }
                            td { @if let Some(at) = schedule.next_fire_at_us { (time(at)) } @else { "never" } }
                            @if writable {
                                td {
                                    form.inline method="post" action={ "/ui/ns/" (namespace) "/schedules/" (schedule.name) } {
                                        (viewer.csrf.field())
                                        input type="hidden" name="paused" value=(!schedule.paused);
                                        button type="submit" { @if schedule.paused { "Resume" } @else { "Pause" } }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
        }
        h2 { "Async queue" }
        dl.counts {
            dt { "queued" } dd { (counts.queued) }
            dt { "running" } dd { (counts.running) }
            dt { "succeeded" } dd { (counts.succeeded) }
            dt { "failed" } dd { (counts.failed) }
            dt { "dead" } dd { a href={ (here) "/dlq" } { (counts.dead) } }
        }
    };
    Ok(layout::page(function.as_str(), Some(&viewer), body))
}

#[derive(Deserialize)]
pub(crate) struct MoveAlias {
    version: u32,
}

/// Points an alias at another version (a roll back or forward), as `PUT .../aliases/{alias}`.
pub(crate) async fn move_alias(
    viewer: Viewer,
    State(deployer): State<Arc<dyn Deployer>>,
    AliasPath {
        namespace,
        function,
        alias,
    }: AliasPath,
    Form(form): Form<MoveAlias>,
) -> Result<Redirect, UiError> {
    authorize(&viewer.caller, Action::Write, &namespace)?;
    deployer
        .set_alias(
            &namespace,
            &function,
            &alias,
            &AliasTarget::single(form.version),
        )
        .await?;
    Ok(Redirect::to(&function_url(&namespace, &function)))
}

#[derive(Deserialize)]
pub(crate) struct PauseForm {
    paused: bool,
}

/// Pauses or resumes a schedule, as `POST .../schedules/{name}/pause|resume`.
pub(crate) async fn pause_schedule(
    viewer: Viewer,
    State(schedules): State<Arc<dyn ScheduleStore>>,
    SchedulePath { namespace, name }: SchedulePath,
    Form(form): Form<PauseForm>,
) -> Result<Redirect, UiError> {
    authorize(&viewer.caller, Action::Write, &namespace)?;
    let schedule = set_paused(schedules.as_ref(), &namespace, &name, form.paused).await?;
    Ok(Redirect::to(&function_url(&namespace, &schedule.function)))
}
