//! `vireo top`: a live view of each function's invocations per second, errors, latency
//! percentiles and cold starts, computed from two scrapes of the namespace's metrics
//! (`/v1/namespaces/{ns}/metrics`); a function that ran several versions (a split alias) gets
//! a row per version beneath its own.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use prometheus_parse::{Scrape, Value};
use reqwest::Method;
use serde::Serialize;

use crate::client::Client;
use crate::output::{self, Format};

#[derive(Args)]
pub struct TopArgs {
    /// Time between refreshes (e.g. 1s, 500ms).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Print one refresh and exit (the default when stdout is not a terminal).
    #[arg(long)]
    once: bool,
}

/// One function's activity over a refresh interval.
#[derive(Debug, Default, Serialize, PartialEq)]
struct FunctionActivity {
    function: String,
    invocations_per_sec: f64,
    errors_per_sec: f64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    cold_starts: u64,
}

#[derive(Serialize)]
struct Refresh {
    interval_secs: f64,
    /// The namespace's async invocations queued or running.
    async_pending: f64,
    functions: Vec<FunctionActivity>,
}

pub async fn run(client: &Client, format: Format, args: TopArgs) -> anyhow::Result<()> {
    if format == Format::Csv {
        return Err(output::csv_unsupported());
    }
    let live = !args.once && std::io::stdout().is_terminal();
    let mut before = scrape(client).await?;
    let mut taken = Instant::now();
    loop {
        tokio::time::sleep(args.interval).await;
        let after = scrape(client).await?;
        let elapsed = taken.elapsed().as_secs_f64();
        taken = Instant::now();
        let refresh = Refresh {
            interval_secs: elapsed,
            async_pending: gauge(&after, "vireo_async_pending"),
            functions: activity(&before, &after, client.namespace().as_str(), elapsed),
        };
        let text = match format {
            Format::Json => format!("{}\n", serde_json::to_string(&refresh)?),
            _ => render(&refresh, client),
        };
        if live {
            // Clear the screen and home the cursor, like top.
            output::write_stdout(b"\x1b[2J\x1b[H")?;
        }
        output::write_stdout(text.as_bytes())?;
        if !live {
            return Ok(());
        }
        before = after;
    }
}

/// The namespace's series: any key that may read the namespace may watch it.
async fn scrape(client: &Client) -> anyhow::Result<Scrape> {
    let path = format!("/v1/namespaces/{}/metrics", client.namespace());
    let response = client
        .success(client.request(Method::GET, &path))
        .await
        .with_context(|| format!("reading {path}"))?;
    let text = response
        .text()
        .await
        .with_context(|| format!("reading {path}"))?;
    Scrape::parse(text.lines().map(|line| Ok(line.to_string())))
        .context("the server's metrics are not Prometheus text")
}

fn render(refresh: &Refresh, client: &Client) -> String {
    let ms = |value: Option<f64>| value.map_or("-".to_string(), |v| format!("{v:.2}"));
    let mut text = format!(
        "vireo top — {} namespace {} — every {:.1}s — {} async pending\n\n",
        client.base_url(),
        client.namespace(),
        refresh.interval_secs,
        refresh.async_pending
    );
    text.push_str(&output::table(
        ["FUNCTION", "INV/S", "ERR/S", "P50 MS", "P99 MS", "COLD"],
        refresh.functions.iter().map(|f| {
            [
                f.function.clone(),
                format!("{:.1}", f.invocations_per_sec),
                format!("{:.1}", f.errors_per_sec),
                ms(f.p50_ms),
                ms(f.p99_ms),
                f.cold_starts.to_string(),
            ]
        }),
    ));
    text
}

/// A row of the view: a function, or one of its versions when more than one ran (the
/// versions of a split alias, side by side under their function).
type Row = (String, Option<String>);

/// The rows a sample counts towards: its function's, and its version's.
fn rows_of(sample: &prometheus_parse::Sample) -> [Option<Row>; 2] {
    let function = sample
        .labels
        .get("function")
        .unwrap_or_default()
        .to_string();
    let version = sample
        .labels
        .get("version")
        .map(|version| (function.clone(), Some(version.to_string())));
    [Some((function, None)), version]
}

