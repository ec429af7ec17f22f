//! Prometheus metrics: the recorder, the metric names and their help, and the few calls the
//! platform makes. Labels are namespace, function, version, status and trigger only — never
//! ids — so their number stays bounded by what is deployed.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use metrics::{
    Counter, Gauge, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram,
    gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use vireo_core::{InvocationRecord, KvStoreId, Name};

const INVOCATIONS: &str = "vireo_invocations_total";
const DURATION: &str = "vireo_invocation_duration_seconds";
const INSTANTIATION: &str = "vireo_instantiation_seconds";
const IN_FLIGHT: &str = "vireo_invocations_in_flight";
const COLD_STARTS: &str = "vireo_cold_starts_total";
const REJECTIONS: &str = "vireo_admission_rejections_total";
const COMPILE: &str = "vireo_compile_seconds";
const CPU: &str = "vireo_invocation_cpu_seconds_total";
const KV_OPERATIONS: &str = "vireo_kv_operations_total";
const KV_DURATION: &str = "vireo_kv_operation_seconds";

/// From 100 µs (an instantiation) to 15 min (the longest timeout).
const SECONDS_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
    30.0, 900.0,
];

/// The installed recorder plus the process collector; `render` is `GET /metrics`.
pub struct Telemetry {
    handle: PrometheusHandle,
    process: metrics_process::Collector,
}

impl Telemetry {
    /// Installs the global recorder; call once, before anything records.
    pub fn install() -> anyhow::Result<Self> {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), &SECONDS_BUCKETS)
            .context("configuring histogram buckets")?
            .build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).context("installing the metrics recorder")?;
        describe();
        let process = metrics_process::Collector::default();
        process.describe();
        Ok(Self { handle, process })
    }

    /// The exposition, without the series of deleted functions.
    pub fn render(&self) -> String {
        self.process.collect();
        let rendered = self.handle.render();
        let deleted = DELETED.lock().unwrap_or_else(|p| p.into_inner());
        if deleted.is_empty() {
            return rendered;
        }
        let mut kept = String::with_capacity(rendered.len());
        for line in rendered.lines() {
            if !deleted.iter().any(|series| series.labels(line)) {
                kept.push_str(line);
                kept.push('\n');
            }
        }
        kept
    }
}

/// A deleted function's series. The recorder cannot drop a series, so they are left out of
/// the exposition until the name is used again; a function created again under the name
/// continues them (counters never go backwards).
struct DeletedSeries {
    /// `namespace="…",function="…"`, the labels every per-function series starts with.
    labels: String,
}

impl DeletedSeries {
    fn new(namespace: &Name, function: &Name) -> Self {
        Self {
            labels: format!("namespace=\"{namespace}\",function=\"{function}\""),
        }
    }

    /// Whether an exposition line is one of its samples.
    fn labels(&self, line: &str) -> bool {
        vireo_gateway::api::metrics::leads_with_labels(line, &self.labels)
    }
}

static DELETED: LazyLock<Mutex<Vec<DeletedSeries>>> = LazyLock::new(Mutex::default);

/// Leaves a deleted function's series out of `/metrics` (and so out of `vireo top`).
pub fn function_deleted(namespace: &Name, function: &Name) {
    let mut deleted = DELETED.lock().unwrap_or_else(|p| p.into_inner());
    let series = DeletedSeries::new(namespace, function);
    if !deleted.iter().any(|known| known.labels == series.labels) {
        deleted.push(series);
    }
}

fn function_active(namespace: &Name, function: &Name) {
    let mut deleted = DELETED.lock().unwrap_or_else(|p| p.into_inner());
    if !deleted.is_empty() {
        let labels = DeletedSeries::new(namespace, function).labels;
        deleted.retain(|series| series.labels != labels);
    }
}

fn describe() {
    describe_counter!(
        vireo_gateway::ROUTE_REQUESTS,
        "Requests that took a published route, by namespace, route and status."
    );
    describe_histogram!(
        vireo_gateway::ROUTE_DURATION,
        Unit::Seconds,
        "How long requests that took a published route took to answer (to the response head)."
    );
    describe_counter!(INVOCATIONS, "Finished invocations by outcome and trigger.");
    describe_histogram!(DURATION, Unit::Seconds, "How long invocations ran.");
    describe_histogram!(
        INSTANTIATION,
        Unit::Seconds,
        "Time to get an instance ready: loading the version when cold, plus instantiation."
    );
    describe_counter!(
        CPU,
        Unit::Seconds,
        "CPU time invocations used on the server's threads: guest code and host calls made for it."
    );
    describe_gauge!(IN_FLIGHT, "Invocations running now.");
    describe_counter!(
        COLD_STARTS,
        "Invocations that had to load their version first."
    );
    describe_counter!(
        REJECTIONS,
        "Invocations refused by admission control: reason timeout (429) or queue_full (503)."
    );
    describe_histogram!(
        COMPILE,
        Unit::Seconds,
        "Time to compile a deployed component."
    );
    describe_counter!(
        KV_OPERATIONS,
        "Key-value operations functions made, by namespace, store and operation."
    );
    describe_histogram!(
        KV_DURATION,
        Unit::Seconds,
        "How long the store took for a function's key-value operation, by operation."
    );
    describe_gauge!(
        vireo_runtime::OUTBOUND_CONNECTIONS_METRIC,
        "Connections the server holds open to databases and brokers for functions, by kind."
    );
    describe_histogram!(
        vireo_runtime::OUTBOUND_CALL_DURATION_METRIC,
        Unit::Seconds,
        "How long one database or broker call a function made took, by kind."
    );
    describe_gauge!(
        vireo_triggers::ASYNC_PENDING_METRIC,
        "Async invocations queued or running, per namespace (refreshed every third of the lease)."
    );
}

