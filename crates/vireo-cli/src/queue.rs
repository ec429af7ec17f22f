//! `vireo queue`, `vireo dlq` and `vireo retry-policy`: a function's async queue, its dead
//! letters, and how its async invocations are retried.

use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};
use vireo_core::{InvocationId, Name};

use crate::args;
use crate::client::Client;
use crate::output::{self, Format};
use crate::views::{AsyncInvocationList, QueueCounts, RetryPolicy};

const ERROR_SHOWN: usize = 60;

#[derive(Args)]
pub struct QueueArgs {
    /// The function whose async invocations to count by status.
    #[arg(value_parser = args::function_name)]
    name: Name,
}

pub async fn counts(client: &Client, format: Format, args: QueueArgs) -> anyhow::Result<()> {
    let answer = client
        .json(client.request(Method::GET, &client.function_path(&args.name, "/queue")))
        .await
        .with_context(|| format!("reading the queue of {}", client.qualified(&args.name)))?;
    output::emit(format, answer, |counts: QueueCounts| {
        output::table(
            ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "DEAD"],
            [[
                counts.queued.to_string(),
                counts.running.to_string(),
                counts.succeeded.to_string(),
                counts.failed.to_string(),
                counts.dead.to_string(),
            ]],
        )
    })
}

#[derive(Subcommand)]
pub enum DlqCommand {
    /// List the function's dead invocations, oldest first.
    Ls {
        #[arg(value_parser = args::function_name)]
        name: Name,
        /// At most this many [default: 100]
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// Queue dead invocations again, with fresh attempts and event age.
    #[command(group = clap::ArgGroup::new("which").required(true).multiple(false))]
    Redrive {
        #[arg(value_parser = args::function_name)]
        name: Name,
        /// The invocation to redrive; repeat for more. Or --all.
        #[arg(long = "id", value_name = "ID", value_parser = args::invocation_id, group = "which")]
        ids: Vec<InvocationId>,
        /// Redrive every dead invocation of the function. Or --id ID...
        #[arg(long, group = "which")]
        all: bool,
    },
}

pub async fn dlq(client: &Client, format: Format, command: DlqCommand) -> anyhow::Result<()> {
    match command {
        DlqCommand::Ls { name, limit } => {
            let mut request = client.request(Method::GET, &client.function_path(&name, "/dlq"));
            if let Some(limit) = limit {
                request = request.query(&[("limit", limit)]);
            }
            let answer = client.json(request).await.with_context(|| {
                format!("listing the dead letters of {}", client.qualified(&name))
            })?;
            output::emit(format, answer, |list: AsyncInvocationList| {
                output::table(
                    ["ID", "ATTEMPTS", "ACCEPTED", "ERROR"],
                    list.invocations.iter().map(|invocation| {
                        [
                            invocation.id.clone(),
                            invocation.attempts.to_string(),
                            output::timestamp(invocation.accepted_at_us),
                            output::or_dash(
                                invocation
                                    .error
                                    .as_deref()
                                    .map(|e| output::truncate(&e.replace('\n', " "), ERROR_SHOWN)),
                            ),
                        ]
                    }),
                )
            })
        }
        DlqCommand::Redrive { name, ids, all } => {
            let body = if all {
                json!({ "all": true })
            } else {
                json!({ "ids": ids.iter().map(InvocationId::as_str).collect::<Vec<_>>() })
            };
            let answer = client
                .json(
                    client
                        .request(Method::POST, &client.function_path(&name, "/dlq/redrive"))
                        .json(&body),
                )
                .await
                .with_context(|| {
                    format!("redriving the dead letters of {}", client.qualified(&name))
                })?;
            output::emit(format, answer, |redriven: Value| {
                format!(
                    "redriven: {} invocation(s) queued again\n",
                    redriven["redriven"]
                )
            })
        }
    }
}

#[derive(Args)]
pub struct RetryPolicyArgs {
    /// The function whose retry policy to show, or change with the flags below.
    #[arg(value_parser = args::function_name)]
    name: Name,
    /// Attempts in total, the first included.
    #[arg(long, value_name = "N")]
    max_attempts: Option<u32>,
    /// Give up on invocations older than this (e.g. 6h, 30m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    max_age: Option<Duration>,
    /// Backoff before the second attempt, doubling per attempt (e.g. 1s).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    min_backoff: Option<Duration>,
    /// Longest backoff (e.g. 5m).
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    max_backoff: Option<Duration>,
    /// Retry 4xx answers too (true or false).
    #[arg(long, value_name = "BOOL")]
    retry_4xx: Option<bool>,
}

pub async fn retry_policy(
    client: &Client,
    format: Format,
    args: RetryPolicyArgs,
) -> anyhow::Result<()> {
    let path = client.function_path(&args.name, "/retry-policy");
    let context = || format!("the retry policy of {}", client.qualified(&args.name));
    let mut policy = client
        .json(client.request(Method::GET, &path))
        .await
        .with_context(|| format!("reading {}", context()))?;
    let changes = [
        ("max_attempts", args.max_attempts.map(|n| json!(n))),
        (
            "max_event_age_secs",
            args.max_age.map(|d| json!(d.as_secs())),
        ),
        (
            "min_backoff_ms",
            args.min_backoff.map(|d| json!(d.as_millis() as u64)),
        ),
        (
            "max_backoff_ms",
            args.max_backoff.map(|d| json!(d.as_millis() as u64)),
        ),
        ("retry_on_4xx", args.retry_4xx.map(|b| json!(b))),
    ];
    if changes.iter().any(|(_, value)| value.is_some()) {
        let Some(fields) = policy.as_object_mut() else {
            bail!("the server's retry policy is not a JSON object");
        };
        for (field, value) in changes {
            if let Some(value) = value {
                fields.insert(field.to_string(), value);
            }
        }
        policy = client
            .json(client.request(Method::PUT, &path).json(&policy))
            .await
            .with_context(|| format!("changing {}", context()))?;
    }
    output::emit(format, policy, |policy: RetryPolicy| {
        let backoff =
            |ms: Option<u64>| ms.map_or("server default".to_string(), output::duration_ms);
        output::details(&[
            ("max attempts", policy.max_attempts.to_string()),
            (
                "max event age",
                output::duration_ms(policy.max_event_age_secs * 1000),
            ),
            ("min backoff", backoff(policy.min_backoff_ms)),
            ("max backoff", backoff(policy.max_backoff_ms)),
            ("retry 4xx", policy.retry_on_4xx.to_string()),
        ])
    })
}
