//! `vireo logs`: prints a function's log lines, one per line, or follows new ones as they are
//! written (server-sent events).

use anyhow::Context as _;
use clap::Args;
use reqwest::{Method, header};
use serde_json::Value;
use vireo_core::time::{now_micros, parse_since};
use vireo_core::{InvocationMatch, Name};

use crate::args;
use crate::client::Client;
use crate::output::{self, Format};
use crate::sse::SseParser;
use crate::views::{LogLineView, LogPage};

#[derive(Args)]
pub struct LogsArgs {
    /// The function whose logs to print.
    #[arg(value_parser = args::function_name)]
    name: Name,

    /// Keep printing new lines as they are written, until Ctrl-C (after the last --tail lines,
    /// or from --since).
    #[arg(short = 'f', long)]
    follow: bool,

    /// Only lines written since then: a duration ago (`90s`, `10m`, `2h`) or an RFC 3339 time.
    #[arg(long, value_name = "10m|RFC3339", value_parser = parse_since_arg)]
    since: Option<String>,

    /// Only the lines of this invocation: the id `vireo invoke` prints, or the short one
    /// `vireo logs` shows before each line.
    #[arg(long, value_name = "ID", value_parser = args::invocation_match)]
    invocation: Option<InvocationMatch>,

    /// The last N lines, as `tail` shows them; older ones left out are mentioned on stderr
    #[arg(long, alias = "limit", value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..10_000))]
    tail: u32,
}

/// Checks `--since` here for an early, clear error; the text itself is sent, so a duration is
/// measured against the server's clock.
fn parse_since_arg(value: &str) -> Result<String, String> {
    parse_since(value, now_micros())?;
    Ok(value.to_string())
}

pub async fn run(client: &Client, format: Format, args: LogsArgs) -> anyhow::Result<()> {
    let function = client.qualified(&args.name);
    let mut query: Vec<(&str, String)> = Vec::new();
    query.extend(args.since.clone().map(|since| ("since", since)));
    query.extend(
        args.invocation
            .map(|invocation| ("invocation", invocation.as_str().to_string())),
    );
    let path = client.function_path(&args.name, "/logs");
    if !args.follow || args.since.is_none() {
        let mut page_query = query.clone();
        page_query.push(("tail", args.tail.to_string()));
        let answer = client
            .json(client.request(Method::GET, &path).query(&page_query))
            .await
            .with_context(|| format!("reading the logs of {function}"))?;
        let page: LogPage = output::decode(answer)?;
        if page.earlier_lines_left_out {
            eprintln!(
                "(older lines left out: --tail N shows more, --since 1h shows the last hour)"
            );
        }
        let text = page
            .lines
            .into_iter()
            .map(|line| render(format, line))
            .collect::<anyhow::Result<String>>()?;
        output::write_stdout(text.as_bytes())?;
        if !args.follow {
            return Ok(());
        }
        // Follow on from the last line shown, as `tail -f` does.
        query.push(("after", page.next_after.to_string()));
    }
    query.push(("follow", "true".to_string()));
    let request = client
        .request(Method::GET, &path)
        .query(&query)
        .header(header::ACCEPT, "text/event-stream");
    tokio::select! {
        result = follow(client, request, format) => result.with_context(|| format!("following the logs of {function}")),
        // Ctrl-C is how a follow normally ends: not an error.
        Ok(()) = tokio::signal::ctrl_c() => Ok(()),
    }
}

/// Prints the function's lines written from now on, as they are written (`vireo dev`).
pub async fn follow_from_now(client: &Client, name: &Name, format: Format) -> anyhow::Result<()> {
    let path = client.function_path(name, "/logs");
    let answer = client
        .json(client.request(Method::GET, &path).query(&[("tail", "1")]))
        .await?;
    let page: LogPage = output::decode(answer)?;
    let request = client
        .request(Method::GET, &path)
        .query(&[
            ("after", page.next_after.to_string()),
            ("follow", "true".to_string()),
        ])
        .header(header::ACCEPT, "text/event-stream");
    follow(client, request, format).await
}

/// Prints each event's line until the server ends the stream.
async fn follow(
    client: &Client,
    request: reqwest::RequestBuilder,
    format: Format,
) -> anyhow::Result<()> {
    let mut response = client.success(request).await?;
    let mut parser = SseParser::default();
    while let Some(chunk) = response.chunk().await.context("reading the event stream")? {
        for data in parser.push(&chunk) {
            let line = serde_json::from_str(&data)
                .with_context(|| format!("the server sent an event that is not JSON: {data}"))?;
            output::write_stdout(render(format, line)?.as_bytes())?;
        }
    }
    Ok(())
}

/// One log line: compact JSON (JSON Lines) for `-o json`, else `<at> <invocation> <stream> <line>`.
fn render(format: Format, line: Value) -> anyhow::Result<String> {
    Ok(match format {
        Format::Json => format!("{line}\n"),
        Format::Csv => return Err(output::csv_unsupported()),
        Format::Table => {
            let line: LogLineView = output::decode(line)?;
            // Ids are UUIDv7: the leading characters are a timestamp shared by neighbours, the
            // trailing ones are random, so the tail tells concurrent invocations apart.
            let id = &line.invocation_id;
            let invocation = &id[id.len().saturating_sub(8)..];
            format!("{} {invocation} {} {}\n", line.at, line.stream, line.line)
        }
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn line() -> Value {
        json!({"seq":7,"invocation_id":"0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b","function":"hello","version":1,
               "at":"2026-01-02T03:04:05.000006Z","at_us":1,"stream":"stdout","line":"hello called: /"})
    }

    #[test]
    fn lines_print_plainly_or_as_json_lines() {
        assert_eq!(
            render(Format::Table, line()).unwrap(),
            "2026-01-02T03:04:05.000006Z 2e3f4a5b stdout hello called: /\n"
        );
        let json = render(Format::Json, line()).unwrap();
        assert_eq!(json.lines().count(), 1);
        assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), line());
    }

    #[test]
    fn since_is_checked_but_sent_as_written() {
        assert_eq!(parse_since_arg("10m"), Ok("10m".into()));
        assert_eq!(
            parse_since_arg("2026-01-02T03:04:05Z"),
            Ok("2026-01-02T03:04:05Z".into())
        );
        assert!(
            parse_since_arg("yesterday")
                .unwrap_err()
                .contains("RFC 3339")
        );
    }
}