/// Counts one finished invocation.
pub fn invocation_finished(record: &InvocationRecord) {
    let (namespace, function) = (&record.namespace, &record.function);
    let mut functions = FUNCTIONS.lock().unwrap_or_else(|p| p.into_inner());
    // Looked up by reference: the names are cloned only for a function's first record.
    if let Some(metrics) = functions
        .get_mut(namespace)
        .and_then(|known| known.get_mut(function))
    {
        metrics.record(record);
    } else {
        let mut metrics = FunctionMetrics::new(namespace, function);
        metrics.record(record);
        functions
            .entry(namespace.clone())
            .or_default()
            .insert(function.clone(), metrics);
    }
}

/// A function's metric handles, registered once: looking a metric up by its label strings
/// allocates them and searches the registry, which was a noticeable part of each invocation.
/// Kept as long as the registry keeps the series, i.e. for the process's life.
struct FunctionMetrics {
    instantiation: Histogram,
    cpu_micros: Counter,
    /// By version, so the versions of a split alias can be compared.
    durations: Vec<(u32, Histogram)>,
    /// One counter per (version, status, trigger) seen, a handful per version.
    invocations: Vec<((u32, &'static str, &'static str), Counter)>,
}

impl FunctionMetrics {
    fn new(namespace: &Name, function: &Name) -> Self {
        let labels = [
            ("namespace", namespace.to_string()),
            ("function", function.to_string()),
        ];
        Self {
            instantiation: histogram!(INSTANTIATION, &labels),
            cpu_micros: counter!(CPU, &labels),
            durations: Vec::new(),
            invocations: Vec::new(),
        }
    }

    fn record(&mut self, record: &InvocationRecord) {
        let outcome = (
            record.version,
            record.status.as_str(),
            record.trigger.as_str(),
        );
        match self.invocations.iter().find(|(seen, _)| *seen == outcome) {
            Some((_, invocations)) => invocations.increment(1),
            None => {
                let invocations = counter!(
                    INVOCATIONS,
                    "namespace" => record.namespace.to_string(),
                    "function" => record.function.to_string(),
                    "version" => outcome.0.to_string(),
                    "status" => outcome.1,
                    "trigger" => outcome.2
                );
                invocations.increment(1);
                self.invocations.push((outcome, invocations));
            }
        }
        let seconds = micros_as_seconds(record.duration_us);
        match self.durations.iter().find(|(v, _)| *v == record.version) {
            Some((_, duration)) => duration.record(seconds),
            None => {
                let duration = histogram!(
                    DURATION,
                    "namespace" => record.namespace.to_string(),
                    "function" => record.function.to_string(),
                    "version" => record.version.to_string()
                );
                duration.record(seconds);
                self.durations.push((record.version, duration));
            }
        }
        self.instantiation.record(micros_as_seconds(record.init_us));
        self.cpu_micros.increment(record.cpu_us);
    }
}

/// Handles by namespace, then function, so a lookup borrows the record's names.
static FUNCTIONS: LazyLock<Mutex<HashMap<Name, HashMap<Name, FunctionMetrics>>>> =
    LazyLock::new(Mutex::default);

/// A cold start is the first invocation of a function this node forgot, or of one created
/// again under a deleted name: its series are shown again.
pub fn cold_start(namespace: &Name, function: &Name) {
    function_active(namespace, function);
    counter!(COLD_STARTS, "namespace" => namespace.to_string(), "function" => function.to_string())
        .increment(1);
}

pub fn admission_refused(namespace: &Name, function: &Name, reason: &'static str) {
    counter!(REJECTIONS, "namespace" => namespace.to_string(), "function" => function.to_string(), "reason" => reason)
        .increment(1);
}

/// One key-value operation a function made.
pub fn kv_operation(store: &KvStoreId, op: &'static str, took: Duration) {
    counter!(
        KV_OPERATIONS,
        "namespace" => store.namespace.to_string(),
        "store" => store.store.to_string(),
        "op" => op
    )
    .increment(1);
    histogram!(KV_DURATION, "op" => op).record(took.as_secs_f64());
}

pub fn compiled(took: Duration) {
    histogram!(COMPILE).record(took.as_secs_f64());
}

/// Counts an invocation as in flight until dropped.
pub struct InFlight(());

static IN_FLIGHT_GAUGE: LazyLock<Gauge> = LazyLock::new(|| gauge!(IN_FLIGHT));

impl InFlight {
    pub fn start() -> Self {
        IN_FLIGHT_GAUGE.increment(1.0);
        Self(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT_GAUGE.decrement(1.0);
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "durations below 2^53 µs (285 years) are exact"
)]
fn micros_as_seconds(micros: u64) -> f64 {
    micros as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_functions_samples_are_recognised_by_their_leading_labels() {
        let name = |n: &str| Name::parse("name", n).unwrap();
        let series = DeletedSeries::new(&name("default"), &name("hello"));
        for sample in [
            r#"vireo_invocations_total{namespace="default",function="hello",status="ok",trigger="http"} 3"#,
            r#"vireo_cold_starts_total{namespace="default",function="hello"} 1"#,
            r#"vireo_invocation_duration_seconds_bucket{namespace="default",function="hello",le="0.001"} 2"#,
        ] {
            assert!(series.labels(sample), "{sample}");
        }
        for other in [
            r#"vireo_invocations_total{namespace="default",function="hello-2",status="ok",trigger="http"} 3"#,
            r#"vireo_invocations_total{namespace="team",function="hello",status="ok",trigger="http"} 3"#,
            "# TYPE vireo_invocations_total counter",
            "vireo_invocations_in_flight 0",
        ] {
            assert!(!series.labels(other), "{other}");
        }
    }
}
