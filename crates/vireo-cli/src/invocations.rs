//! `vireo invocations`: a function's recent invocations, or one invocation in detail.

use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use reqwest::Method;
use serde_json::Value;
use vireo_core::{AsyncStatus, InvocationId, Name};

use crate::args;
use crate::client::Client;
use crate::output::{self, Format};
use crate::views::{AsyncInvocationView, InvocationDetail, InvocationList, InvocationView};

/// Errors are cut to this many characters in the table; `--id` shows them whole.
const ERROR_SHOWN: usize = 60;

#[derive(Args)]
pub struct InvocationsArgs {
    /// The function whose invocations to list, newest first.
    #[arg(value_parser = args::function_name, required_unless_present = "id", conflicts_with = "id")]
    name: Option<Name>,

    /// Show this one invocation in detail instead (the id `vireo invoke` prints).
    #[arg(long, value_name = "ID", value_parser = args::invocation_id)]
    id: Option<InvocationId>,

    /// At most this many invocations [default: the server's page size]
    #[arg(long, value_name = "N", conflicts_with = "id")]
    limit: Option<u32>,

    /// With --id: wait until an async invocation has finished (succeeded, failed or dead),
    /// showing its progress on stderr, then show it.
    #[arg(long, requires = "id")]
    wait: bool,
}

pub async fn run(client: &Client, format: Format, args: InvocationsArgs) -> anyhow::Result<()> {
    if let Some(id) = args.id {
        let answer = if args.wait {
            until_finished(client, &id.to_string()).await?
        } else {
            read(client, &id.to_string()).await?
        };
        return show(format, answer);
    }
    let name = args.name.expect("clap requires NAME without --id");
    let mut request = client.request(Method::GET, &client.function_path(&name, "/invocations"));
    if let Some(limit) = args.limit {
        request = request.query(&[("limit", limit)]);
    }
    let answer = client
        .json(request)
        .await
        .with_context(|| format!("listing the invocations of {}", client.qualified(&name)))?;
    output::emit(format, answer, |list: InvocationList| {
        table(&list.invocations)
    })
}

/// Prints one invocation in detail.
pub fn show(format: Format, answer: Value) -> anyhow::Result<()> {
    output::emit(format, answer, |detail: InvocationDetail| match detail {
        InvocationDetail::Direct(invocation) => details(&invocation),
        InvocationDetail::Async(invocation) => async_details(&invocation),
    })
}

async fn read(client: &Client, id: &str) -> anyhow::Result<Value> {
    client
        .json(client.request(Method::GET, &format!("/v1/invocations/{id}")))
        .await
        .with_context(|| format!("reading invocation {id}"))
}

