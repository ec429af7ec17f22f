//! A namespace's usage and cost over the last 30 days, per function or per day, under the
//! server's price plan: the report `GET /v1/usage` answers, as a table.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Html;
use maud::html;
use serde::Deserialize;
use vireo_core::time::now_micros;
use vireo_core::{Action, Catalog, PricePlan, Records, StoreError, UsageGrouping, UsageQuery};

use super::error::UiError;
use super::functions::first_page;
use super::layout::{self, empty, page_of, pager};
use super::session::Viewer;
use crate::api::usage::{DEFAULT_WINDOW_US, compute};
use crate::auth::authorize;
use crate::extract::NamespacePath;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageParams {
    by: Option<UsageGrouping>,
    #[serde(default = "first_page")]
    page: usize,
}

pub(crate) async fn report(
    viewer: Viewer,
    State(catalog): State<Arc<dyn Catalog>>,
    State(records): State<Arc<dyn Records>>,
    State(plan): State<PricePlan>,
    NamespacePath(namespace): NamespacePath,
    Query(params): Query<UsageParams>,
) -> Result<Html<String>, UiError> {
    authorize(&viewer.caller, Action::Read, &namespace)?;
    if !catalog.namespace_exists(&namespace).await? {
        return Err(StoreError::NamespaceNotFound(namespace).into());
    }
    let group_by = match params.by {
        Some(UsageGrouping::Day) => UsageGrouping::Day,
        _ => UsageGrouping::Function,
    };
    let now = now_micros();
    let query = UsageQuery {
        namespace: namespace.clone(),
        function: None,
        from_us: now - DEFAULT_WINDOW_US,
        to_us: now,
        group_by,
    };
    let report = compute(records.as_ref(), plan, query).await?;
    let here = format!("/ui/ns/{namespace}/usage");
    let body = html! {
        p.crumbs { a href={ "/ui/ns/" (namespace) } { (namespace) } " / " }
        h1 { "Usage and cost, last 30 days" }
        div.pick {
            a.on[group_by == UsageGrouping::Function] href={ (here) "?by=function" } { "per function" }
            a.on[group_by == UsageGrouping::Day] href={ (here) "?by=day" } { "per day (UTC)" }
        }
        @if report.rows.is_empty() {
            (empty("Nothing was invoked in the last 30 days.", html! {
                "Usage is summed from the invocation records; it grows as functions run."
            }))
        } @else {
            div.scroll { table #usage {
                thead { tr {
                    th { @if group_by == UsageGrouping::Day { "Day" } @else { "Function" } }
                    th { "Requests" } th { "Billed ms" } th { "GB-s" } th { "Cold starts" } th { "Cost" }
                } }
                tbody {
                    @for row in page_of(&report.rows, params.page) {
                        tr {
                            td { (row.key) }
                            td.num { (row.requests) }
                            td.num { (row.billed_ms) }
                            td.num { (format!("{:.4}", row.gb_seconds)) }
                            td.num { (row.cold_starts) }
                            td.num { (format!("${:.6}", row.cost)) }
                        }
                    }
                }
                tfoot { tr {
                    th { "Total" }
                    td.num { (report.totals.requests) }
                    td.num { (report.totals.billed_ms) }
                    td.num { (format!("{:.4}", report.totals.gb_seconds)) }
                    td.num { (report.totals.cold_starts) }
                    td.num { (format!("${:.6}", report.totals.cost)) }
                } }
            } }
            (pager(params.page, report.rows.len(), |p| format!("{here}?by={}&page={p}", by_name(group_by))))
        }
        h2 { "Price plan" }
        dl.counts {
            dt { "per million requests" } dd { (format!("${}", plan.per_million_requests)) }
            dt { "per GB-second" } dd { (format!("${}", plan.per_gb_second)) }
            dt { "free requests" } dd { (plan.free_requests) }
            dt { "free GB-seconds" } dd { (plan.free_gb_seconds) }
        }
        p.hint { "The free tier applies to the whole bill: before it, this namespace's requests would cost "
            (format!("${:.6}", report.totals.cost_before_free_tier)) "." }
    };
    Ok(layout::page("Usage", Some(&viewer), body))
}

fn by_name(group_by: UsageGrouping) -> &'static str {
    match group_by {
        UsageGrouping::Day => "day",
        _ => "function",
    }
}