/// Per function of `namespace` (and per version, for functions where several ran): what
/// changed between two scrapes `elapsed` seconds apart.
fn activity(
    before: &Scrape,
    after: &Scrape,
    namespace: &str,
    elapsed: f64,
) -> Vec<FunctionActivity> {
    let mut rows: BTreeMap<Row, FunctionActivity> = BTreeMap::new();
    let in_namespace =
        |sample: &prometheus_parse::Sample| sample.labels.get("namespace") == Some(namespace);
    let delta = |metric: &str, keep: &dyn Fn(&prometheus_parse::Sample) -> bool| {
        let mut sums: BTreeMap<Row, f64> = BTreeMap::new();
        for (scrape, sign) in [(after, 1.0), (before, -1.0)] {
            for sample in scrape.samples.iter().filter(|s| s.metric == metric) {
                if !in_namespace(sample) || !keep(sample) {
                    continue;
                }
                for row in rows_of(sample).into_iter().flatten() {
                    *sums.entry(row).or_default() += sign * number(&sample.value);
                }
            }
        }
        sums
    };
    let per_sec = |count: f64| if elapsed > 0.0 { count / elapsed } else { 0.0 };
    for (row, count) in delta("vireo_invocations_total", &|_| true) {
        rows.entry(row).or_default().invocations_per_sec = per_sec(count);
    }
    // The function's own failures; a client_error (a broken request, a client that left) is the
    // caller's doing.
    for (row, count) in delta("vireo_invocations_total", &|s| {
        matches!(s.labels.get("status"), Some("error" | "timeout"))
    }) {
        rows.entry(row).or_default().errors_per_sec = per_sec(count);
    }
    for (row, count) in delta("vireo_cold_starts_total", &|_| true) {
        rows.entry(row).or_default().cold_starts = count.max(0.0) as u64;
    }
    // A version row only where the function ran more than one version.
    let mut versions_of: BTreeMap<String, usize> = BTreeMap::new();
    for (function, version) in rows.keys() {
        if version.is_some() {
            *versions_of.entry(function.clone()).or_default() += 1;
        }
    }
    rows.retain(|(function, version), _| {
        version.is_none() || versions_of.get(function).is_some_and(|n| *n > 1)
    });
    for ((function, version), entry) in &mut rows {
        entry.function = match version {
            Some(version) => format!("  {function}@{version}"),
            None => function.clone(),
        };
        let buckets = bucket_deltas(before, after, &|sample| {
            in_namespace(sample)
                && rows_of(sample)
                    .into_iter()
                    .flatten()
                    .any(|row| row.0 == *function && row.1 == *version)
        });
        entry.p50_ms = quantile(&buckets, 0.50).map(|s| s * 1000.0);
        entry.p99_ms = quantile(&buckets, 0.99).map(|s| s * 1000.0);
    }
    rows.into_values().collect()
}

/// The duration histograms' cumulative buckets `(upper bound, count)` gained between scrapes,
/// summed over the histograms `keep` takes (one per version of a function).
fn bucket_deltas(
    before: &Scrape,
    after: &Scrape,
    keep: &dyn Fn(&prometheus_parse::Sample) -> bool,
) -> Vec<(f64, f64)> {
    let buckets = |scrape: &Scrape| -> BTreeMap<u64, (f64, f64)> {
        let mut summed: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        let histograms = scrape
            .samples
            .iter()
            .filter(|s| s.metric == "vireo_invocation_duration_seconds" && keep(s));
        for sample in histograms {
            if let Value::Histogram(buckets) = &sample.value {
                for bucket in buckets {
                    let entry = summed
                        .entry(bucket.less_than.to_bits())
                        .or_insert((bucket.less_than, 0.0));
                    entry.1 += bucket.count;
                }
            }
        }
        summed
    };
    let (old, new) = (buckets(before), buckets(after));
    let mut gained: Vec<(f64, f64)> = new
        .iter()
        .map(|(key, (bound, count))| (*bound, count - old.get(key).map_or(0.0, |(_, c)| *c)))
        .collect();
    gained.sort_by(|a, b| a.0.total_cmp(&b.0));
    gained
}

/// The `q` quantile of cumulative buckets, interpolating linearly inside the bucket it falls
/// in (as Prometheus's `histogram_quantile` does); `None` without observations.
fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let within = count - lower.1;
            let share = if within > 0.0 {
                (rank - lower.1) / within
            } else {
                1.0
            };
            return Some(lower.0 + (bound - lower.0) * share);
        }
        lower = (bound, count);
    }
    Some(lower.0)
}

fn number(value: &Value) -> f64 {
    match value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        Value::Histogram(_) | Value::Summary(_) => 0.0,
    }
}

