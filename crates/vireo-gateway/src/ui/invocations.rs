//! A function's invocations, newest first, filtered by status, trigger, version and time, paged
//! by id; and one invocation with its record, its async attempts and stored answer, and its log
//! lines. The first page refreshes itself (htmx), so new invocations appear as they are stored.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Html;
use maud::html;
use serde::Deserialize;
use vireo_core::time::{now_micros, parse_since};
use vireo_core::{
    InvocationId, InvocationMatch, InvocationQuery, InvocationRecord, InvocationStatus, LogQuery,
    QueueAdmin, Records, Trigger,
};

use super::REFRESH;
use super::error::UiError;
use super::functions::function_url;
use super::layout::{self, empty, millis, time, with_query};
use super::session::{SeenFunction, Viewer};
use crate::api::invocations::find;
use crate::error::ApiError;
use crate::extract::{InvocationPath, invocation_id};

/// Rows per page.
const ROWS: usize = 50;
/// The most records one page looks through for rows that pass its filters.
const MAX_SCANNED: usize = 10_000;
const BATCH: u32 = 500;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct Filters {
    status: Option<String>,
    trigger: Option<String>,
    version: Option<String>,
    /// Only invocations started since: a duration ago (`15m`) or an RFC 3339 time.
    since: Option<String>,
    /// Only invocations older than this id (the next page).
    before: Option<String>,
}

/// The filters, checked: `None` for a filter left empty.
struct Chosen {
    status: Option<InvocationStatus>,
    trigger: Option<Trigger>,
    version: Option<u32>,
    since_us: Option<i64>,
    before: Option<InvocationId>,
}

