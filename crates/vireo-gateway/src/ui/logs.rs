//! A function's live log tail: the page shows the last lines, then the script follows new ones
//! over server-sent events (the same stream as `GET .../logs?follow=true`), with pause and a
//! filter. Lines are written into the page as text, never as HTML.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::sse::{KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use vireo_core::time::now_micros;
use vireo_core::{LogQuery, Name, Records};

use super::error::UiError;
use super::functions::function_url;
use super::layout::{self, time};
use super::session::SeenFunction;
use crate::api::logs::follow_lines;
use crate::state::LogFeed;

/// The lines the page opens with.
const OPENING_LINES: u32 = 200;
/// The most lines one read of the stream returns.
const STREAM_BATCH: u32 = 1000;

fn log_query(namespace: &Name, function: &Name, limit: u32) -> LogQuery {
    LogQuery {
        namespace: namespace.clone(),
        function: function.clone(),
        invocation: None,
        since_us: None,
        after_seq: None,
        limit,
        newest: false,
    }
}

pub(crate) async fn tail(
    SeenFunction {
        viewer,
        namespace,
        function,
    }: SeenFunction,
    State(records): State<Arc<dyn Records>>,
) -> Result<Html<String>, UiError> {
    let opened_at = now_micros();
    let lines = records
        .read_logs(&LogQuery {
            newest: true,
            ..log_query(&namespace, &function, OPENING_LINES)
        })
        .await?;
    let here = function_url(&namespace, &function);
    // The stream starts after the last line shown, or at the page's time when none was.
    let stream = match lines.last() {
        Some(last) => format!("{here}/logs/stream?after={}", last.seq),
        None => format!("{here}/logs/stream?since_us={opened_at}"),
    };
    let body = html! {
        p.crumbs {
            a href={ "/ui/ns/" (namespace) } { (namespace) } " / "
            a href=(here) { (function) } " / "
        }
        h1 { "Live logs" }
        div.toolbar {
            button #pause type="button" aria-pressed="false" { "Pause" }
            label { "Filter " input #filter type="search" placeholder="text in the line"; }
            span #tail-state role="status" { "connecting…" }
        }
        ol.log #log data-stream=(stream) {
            @for line in &lines {
                li.{ "stream-" (line.stream.as_str()) } {
                    (time(line.at_us)) " "
                    a.inv href={ "/ui/invocations/" (line.invocation_id) } { (&line.invocation_id.as_str()[28..]) }
                    " " span.text { (line.line) }
                }
            }
        }
        @if lines.is_empty() {
            p.hint #log-empty { "No lines yet: new lines appear here as the function prints them." }
        }
    };
    Ok(layout::page("Live logs", Some(&viewer), body))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamParams {
    after: Option<i64>,
    since_us: Option<i64>,
}

pub(crate) async fn stream(
    SeenFunction {
        namespace,
        function,
        ..
    }: SeenFunction,
    State(records): State<Arc<dyn Records>>,
    State(feed): State<LogFeed>,
    Query(params): Query<StreamParams>,
) -> Result<Response, UiError> {
    let query = LogQuery {
        after_seq: params.after,
        since_us: match params.after {
            Some(_) => None,
            None => Some(params.since_us.unwrap_or_else(now_micros)),
        },
        ..log_query(&namespace, &function, STREAM_BATCH)
    };
    Ok(Sse::new(follow_lines(records, query, feed))
        .keep_alive(KeepAlive::default())
        .into_response())
}