fn gauge(scrape: &Scrape, metric: &str) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .map(|s| number(&s.value))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Scrape {
        Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
    }

    #[test]
    fn quantiles_interpolate_within_the_bucket() {
        let buckets = [
            (0.001, 0.0),
            (0.002, 50.0),
            (0.004, 100.0),
            (f64::INFINITY, 100.0),
        ];
        assert_eq!(quantile(&buckets, 0.5), Some(0.002));
        let p99 = quantile(&buckets, 0.99).unwrap();
        assert!((p99 - 0.00396).abs() < 1e-9, "{p99}");
        assert_eq!(quantile(&[(0.001, 0.0), (f64::INFINITY, 0.0)], 0.5), None);
    }

    #[test]
    fn activity_is_the_difference_between_scrapes() {
        let before = parse(
            "# TYPE vireo_invocations_total counter\n\
             vireo_invocations_total{namespace=\"default\",function=\"hello\",status=\"ok\",trigger=\"http\"} 10\n",
        );
        let after = parse(
            "# TYPE vireo_invocations_total counter\n\
             vireo_invocations_total{namespace=\"default\",function=\"hello\",status=\"ok\",trigger=\"http\"} 30\n\
             vireo_invocations_total{namespace=\"default\",function=\"hello\",status=\"error\",trigger=\"http\"} 4\n\
             vireo_invocations_total{namespace=\"default\",function=\"hello\",status=\"client_error\",trigger=\"http\"} 2\n\
             vireo_invocations_total{namespace=\"other\",function=\"hello\",status=\"ok\",trigger=\"http\"} 99\n\
             # TYPE vireo_invocation_duration_seconds histogram\n\
             vireo_invocation_duration_seconds_bucket{namespace=\"default\",function=\"hello\",le=\"0.001\"} 12\n\
             vireo_invocation_duration_seconds_bucket{namespace=\"default\",function=\"hello\",le=\"+Inf\"} 24\n\
             vireo_invocation_duration_seconds_sum{namespace=\"default\",function=\"hello\"} 0.01\n\
             vireo_invocation_duration_seconds_count{namespace=\"default\",function=\"hello\"} 24\n",
        );
        let functions = activity(&before, &after, "default", 2.0);
        assert_eq!(functions.len(), 1);
        let hello = &functions[0];
        assert_eq!(hello.function, "hello");
        assert_eq!(hello.invocations_per_sec, 13.0);
        assert_eq!(hello.errors_per_sec, 2.0);
        assert_eq!(hello.p50_ms, Some(1.0));
    }

    #[test]
    fn the_versions_of_a_split_show_side_by_side() {
        let before = parse("# TYPE vireo_invocations_total counter\n");
        let after = parse(
            "# TYPE vireo_invocations_total counter\n\
             vireo_invocations_total{namespace=\"default\",function=\"app\",version=\"7\",status=\"ok\",trigger=\"http\"} 18\n\
             vireo_invocations_total{namespace=\"default\",function=\"app\",version=\"8\",status=\"error\",trigger=\"http\"} 2\n\
             vireo_invocations_total{namespace=\"default\",function=\"solo\",version=\"3\",status=\"ok\",trigger=\"http\"} 5\n\
             # TYPE vireo_invocation_duration_seconds histogram\n\
             vireo_invocation_duration_seconds_bucket{namespace=\"default\",function=\"app\",version=\"7\",le=\"0.001\"} 18\n\
             vireo_invocation_duration_seconds_bucket{namespace=\"default\",function=\"app\",version=\"7\",le=\"0.01\"} 18\n\
             vireo_invocation_duration_seconds_bucket{namespace=\"default\",function=\"app\",version=\"7\",le=\"+Inf\"} 18\n\
             vireo_invocation_duration_seconds_sum{namespace=\"default\",function=\"app\",version=\"7\"} 0.01\n\
             vireo_invocation_duration_seconds_count{namespace=\"default\",function=\"app\",version=\"7\"} 18\n\
             vireo_invocation_duration_seconds_bucket{namespace=\"default\",function=\"app\",version=\"8\",le=\"0.001\"} 0\n\
             vireo_invocation_duration_seconds_bucket{namespace=\"default\",function=\"app\",version=\"8\",le=\"0.01\"} 2\n\
             vireo_invocation_duration_seconds_bucket{namespace=\"default\",function=\"app\",version=\"8\",le=\"+Inf\"} 2\n\
             vireo_invocation_duration_seconds_sum{namespace=\"default\",function=\"app\",version=\"8\"} 4\n\
             vireo_invocation_duration_seconds_count{namespace=\"default\",function=\"app\",version=\"8\"} 2\n",
        );
        let rows = activity(&before, &after, "default", 1.0);
        let seen: Vec<(&str, f64, f64)> = rows
            .iter()
            .map(|row| {
                (
                    row.function.as_str(),
                    row.invocations_per_sec,
                    row.errors_per_sec,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("app", 20.0, 2.0),
                ("  app@7", 18.0, 0.0),
                ("  app@8", 2.0, 2.0),
                ("solo", 5.0, 0.0)
            ]
        );
        // The function's latency covers both versions; each version's only its own.
        assert_eq!(rows[1].p99_ms.map(|ms| ms <= 1.0), Some(true));
        assert!(rows[2].p50_ms.is_some_and(|ms| ms > 1.0));
        assert!(rows[0].p50_ms.is_some_and(|ms| ms <= 1.0));
    }
}
