//! `/v1/namespaces/{namespace}/functions/{function}/logs`: read a page of log lines, or follow
//! new ones as server-sent events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt, stream};
use serde::Deserialize;
use utoipa::IntoParams;
use vireo_core::time::{now_micros, parse_since};
use vireo_core::{Catalog, InvocationMatch, LogQuery, Records};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, FunctionPath};
use crate::state::LogFeed;
use crate::views::{LogLineView, LogPage};

/// The most lines one read returns.
const MAX_LINES: u32 = 10_000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// Only lines written since: an RFC 3339 time or a duration ago (`10m`, `2h`).
    since: Option<String>,
    /// Only lines of this invocation: its id, or at least its last 8 characters (the short id
    /// `vireo logs` shows).
    invocation: Option<String>,
    /// Only lines after this sequence number (`next_after` of the previous page).
    after: Option<i64>,
    /// At most this many lines per page (default 1000, at most 10000).
    limit: Option<u32>,
    /// The last this many lines (at most 9999) instead of the first, as `tail` shows them.
    tail: Option<u32>,
    /// Stream new lines as `text/event-stream` until the client disconnects.
    follow: Option<bool>,
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/functions/{function}/logs", tag = "logs",
    params(("namespace" = String, Path), ("function" = String, Path), LogParams),
    responses(
        (status = 200, description = "A page of lines, oldest first; with follow=true a text/event-stream whose events carry one LogLineView each",
            content((LogPage = "application/json"), (String = "text/event-stream"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn read(
    State(catalog): State<Arc<dyn Catalog>>,
    State(records): State<Arc<dyn Records>>,
    State(feed): State<LogFeed>,
    FunctionPath {
        namespace,
        function,
    }: FunctionPath,
    ApiQuery(params): ApiQuery<LogParams>,
) -> Result<Response, ApiError> {
    catalog.get_function(&namespace, &function).await?;
    let now = now_micros();
    let mut since_us = params
        .since
        .as_deref()
        .map(|s| parse_since(s, now))
        .transpose()
        .map_err(ApiError::bad_request)?;
    let follow = params.follow.unwrap_or(false);
    if follow && since_us.is_none() && params.after.is_none() {
        // Following without a starting point means "from now on", like `tail -f` on a new file.
        since_us = Some(now);
    }
    if params.tail.is_some() && (params.limit.is_some() || follow) {
        return Err(ApiError::bad_request(
            "tail reads the last lines: leave out limit and follow",
        ));
    }
    let tail = params.tail.map(|lines| lines.clamp(1, MAX_LINES - 1));
    let query = LogQuery {
        namespace,
        function,
        invocation: params
            .invocation
            .as_deref()
            .map(invocation_match)
            .transpose()?,
        since_us,
        after_seq: params.after,
        // One line more than the tail asks for tells whether older lines are left out.
        limit: tail.map_or(params.limit.unwrap_or(1000).clamp(1, MAX_LINES), |lines| {
            lines + 1
        }),
        newest: tail.is_some(),
    };
    if follow {
        let lines = follow_lines(records, query, feed);
        return Ok(Sse::new(lines)
            .keep_alive(KeepAlive::default())
            .into_response());
    }
    let mut lines = records.read_logs(&query).await?;
    let earlier_lines_left_out = tail.is_some_and(|wanted| lines.len() > wanted as usize);
    if earlier_lines_left_out {
        lines.remove(0);
    }
    let next_after = lines
        .last()
        .map_or(query.after_seq.unwrap_or(0), |line| line.seq);
    Ok(Json(LogPage {
        lines: lines.into_iter().map(LogLineView::from).collect(),
        next_after,
        earlier_lines_left_out,
    })
    .into_response())
}

/// New lines as events, woken by each committed batch of records (with a slow poll as a
/// backstop); ends when the client goes away or the server shuts down.
fn invocation_match(value: &str) -> Result<InvocationMatch, ApiError> {
    InvocationMatch::parse(value).ok_or_else(|| {
        ApiError::bad_request(format!(
            "{value:?} is not an invocation id: pass the whole id or at least its last {} characters",
            InvocationMatch::SHORTEST_END
        ))
    })
}

pub(crate) fn follow_lines(
    store: Arc<dyn Records>,
    query: LogQuery,
    LogFeed { events, shutdown }: LogFeed,
) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(
        (store, query, events, shutdown),
        |(store, mut query, mut events, shutdown)| async move {
            loop {
                let lines = match store.read_logs(&query).await {
                    Ok(lines) => lines,
                    Err(error) => {
                        tracing::warn!(%error, "log follow stopped: reading logs failed");
                        return None;
                    }
                };
                if let Some(last) = lines.last() {
                    query.after_seq = Some(last.seq);
                    let batch: Vec<Result<Event, Infallible>> =
                        lines.into_iter().map(line_event).collect();
                    return Some((stream::iter(batch), (store, query, events, shutdown)));
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return None,
                    changed = events.changed() => if changed.is_err() {
                        // The record writer is gone: the server is stopping.
                        return None;
                    },
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                }
            }
        },
    )
    .flatten()
}

fn line_event(line: vireo_core::LogLine) -> Result<Event, Infallible> {
    let id = line.seq.to_string();
    let data = serde_json::to_string(&LogLineView::from(line)).unwrap_or_default();
    Ok(Event::default().id(id).data(data))
}
