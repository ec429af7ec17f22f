//! RED numbers over time (requests, errors, p50/p99 duration, cold starts) computed from the
//! stored invocation records, so a chart shows what every node recorded, also after a restart.
//! The records are read newest first, page by page, down to the window's start; at most
//! [`MAX_RECORDS`] of them, and a chart that hit that limit says so.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use vireo_core::time::now_micros;
use vireo_core::{InvocationQuery, InvocationRecord, InvocationStatus, Name, Records};

use super::error::UiError;
use super::session::SeenFunction;

/// The most records one chart reads.
const MAX_RECORDS: usize = 50_000;
const PAGE: u32 = 1000;
const MINUTE_US: i64 = 60_000_000;

/// The time a chart covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Span {
    #[default]
    Hour,
    Day,
    Week,
}

impl Span {
    pub const ALL: [Span; 3] = [Span::Hour, Span::Day, Span::Week];

    /// The window and the width of one bucket in it.
    fn window_and_bucket_us(self) -> (i64, i64) {
        match self {
            Span::Hour => (60 * MINUTE_US, MINUTE_US),
            Span::Day => (24 * 60 * MINUTE_US, 15 * MINUTE_US),
            Span::Week => (7 * 24 * 60 * MINUTE_US, 2 * 60 * MINUTE_US),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Span::Hour => "hour",
            Span::Day => "day",
            Span::Week => "week",
        }
    }
}

/// One chart's series, a value per bucket; times are bucket starts in Unix seconds (uPlot's x).
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Activity {
    pub times: Vec<i64>,
    pub requests: Vec<u64>,
    pub errors: Vec<u64>,
    pub cold_starts: Vec<u64>,
    pub p50_ms: Vec<Option<f64>>,
    pub p99_ms: Vec<Option<f64>>,
    /// The window held more records than a chart reads: older buckets are incomplete.
    pub truncated: bool,
}

impl Activity {
    pub fn total_requests(&self) -> u64 {
        self.requests.iter().sum()
    }

    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }
}

/// Buckets `records` (any order) into the window of `span` ending at `now_us`.
pub(crate) fn bucket(records: &[InvocationRecord], span: Span, now_us: i64) -> Activity {
    let (window, width) = span.window_and_bucket_us();
    let buckets = usize::try_from(window / width).expect("a handful of buckets");
    // Buckets end at the next whole bucket after now, so a minute's bucket fills in place.
    let end = (now_us / width + 1) * width;
    let start = end - window;
    let mut durations: Vec<Vec<u64>> = vec![Vec::new(); buckets];
    let mut activity = Activity {
        times: (0..buckets)
            .map(|i| (start + width * i64::try_from(i).unwrap_or(0)) / 1_000_000)
            .collect(),
        requests: vec![0; buckets],
        errors: vec![0; buckets],
        cold_starts: vec![0; buckets],
        p50_ms: Vec::new(),
        p99_ms: Vec::new(),
        truncated: false,
    };
    for record in records {
        let Ok(index) = usize::try_from((record.started_at_us - start).div_euclid(width)) else {
            continue;
        };
        if index >= buckets {
            continue;
        }
        activity.requests[index] += 1;
        if record.status != InvocationStatus::Ok {
            activity.errors[index] += 1;
        }
        if record.cold {
            activity.cold_starts[index] += 1;
        }
        durations[index].push(record.duration_us);
    }
    for bucket in &mut durations {
        bucket.sort_unstable();
        activity.p50_ms.push(percentile_ms(bucket, 50));
        activity.p99_ms.push(percentile_ms(bucket, 99));
    }
    activity
}

/// The nearest-rank percentile of sorted durations, in milliseconds.
#[expect(
    clippy::cast_precision_loss,
    reason = "durations are far below 2^52 µs"
)]
fn percentile_ms(sorted: &[u64], percent: usize) -> Option<f64> {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted.get(rank - 1).map(|us| *us as f64 / 1000.0)
}

