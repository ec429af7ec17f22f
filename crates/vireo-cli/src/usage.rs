//! `vireo usage`: billed requests, time, GB-seconds and cost, like a Lambda bill.

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use reqwest::Method;
use serde::Deserialize;
use vireo_core::Name;

use crate::args;
use crate::client::Client;
use crate::output::{self, Format};

#[derive(Args)]
pub struct UsageArgs {
    /// Invocations started since: a duration ago (7d, 12h) or an RFC 3339 time.
    #[arg(long, default_value = "30d", value_name = "WHEN")]
    since: String,
    /// Invocations started before: a duration ago or an RFC 3339 time [default: now]
    #[arg(long, value_name = "WHEN")]
    until: Option<String>,
    /// Group by function, function@version (to compare a split alias's versions), UTC day or
    /// UTC hour.
    #[arg(long, value_enum, default_value_t = By::Function)]
    by: By,
    /// Only this function.
    #[arg(long, value_name = "NAME", value_parser = args::function_name)]
    function: Option<Name>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum By {
    Function,
    Version,
    Day,
    Hour,
}

#[derive(Deserialize)]
struct Report {
    rows: Vec<Line>,
    totals: Totals,
    #[serde(default)]
    sqlite_bytes: Option<u64>,
}

#[derive(Deserialize)]
struct Line {
    key: String,
    requests: u64,
    billed_ms: u64,
    gb_seconds: f64,
    cold_starts: u64,
    #[serde(default)]
    kv_reads: u64,
    #[serde(default)]
    kv_writes: u64,
    cost: f64,
}

#[derive(Deserialize)]
struct Totals {
    requests: u64,
    billed_ms: u64,
    gb_seconds: f64,
    cold_starts: u64,
    #[serde(default)]
    kv_reads: u64,
    #[serde(default)]
    kv_writes: u64,
    cost_before_free_tier: f64,
    cost: f64,
}

pub async fn run(client: &Client, format: Format, args: UsageArgs) -> anyhow::Result<()> {
    let by = match args.by {
        By::Function => "function",
        By::Version => "version",
        By::Day => "day",
        By::Hour => "hour",
    };
    let mut query = vec![
        ("namespace", client.namespace().to_string()),
        ("from", args.since.clone()),
        ("group_by", by.to_string()),
    ];
    if let Some(until) = &args.until {
        query.push(("to", until.clone()));
    }
    if let Some(function) = &args.function {
        query.push(("function", function.to_string()));
    }
    let answer = client
        .json(client.request(Method::GET, "/v1/usage").query(&query))
        .await
        .context("reading usage")?;
    if format == Format::Json {
        return output::write_stdout(output::pretty_json(&answer).as_bytes());
    }
    let report: Report = output::decode(answer)?;
    let text = match format {
        Format::Csv => csv(by, &report),
        _ => table(by, &report),
    };
    output::write_stdout(text.as_bytes())
}

fn table(by: &str, report: &Report) -> String {
    let header = [
        by.to_uppercase(),
        "REQUESTS".into(),
        "BILLED".into(),
        "GB-S".into(),
        "COLD".into(),
        "KV READS".into(),
        "KV WRITES".into(),
        "COST".into(),
    ];
    let totals = &report.totals;
    let rows = report
        .rows
        .iter()
        .map(|line| {
            [
                line.key.clone(),
                line.requests.to_string(),
                output::duration_ms(line.billed_ms),
                format!("{:.3}", line.gb_seconds),
                line.cold_starts.to_string(),
                line.kv_reads.to_string(),
                line.kv_writes.to_string(),
                format!("${:.6}", line.cost),
            ]
        })
        .chain([[
            "TOTAL".to_string(),
            totals.requests.to_string(),
            output::duration_ms(totals.billed_ms),
            format!("{:.3}", totals.gb_seconds),
            totals.cold_starts.to_string(),
            totals.kv_reads.to_string(),
            totals.kv_writes.to_string(),
            format!("${:.6}", totals.cost_before_free_tier),
        ]]);
    let mut text = output::table(header.each_ref().map(String::as_str), rows);
    text.push_str(&format!("after the free tier: ${:.6}\n", totals.cost));
    if let Some(bytes) = report.sqlite_bytes {
        text.push_str(&format!(
            "SQLite databases hold {} now\n",
            output::size(bytes)
        ));
    }
    text
}

fn csv(by: &str, report: &Report) -> String {
    let mut text =
        format!("{by},requests,billed_ms,gb_seconds,cold_starts,kv_reads,kv_writes,cost\n");
    for line in &report.rows {
        text.push_str(&format!(
            "{},{},{},{},{},{},{},{}\n",
            csv_field(&line.key),
            line.requests,
            line.billed_ms,
            line.gb_seconds,
            line.cold_starts,
            line.kv_reads,
            line.kv_writes,
            line.cost
        ));
    }
    text
}

/// Keys are function names or dates, but quote anything CSV would misread anyway.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        serde_json::from_value(serde_json::json!({
            "rows": [
                {"key": "hello", "requests": 3, "billed_ms": 3, "gb_seconds": 0.000375, "cold_starts": 1, "kv_reads": 4, "kv_writes": 2, "cost": 0.0000006},
                {"key": "a,b", "requests": 1, "billed_ms": 5, "gb_seconds": 0.000625, "cold_starts": 0, "cost": 0.0000002},
            ],
            "totals": {"requests": 4, "billed_ms": 8, "gb_seconds": 0.001, "cold_starts": 1,
                       "cost_before_free_tier": 0.0000008, "cost": 0.0}
        }))
        .unwrap()
    }

    #[test]
    fn csv_has_a_header_and_one_row_per_group() {
        let text = csv("function", &report());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "function,requests,billed_ms,gb_seconds,cold_starts,kv_reads,kv_writes,cost"
        );
        assert_eq!(lines[1], "hello,3,3,0.000375,1,4,2,0.0000006");
        assert!(lines[2].starts_with("\"a,b\",1,5,"), "{}", lines[2]);
        assert_eq!(lines.len(), 3);
    }

    #[test]
    fn table_ends_with_totals_and_the_net_cost() {
        let text = table("function", &report());
        assert!(text.contains("TOTAL"), "{text}");
        assert!(text.ends_with("after the free tier: $0.000000\n"), "{text}");
    }
}
