//! A function's async queue counts and its dead-letter queue, with redrive (one invocation or
//! all), as `POST .../dlq/redrive` does it.

use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::response::{Html, Redirect};
use maud::html;
use serde::Deserialize;
use vireo_core::time::now_micros;
use vireo_core::{Action, QueueAdmin};

use super::error::UiError;
use super::functions::{PageParam, function_url};
use super::layout::{self, empty, page_of, pager, time};
use super::session::{SeenFunction, Viewer};
use crate::auth::authorize;
use crate::error::ApiError;
use crate::extract::{FunctionPath, invocation_id};

/// The most dead invocations the pages list.
const MOST: u32 = 1000;

pub(crate) async fn dead_letters(
    SeenFunction {
        viewer,
        namespace,
        function,
    }: SeenFunction,
    State(queue): State<Arc<dyn QueueAdmin>>,
    Query(PageParam { page }): Query<PageParam>,
) -> Result<Html<String>, UiError> {
    let counts = queue.queue_counts(&namespace, &function).await?;
    let all_dead = queue.list_dead(&namespace, &function, MOST).await?;
    let dead = page_of(&all_dead, page);
    let here = function_url(&namespace, &function);
    let redrive = format!("{here}/dlq/redrive");
    let writable = viewer.may_write(&namespace);
    let body = html! {
        p.crumbs {
            a href={ "/ui/ns/" (namespace) } { (namespace) } " / "
            a href=(here) { (function) } " / "
        }
        h1 { "Dead letters" }
        dl.counts #queue-counts {
            dt { "queued" } dd { (counts.queued) }
            dt { "running" } dd { (counts.running) }
            dt { "succeeded" } dd { (counts.succeeded) }
            dt { "failed" } dd { (counts.failed) }
            dt { "dead" } dd { (counts.dead) }
        }
        @if dead.is_empty() {
            (empty("The dead-letter queue is empty.", html! {
                "Async invocations land here when their attempts or event age run out; "
                "the retry policy decides when."
            }))
        } @else {
            @if writable {
                form.inline method="post" action=(redrive) {
                    (viewer.csrf.field())
                    input type="hidden" name="all" value="true";
                    button type="submit" { "Redrive all " (counts.dead) }
                }
            }
            div.scroll { table #dead {
                thead { tr {
                    th { "Invocation" } th { "Accepted" } th { "Attempts" } th { "Last error" }
                    @if writable { th {} }
                } }
                tbody {
                    @for invocation in dead {
                        tr {
                            td { a href={ "/ui/invocations/" (invocation.id) } { code { (invocation.id) } } }
                            td { (time(invocation.accepted_at_us)) }
                            td.num { (invocation.attempts) }
                            td { (invocation.error.as_deref().unwrap_or("")) }
                            @if writable {
                                td {
                                    form.inline method="post" action=(redrive) {
                                        (viewer.csrf.field())
                                        input type="hidden" name="id" value=(invocation.id);
                                        button type="submit" { "Redrive" }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
            (pager(page, all_dead.len(), |p| format!("{here}/dlq?page={p}")))
        }
    };
    Ok(layout::page("Dead letters", Some(&viewer), body))
}

#[derive(Deserialize)]
pub(crate) struct RedriveForm {
    id: Option<String>,
    all: Option<bool>,
}

pub(crate) async fn redrive(
    viewer: Viewer,
    State(queue): State<Arc<dyn QueueAdmin>>,
    FunctionPath {
        namespace,
        function,
    }: FunctionPath,
    Form(form): Form<RedriveForm>,
) -> Result<Redirect, UiError> {
    authorize(&viewer.caller, Action::Write, &namespace)?;
    let ids = match (form.all.unwrap_or(false), form.id.as_deref()) {
        (true, None) => None,
        (false, Some(id)) => Some(vec![invocation_id(id)?]),
        _ => {
            return Err(ApiError::bad_request("redrive one invocation, or all of them").into());
        }
    };
    queue
        .redrive(&namespace, &function, ids.as_deref(), now_micros())
        .await?;
    Ok(Redirect::to(&format!(
        "{}/dlq",
        function_url(&namespace, &function)
    )))
}
