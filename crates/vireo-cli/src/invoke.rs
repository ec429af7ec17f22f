//! `vireo invoke`: a small curl for functions, with the invocation id on stderr.

use std::io::IsTerminal as _;

use anyhow::{Context as _, bail};
use clap::Args;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, Response};

use crate::args;
use crate::client::{self, Client};
use crate::invocations;
use crate::output::{self, Format};

/// Every answer to an invocation names it in this header.
const INVOCATION_ID_HEADER: &str = "x-vireo-invocation-id";

/// How much of a failed answer is kept to find Vireo's own error message in it.
const ERROR_BODY_KEPT: usize = 64 * 1024;

#[derive(Args)]
pub struct InvokeArgs {
    /// The function to call: NAME (its `latest` alias), NAME@VERSION or NAME@ALIAS.
    #[arg(value_name = "NAME[@VERSION|@ALIAS]", value_parser = args::target)]
    target: String,

    /// Path and query string the function sees, e.g. `/users?id=1`.
    #[arg(long, default_value = "/", value_parser = parse_path)]
    path: String,

    /// HTTP method [default: GET, or POST when --data is given]
    #[arg(short = 'X', long, value_name = "METHOD", value_parser = parse_method)]
    method: Option<Method>,

    /// Request body: a literal STRING, @FILE for a file's contents, or @- for standard input.
    #[arg(short = 'd', long, value_name = "STRING|@FILE|@-", value_parser = args::data)]
    data: Option<args::Data>,

    /// Request header as 'Name: value'; repeat for more.
    #[arg(short = 'H', long = "header", value_name = "'K: V'", value_parser = parse_header)]
    headers: Vec<(HeaderName, HeaderValue)>,

    /// Print the response's status line and headers (to stdout) before its body.
    #[arg(short = 'i', long)]
    include: bool,

    /// Queue the invocation durably and return at once (202 with its id) instead of waiting
    /// for the answer; follow it with `vireo invocations --id ID`.
    #[arg(long = "async")]
    asynchronous: bool,

    /// With --async: a repeat with the same key within 24 h returns the first invocation's id
    /// and queues nothing.
    #[arg(long, value_name = "KEY", requires = "asynchronous")]
    idempotency_key: Option<String>,

    /// With --async: wait until the invocation has finished (its retries included), showing
    /// its progress on stderr, then print it as `vireo invocations --id` does.
    #[arg(long, requires = "asynchronous")]
    wait: bool,
}

pub async fn run(client: &Client, format: Format, args: InvokeArgs) -> anyhow::Result<()> {
    let body = match args.data {
        Some(data) => Some(data.read().await?),
        None => None,
    };
    let method = args.method.unwrap_or(if body.is_some() {
        Method::POST
    } else {
        Method::GET
    });
    let path = format!("/fn/{}/{}{}", client.namespace(), args.target, args.path);
    let mut request = client
        .request(method, &path)
        .headers(args.headers.into_iter().collect());
    if args.asynchronous {
        request = request.header("prefer", "respond-async");
    }
    if let Some(key) = &args.idempotency_key {
        request = request.header("idempotency-key", key);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let mut response = client
        .send(request)
        .await
        .with_context(|| format!("invoking {}", args.target))?;

    let id = response
        .headers()
        .get(INVOCATION_ID_HEADER)
        .map(|id| String::from_utf8_lossy(id.as_bytes()).into_owned());
    if let Some(id) = &id {
        eprintln!("invocation: {id}");
        if response.status() == reqwest::StatusCode::ACCEPTED {
            if args.wait {
                eprintln!("queued; waiting for it to finish…");
                let answer = invocations::until_finished(client, id).await?;
                return invocations::show(format, answer);
            }
            eprintln!("queued; follow it with: vireo invocations --id {id}");
        }
    }
    if args.include {
        output::write_stdout(head(&response).as_bytes())?;
    }
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        return failed(response, &args.target, args.include).await;
    }
    while let Some(chunk) = response
        .chunk()
        .await
        .context("reading the function's answer")?
    {
        output::write_stdout(&chunk)?;
    }
    if status == reqwest::StatusCode::ACCEPTED {
        // The server's JSON has no final newline; a shell prompt should not follow it on the line.
        output::write_stdout(b"\n")?;
    }
    Ok(())
}

/// A failed answer. Vireo's own error (its JSON envelope) is said once, as the command's error;
/// a function's own failing answer is its output, on stdout, and the error names its status.
async fn failed(mut response: Response, target: &str, include: bool) -> anyhow::Result<()> {
    let status = response.status();
    let mut kept = Vec::new();
    let mut streamed = false;
    while let Some(chunk) = response
        .chunk()
        .await
        .context("reading the function's answer")?
    {
        if streamed {
            output::write_stdout(&chunk)?;
        } else if kept.len() + chunk.len() > ERROR_BODY_KEPT {
            // Too long for an error of Vireo's: it is the function's answer.
            output::write_stdout(&kept)?;
            output::write_stdout(&chunk)?;
            streamed = true;
        } else {
            kept.extend_from_slice(&chunk);
        }
    }
    if !streamed {
        if let Some(message) = client::api_error_message(&kept).filter(|_| !include) {
            bail!("{message} (HTTP {status})");
        }
        output::write_stdout(&kept)?;
        if !kept.ends_with(b"\n") && std::io::stdout().is_terminal() {
            // The error below goes to the same terminal: not on the answer's last line.
            output::write_stdout(b"\n")?;
        }
    }
    bail!("{target} answered HTTP {status}")
}

/// The status line and headers, as `curl -i` shows them.
fn head(response: &Response) -> String {
    let mut text = format!("{:?} {}\n", response.version(), response.status());
    for (name, value) in response.headers() {
        text.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    text.push('\n');
    text
}

fn parse_path(value: &str) -> Result<String, String> {
    if value.starts_with('/') {
        Ok(value.to_string())
    } else {
        Err(format!("the path must start with '/', e.g. /{value}"))
    }
}

fn parse_method(value: &str) -> Result<Method, String> {
    Method::from_bytes(value.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("invalid HTTP method {value:?}"))
}

fn parse_header(value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let (name, val) = value
        .split_once(':')
        .ok_or_else(|| format!("invalid header {value:?}: use 'Name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| format!("invalid header name {name:?}"))?;
    let val = HeaderValue::from_str(val.trim())
        .map_err(|_| format!("invalid value for header {name}"))?;
    Ok((name, val))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_split_at_the_first_colon() {
        let (name, value) = parse_header("Content-Type: application/json").unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("content-type", "application/json")
        );
        let (name, value) = parse_header("x-url:http://a:1").unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("x-url", "http://a:1")
        );
        assert!(
            parse_header("no colon")
                .unwrap_err()
                .contains("'Name: value'")
        );
        assert!(
            parse_header("bad name: x")
                .unwrap_err()
                .contains("header name")
        );
    }

    #[test]
    fn targets_paths_and_methods_are_checked() {
        assert_eq!(parse_path("/a?b=1"), Ok("/a?b=1".into()));
        assert!(parse_path("a").unwrap_err().contains("start with '/'"));
        assert_eq!(parse_method("put"), Ok(Method::PUT));
        assert!(parse_method("GE T").is_err());
    }
}