/// Polls an invocation until it has finished, saying on stderr each time its status or attempt
/// count changes; returns the final answer. A direct invocation is finished when it is found.
pub async fn until_finished(client: &Client, id: &str) -> anyhow::Result<Value> {
    let mut pause = Duration::from_millis(100);
    let mut last_said = None;
    loop {
        let answer = read(client, id).await?;
        let Ok(InvocationDetail::Async(invocation)) = output::decode(answer.clone()) else {
            return Ok(answer);
        };
        let status = AsyncStatus::parse(&invocation.status)
            .with_context(|| format!("invocation {id} has an unknown status"))?;
        if status.is_terminal() {
            return Ok(answer);
        }
        let progress = progress_line(status, invocation.attempts);
        if last_said.as_ref() != Some(&progress) {
            eprintln!("{progress}");
            last_said = Some(progress);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// Where an unfinished async invocation is, for people.
fn progress_line(status: AsyncStatus, attempts_made: u32) -> String {
    match (status, attempts_made) {
        (AsyncStatus::Running, made) => format!("running attempt {}…", made + 1),
        (_, 0) => "queued…".to_string(),
        (_, made) => format!("queued for attempt {} after {made} failed…", made + 1),
    }
}

pub fn table(invocations: &[InvocationView]) -> String {
    output::table(
        [
            "ID", "VERSION", "STATUS", "HTTP", "DURATION", "COLD", "STARTED", "ERROR",
        ],
        invocations.iter().map(|invocation| {
            [
                invocation.id.clone(),
                invocation.version.to_string(),
                invocation.status.clone(),
                output::or_dash(invocation.http_status),
                output::duration_us(invocation.duration_us),
                yes_no(invocation.cold),
                output::timestamp(invocation.started_at_us),
                // One line per invocation, even for multi-line errors.
                output::or_dash(
                    invocation
                        .error
                        .as_deref()
                        .map(|e| output::truncate(&e.replace('\n', " "), ERROR_SHOWN)),
                ),
            ]
        }),
    )
}

fn details(invocation: &InvocationView) -> String {
    output::details(&[
        ("id", invocation.id.clone()),
        (
            "function",
            format!("{}/{}", invocation.namespace, invocation.function),
        ),
        ("version", invocation.version.to_string()),
        ("trigger", invocation.trigger.clone()),
        ("status", invocation.status.clone()),
        ("http status", output::or_dash(invocation.http_status)),
        ("duration", output::duration_us(invocation.duration_us)),
        ("cold start", yes_no(invocation.cold)),
        ("started", output::timestamp(invocation.started_at_us)),
        ("error", output::or_dash(invocation.error.as_deref())),
    ])
}

/// Response bodies longer than this are cut in the details view; `-o json` has them whole.
const BODY_SHOWN: usize = 2000;

fn async_details(invocation: &AsyncInvocationView) -> String {
    let response = invocation.response.as_ref();
    let body = response.map(|response| match (&response.body, &response.body_base64) {
        (Some(text), _) => output::truncate(text, BODY_SHOWN),
        (None, Some(_)) => "(binary; see -o json)".to_string(),
        (None, None) => String::new(),
    });
    output::details(&[
        ("id", invocation.id.clone()),
        (
            "function",
            format!(
                "{}/{}@{}",
                invocation.namespace, invocation.function, invocation.target
            ),
        ),
        ("trigger", invocation.trigger.clone()),
        ("status", invocation.status.clone()),
        ("attempts", invocation.attempts.to_string()),
        ("accepted", output::timestamp(invocation.accepted_at_us)),
        (
            "next attempt",
            output::or_dash(invocation.next_attempt_at.as_deref()),
        ),
        ("http status", output::or_dash(response.map(|r| r.status))),
        (
            "body",
            match (body, response.is_some_and(|r| r.body_truncated)) {
                (Some(body), true) => format!("{body} (truncated by the server)"),
                (body, _) => output::or_dash(body),
            },
        ),
        ("error", output::or_dash(invocation.error.as_deref())),
    ])
}

fn yes_no(value: bool) -> String {
    if value { "yes" } else { "no" }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invocation(error: Option<&str>) -> InvocationView {
        serde_json::from_value(serde_json::json!({
            "id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","namespace":"default","function":"hello","version":2,
            "trigger":"http","started_at":"x","started_at_us":0,"duration_us":1234,"status":"error",
            "http_status":null,"cold":true,"error":error}))
        .unwrap()
    }

    #[test]
    fn progress_counts_attempts_from_one() {
        assert_eq!(progress_line(AsyncStatus::Queued, 0), "queued…");
        assert_eq!(progress_line(AsyncStatus::Running, 0), "running attempt 1…");
        assert_eq!(
            progress_line(AsyncStatus::Queued, 1),
            "queued for attempt 2 after 1 failed…"
        );
    }

    #[test]
    fn table_rows_fit_on_one_line() {
        let long_error = format!("guest trapped:\n{}", "x".repeat(100));
        let text = table(&[invocation(Some(&long_error))]);
        assert_eq!(text.lines().count(), 2, "{text}");
        let row = text.lines().nth(1).unwrap();
        assert!(row.contains("1.234 ms"), "{row}");
        assert!(
            row.contains("  -  "),
            "missing HTTP status shows as -: {row}"
        );
        assert!(
            row.ends_with(&format!("guest trapped: {}…", "x".repeat(45))),
            "{row}"
        );
    }

    #[test]
    fn details_show_every_field() {
        let text = details(&invocation(None));
        assert!(
            text.starts_with("id:          0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\n"),
            "{text}"
        );
        assert!(text.contains("function:    default/hello\n"), "{text}");
        assert!(text.contains("cold start:  yes\n"), "{text}");
        assert!(text.ends_with("error:       -\n"), "{text}");
    }
}