/// The function's records of the window (of one version, if given), newest first.
pub(crate) async fn recent(
    records: &dyn Records,
    namespace: &Name,
    function: &Name,
    version: Option<u32>,
    span: Span,
    now_us: i64,
) -> Result<(Vec<InvocationRecord>, bool), UiError> {
    let (window, width) = span.window_and_bucket_us();
    let since = (now_us / width + 1) * width - window;
    let mut query = InvocationQuery {
        namespace: namespace.clone(),
        function: function.clone(),
        before: None,
        limit: PAGE,
    };
    let mut found = Vec::new();
    let mut read = 0;
    loop {
        let page = records.list_invocations(&query).await?;
        let full = page.len() == PAGE as usize;
        read += page.len();
        let Some(last) = page.last() else { break };
        query.before = Some(last.id.clone());
        let reached_start = last.started_at_us < since;
        found.extend(page.into_iter().filter(|record| {
            record.started_at_us >= since && version.is_none_or(|v| record.version == v)
        }));
        if reached_start || !full {
            break;
        }
        if read >= MAX_RECORDS {
            return Ok((found, true));
        }
    }
    Ok((found, false))
}

pub(crate) async fn summary(
    records: &dyn Records,
    namespace: &Name,
    function: &Name,
    version: Option<u32>,
    span: Span,
) -> Result<Activity, UiError> {
    let now = now_micros();
    let (found, truncated) = recent(records, namespace, function, version, span, now).await?;
    Ok(Activity {
        truncated,
        ..bucket(&found, span, now)
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChartParams {
    #[serde(default)]
    span: Span,
    version: Option<u32>,
}

/// A function's chart data as JSON, for the page's script to draw.
pub(crate) async fn chart_data(
    SeenFunction {
        namespace,
        function,
        ..
    }: SeenFunction,
    State(records): State<Arc<dyn Records>>,
    Query(params): Query<ChartParams>,
) -> Result<Json<Activity>, UiError> {
    let activity = summary(
        records.as_ref(),
        &namespace,
        &function,
        params.version,
        params.span,
    )
    .await?;
    Ok(Json(activity))
}

#[cfg(test)]
mod tests {
    use vireo_core::{InvocationId, Trigger};

    use super::*;

    fn record(started_at_us: i64, duration_us: u64, status: InvocationStatus) -> InvocationRecord {
        InvocationRecord {
            id: InvocationId::generate(),
            namespace: Name::default_namespace(),
            function: Name::parse("function", "f").unwrap(),
            version: 1,
            trigger: Trigger::Http,
            started_at_us,
            duration_us,
            status,
            http_status: Some(200),
            cold: duration_us > 5000,
            error: None,
            init_us: 0,
            cpu_us: 0,
            executions: 1,
            memory_mib: 128,
            billed_ms: 1,
            request_bytes: 0,
            response_bytes: 0,
            kv_reads: 0,
            kv_writes: 0,
            kv_bytes: 0,
            object_reads: 0,
            object_writes: 0,
            object_bytes: 0,
            outbound_calls: 0,
            outbound_bytes: 0,
        }
    }

    #[test]
    fn records_fall_into_their_minute_with_red_numbers() {
        let now = 1_000 * MINUTE_US + 30_000_000;
        let records: Vec<_> = (1..=100)
            .map(|ms| record(now - 1, ms * 100, InvocationStatus::Ok))
            .chain([
                record(now - MINUTE_US, 1000, InvocationStatus::Error),
                // Older than the hour: left out.
                record(now - 61 * MINUTE_US, 1000, InvocationStatus::Ok),
            ])
            .collect();
        let activity = bucket(&records, Span::Hour, now);
        assert_eq!(activity.times.len(), 60);
        assert_eq!(activity.total_requests(), 101);
        let last = 59;
        assert_eq!(activity.times[last], 1_000 * 60);
        assert_eq!(activity.requests[last], 100);
        assert_eq!(activity.errors[last - 1], 1);
        assert_eq!(activity.cold_starts[last], 50);
        assert_eq!(activity.p50_ms[last], Some(5.0));
        assert_eq!(activity.p99_ms[last], Some(9.9));
        assert_eq!(activity.p50_ms[0], None);
    }

    #[test]
    fn longer_spans_use_wider_buckets() {
        let now = 10_000 * MINUTE_US;
        assert_eq!(bucket(&[], Span::Day, now).times.len(), 96);
        assert_eq!(bucket(&[], Span::Week, now).times.len(), 84);
    }
}