fn blank_to_none(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl Filters {
    fn check(&self) -> Result<Chosen, ApiError> {
        let invalid =
            |what: &str, value: &str| ApiError::bad_request(format!("{value:?} is not a {what}"));
        Ok(Chosen {
            status: blank_to_none(&self.status)
                .map(|v| InvocationStatus::parse(v).ok_or_else(|| invalid("status", v)))
                .transpose()?,
            trigger: blank_to_none(&self.trigger)
                .map(|v| Trigger::parse(v).ok_or_else(|| invalid("trigger", v)))
                .transpose()?,
            version: blank_to_none(&self.version)
                .map(|v| {
                    v.trim_start_matches('v')
                        .parse()
                        .map_err(|_| invalid("version number", v))
                })
                .transpose()?,
            since_us: blank_to_none(&self.since)
                .map(|v| parse_since(v, now_micros()).map_err(ApiError::bad_request))
                .transpose()?,
            before: blank_to_none(&self.before).map(invocation_id).transpose()?,
        })
    }

    /// This page's address with `before` replaced.
    fn with_before(&self, base: &str, before: Option<&str>) -> String {
        let pairs = [
            ("status", self.status.as_deref()),
            ("trigger", self.trigger.as_deref()),
            ("version", self.version.as_deref()),
            ("since", self.since.as_deref()),
            ("before", before),
        ];
        with_query(base, &pairs)
    }
}

impl Chosen {
    fn keeps(&self, record: &InvocationRecord) -> bool {
        self.status.is_none_or(|s| record.status == s)
            && self.trigger.is_none_or(|t| record.trigger == t)
            && self.version.is_none_or(|v| record.version == v)
    }
}

/// Rows that pass the filters, and whether older ones may follow.
async fn matching(
    records: &dyn Records,
    mut query: InvocationQuery,
    chosen: &Chosen,
) -> Result<(Vec<InvocationRecord>, bool), UiError> {
    let mut rows = Vec::new();
    let mut scanned = 0;
    loop {
        let page = records.list_invocations(&query).await?;
        let full = page.len() == BATCH as usize;
        scanned += page.len();
        for record in page {
            if chosen
                .since_us
                .is_some_and(|since| record.started_at_us < since)
            {
                return Ok((rows, false));
            }
            query.before = Some(record.id.clone());
            if chosen.keeps(&record) {
                rows.push(record);
                if rows.len() == ROWS {
                    return Ok((rows, true));
                }
            }
        }
        if !full {
            return Ok((rows, false));
        }
        if scanned >= MAX_SCANNED {
            return Ok((rows, true));
        }
    }
}

pub(crate) async fn table(
    SeenFunction {
        viewer,
        namespace,
        function,
    }: SeenFunction,
    State(records): State<Arc<dyn Records>>,
    Query(filters): Query<Filters>,
) -> Result<Html<String>, UiError> {
    let chosen = filters.check()?;
    let query = InvocationQuery {
        namespace: namespace.clone(),
        function: function.clone(),
        before: chosen.before.clone(),
        limit: BATCH,
    };
    let (rows, more) = matching(records.as_ref(), query, &chosen).await?;
    let here = format!("{}/invocations", function_url(&namespace, &function));
    let live = chosen.before.is_none();
    let refresh = format!("every {}s", REFRESH.as_secs());
    let option = |value: &str, current: &Option<String>| {
        html! { option value=(value) selected[current.as_deref() == Some(value)] { (value) } }
    };
    let body = html! {
        p.crumbs {
            a href={ "/ui/ns/" (namespace) } { (namespace) } " / "
            a href=(function_url(&namespace, &function)) { (function) } " / "
        }
        h1 { "Invocations" }
        form.filters method="get" action=(here) {
            label { "Status " select name="status" {
                option value="" { "any" }
                @for s in ["ok", "error", "timeout", "client_error"] { (option(s, &filters.status)) }
            } }
            label { "Trigger " select name="trigger" {
                option value="" { "any" }
                @for t in ["http", "async", "cron"] { (option(t, &filters.trigger)) }
            } }
            label { "Version " input type="text" name="version" size="4" inputmode="numeric" value=[filters.version.as_deref()]; }
            label { "Since " input type="text" name="since" size="8" placeholder="15m" value=[filters.since.as_deref()]; }
            button type="submit" { "Filter" }
        }
        div #invocations hx-get=[live.then(|| filters.with_before(&here, None))]
            hx-trigger=[live.then_some(refresh.as_str())] hx-select="#invocations" hx-swap="outerHTML" {
            @if rows.is_empty() {
                (empty("No invocations match.", html! {
                    "Call the function at " code { "/fn/" (namespace) "/" (function) }
                    " (or loosen the filters); invocations appear here within seconds."
                }))
            } @else {
                div.scroll { table {
                    thead { tr {
                        th { "Started" } th { "Invocation" } th { "Version" } th { "Trigger" }
                        th { "Status" } th { "HTTP" } th { "Duration" } th { "Cold" }
                    } }
                    tbody {
                        @for record in &rows {
                            tr.{ "status-" (record.status.as_str()) } {
                                td { (time(record.started_at_us)) }
                                td { a href={ "/ui/invocations/" (record.id) } { code { (record.id) } } }
                                td { "v" (record.version) }
                                td { (record.trigger.as_str()) }
                                td { (record.status.as_str()) }
                                td { @if let Some(status) = record.http_status { (status) } }
                                td.num { (millis(record.duration_us)) }
                                td { @if record.cold { "cold" } }
                            }
                        }
                    }
                } }
            }
        }
        @if more {
            @if let Some(last) = rows.last() {
                p { a.button href=(filters.with_before(&here, Some(last.id.as_str()))) { "Older invocations" } }
            }
        }
    };
    Ok(layout::page("Invocations", Some(&viewer), body))
}

/// The most log lines the invocation page shows.
const MAX_LINES: u32 = 1000;

pub(crate) async fn detail(
    viewer: Viewer,
    State(records): State<Arc<dyn Records>>,
    State(queue): State<Arc<dyn QueueAdmin>>,
    InvocationPath(id): InvocationPath,
) -> Result<Html<String>, UiError> {
    let found = find(records.as_ref(), queue.as_ref(), &viewer.caller, &id).await?;
    let lines = records
        .read_logs(&LogQuery {
            namespace: found.namespace.clone(),
            function: found.function.clone(),
            invocation: Some(InvocationMatch::Id(id.clone())),
            since_us: None,
            after_seq: None,
            limit: MAX_LINES,
            newest: false,
        })
        .await?;
    let body = html! {
        p.crumbs {
            a href={ "/ui/ns/" (found.namespace) } { (found.namespace) } " / "
            a href=(function_url(&found.namespace, &found.function)) { (found.function) } " / "
            a href={ (function_url(&found.namespace, &found.function)) "/invocations" } { "invocations" } " / "
        }
        h1 { "Invocation " code { (id) } }
        h2 { "Record" }
        p.hint { "An async invocation shows its status, attempts and stored answer, with its last execution's record." }
        pre.record { (serde_json::to_string_pretty(&found.detail).unwrap_or_default()) }
        h2 { "Log lines" }
        @if lines.is_empty() {
            (empty("This invocation wrote no log lines (or they are not stored yet).", html! {
                "Lines a function prints to stdout or stderr show up here."
            }))
        } @else {
            ol.log {
                @for line in &lines {
                    li.{ "stream-" (line.stream.as_str()) } { (time(line.at_us)) " " span.text { (line.line) } }
                }
            }
        }
    };
    Ok(layout::page("Invocation", Some(&viewer), body))
}
