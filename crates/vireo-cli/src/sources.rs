//! `vireo sources`: event sources whose broker messages invoke a function, each one stored in
//! the durable async queue before the broker is told it was received.

use anyhow::Context as _;
use clap::{Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::json;

use crate::args;
use crate::client::Client;
use crate::output::{self, Format};
use crate::views::{SourceList, SourceView};

#[derive(Subcommand)]
pub enum SourcesCommand {
    /// Invoke a function for every message of a broker's stream.
    Add {
        /// Name of the source in the namespace.
        name: String,
        #[arg(long, value_enum)]
        kind: Kind,
        /// The broker's URL, without a password (redis://127.0.0.1:6379/0,
        /// nats://127.0.0.1:4222, mqtt://127.0.0.1:1883, postgres://app@127.0.0.1:5432/shop,
        /// amqp://guest@127.0.0.1:5672/%2f).
        #[arg(long)]
        url: String,
        /// What to read: a Redis stream's key, a JetStream stream, (as --topic) an MQTT topic
        /// filter such as sensors/+/temp, (as --table) a PostgreSQL table, e.g. shop.orders, or
        /// (as --queue) a RabbitMQ queue that exists.
        #[arg(long, visible_aliases = ["topic", "table", "queue"])]
        stream: String,
        /// JetStream only: read just the stream's subjects matching this filter (orders.>).
        #[arg(long)]
        subject: Option<String>,
        /// The function to invoke: NAME, NAME@VERSION or NAME@ALIAS.
        #[arg(long, value_name = "NAME[@VERSION|@ALIAS]", value_parser = args::target)]
        function: String,
        /// A namespace secret holding the broker's password (`vireo secrets set NAME`).
        #[arg(long, value_name = "NAME")]
        password_secret: Option<String>,
        /// Most messages taken from the broker at once [default: 100]
        #[arg(long, value_name = "N")]
        batch_size: Option<u32>,
        /// Deliver messages in batches: each invocation gets a JSON array of up to
        /// --batch-size messages gathered for at most this long (e.g. 500ms; at most 5s)
        #[arg(long, value_name = "DURATION", value_parser = batch_window)]
        batch_window: Option<u32>,
        /// Invoke the function only for messages whose JSON body matches, as JSON: fields each
        /// with a list of patterns, e.g. '{"type": ["order.created"], "amount": [{"numeric":
        /// [">", 100]}]}' (also prefix, suffix, exists, anything-but; objects descend); the
        /// others are acknowledged and counted as filtered
        #[arg(long, value_name = "JSON", value_parser = json_object)]
        filter: Option<serde_json::Value>,
        /// MQTT only: the subscription's QoS, 1 (at least once) or 0 (best effort: nothing is
        /// acknowledged, and a message in flight when Vireo stops is lost) [default: 1]
        #[arg(long, value_name = "0|1", value_parser = clap::value_parser!(u8).range(0..=1))]
        qos: Option<u8>,
    },
    /// List the namespace's sources with their state, counters and lag on the node answering.
    Ls,
    /// Stop reading until resumed; the broker keeps what arrives meanwhile.
    Pause { name: String },
    /// Read again from where the source left off.
    Resume { name: String },
    /// Delete a source; messages already accepted still run.
    Rm { name: String },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// A Redis stream, read through a consumer group.
    Redis,
    /// A NATS JetStream stream, read through a durable pull consumer.
    Nats,
    /// An MQTT topic filter, subscribed to at QoS 1 (or --qos 0) with a persistent session.
    Mqtt,
    /// A PostgreSQL table's inserted, updated and deleted rows, recorded by a trigger.
    Postgres,
    /// A RabbitMQ queue (AMQP 0-9-1), consumed with manual acknowledgements.
    Amqp,
}

pub async fn run(client: &Client, format: Format, command: SourcesCommand) -> anyhow::Result<()> {
    let base = format!("/v1/namespaces/{}/sources", client.namespace());
    let source = |name: &str| format!("{base}/{name}");
    match command {
        SourcesCommand::Add {
            name,
            kind,
            url,
            stream,
            subject,
            function,
            password_secret,
            batch_size,
            batch_window,
            filter,
            qos,
        } => {
            let kind = match kind {
                Kind::Redis => "redis",
                Kind::Nats => "nats",
                Kind::Mqtt => "mqtt",
                Kind::Postgres => "postgres",
                Kind::Amqp => "amqp",
            };
            let body = json!({
                "name": name, "kind": kind, "url": url, "stream": stream, "subject": subject,
                "function": function,
                "password_secret": password_secret, "batch_size": batch_size,
                "batch_window_ms": batch_window, "filter": filter, "qos": qos,
            });
            let answer = client
                .json(client.request(Method::POST, &base).json(&body))
                .await
                .with_context(|| format!("adding source {name}"))?;
            output::emit(format, answer, |created: SourceView| {
                format!(
                    "source {} added: {} {} -> {}\n",
                    created.name, created.kind, created.stream, created.function
                )
            })
        }
        SourcesCommand::Ls => {
            let answer = client
                .json(client.request(Method::GET, &base))
                .await
                .context("listing sources")?;
            output::emit(format, answer, |list: SourceList| {
                sources_table(&list.sources)
            })
        }
        SourcesCommand::Rm { name } => {
            client
                .no_content(client.request(Method::DELETE, &source(&name)))
                .await
                .with_context(|| format!("deleting source {name}"))?;
            if format == Format::Json {
                return output::write_stdout(b"{}\n");
            }
            output::write_stdout(format!("source {name} deleted\n").as_bytes())
        }
        SourcesCommand::Pause { name } => toggle(client, format, &source(&name), "pause").await,
        SourcesCommand::Resume { name } => toggle(client, format, &source(&name), "resume").await,
    }
}

/// A `--batch-window` in milliseconds; the server checks its bound.
fn batch_window(text: &str) -> Result<u32, String> {
    let window = humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 500ms, 2s)"))?;
    u32::try_from(window.as_millis()).map_err(|_| "too long".to_string())
}

/// A `--filter`: JSON, which the server checks as a filter.
fn json_object(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

async fn toggle(client: &Client, format: Format, path: &str, action: &str) -> anyhow::Result<()> {
    let answer = client
        .json(client.request(Method::POST, &format!("{path}/{action}")))
        .await
        .with_context(|| format!("{action} {path}"))?;
    output::emit(format, answer, |s: SourceView| {
        let state = if s.paused { "paused" } else { "resumed" };
        format!("source {}: {state}\n", s.name)
    })
}

fn sources_table(sources: &[SourceView]) -> String {
    output::table(
        [
            "NAME",
            "KIND",
            "STREAM",
            "FUNCTION",
            "STATE",
            "RECEIVED",
            "ACKED",
            "ACKED/S",
            "FILTERED",
            "LAG",
            "LAST ERROR",
        ],
        sources.iter().map(|s| {
            [
                s.name.clone(),
                s.kind.clone(),
                s.stream.clone(),
                s.function.clone(),
                s.state.clone(),
                s.received.to_string(),
                s.acknowledged.to_string(),
                format!("{:.1}", s.acknowledged_per_second),
                s.filtered.to_string(),
                s.lag.map_or("-".to_string(), |lag| lag.to_string()),
                s.last_error.clone().unwrap_or_else(|| "-".to_string()),
            ]
        }),
    )
}
