//! `GET /v1/usage`: billed requests, time and GB-seconds, grouped, with their cost under the
//! server's price plan.

use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vireo_core::time::{now_micros, parse_since, rfc3339};
use vireo_core::usage::gb_seconds;
use vireo_core::{
    Action, Caller, Catalog, Name, PricePlan, Records, UsageGrouping, UsageQuery, UsageRow,
};

use crate::auth::authorize;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::state::FunctionSqlite;

pub(crate) const DEFAULT_WINDOW_US: i64 = 30 * 24 * 3600 * 1_000_000;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// Namespace (default `default`).
    namespace: Option<String>,
    /// Only this function.
    function: Option<String>,
    /// Invocations started at or after: RFC 3339 or a duration ago (`7d`); default 30 days ago.
    from: Option<String>,
    /// Invocations started before: RFC 3339 or a duration ago; default now.
    to: Option<String>,
    /// `function` (default), `day` or `hour` (UTC).
    group_by: Option<UsageGrouping>,
}

#[derive(Serialize, ToSchema)]
pub struct UsageLine {
    /// The function, or the UTC day (`2026-11-23`) or hour (`2026-11-23T10`).
    pub key: String,
    /// Executions billed (each attempt of a retried async invocation counts).
    pub requests: u64,
    pub billed_ms: u64,
    pub gb_seconds: f64,
    pub cold_starts: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// Key-value operations functions made: reads, writes, and the bytes they moved.
    pub kv_reads: u64,
    pub kv_writes: u64,
    pub kv_bytes: u64,
    /// Bucket operations functions made: reads, writes, and the object bytes they moved.
    pub object_reads: u64,
    pub object_writes: u64,
    pub object_bytes: u64,
    /// Cost of this group before the free tier.
    pub cost: f64,
}

#[derive(Serialize, ToSchema)]
pub struct UsageTotals {
    pub requests: u64,
    pub billed_ms: u64,
    pub gb_seconds: f64,
    pub cold_starts: u64,
    pub request_bytes: u64,
    pub response_bytes: u64,
    pub kv_reads: u64,
    pub kv_writes: u64,
    pub kv_bytes: u64,
    pub object_reads: u64,
    pub object_writes: u64,
    pub object_bytes: u64,
    pub cost_before_free_tier: f64,
    /// After the plan's free tier, which applies to the total.
    pub cost: f64,
}

#[derive(Serialize, ToSchema)]
pub struct UsageReport {
    pub namespace: String,
    pub function: Option<String>,
    pub from: String,
    pub to: String,
    pub group_by: UsageGrouping,
    pub rows: Vec<UsageLine>,
    /// Sums of the rows, which are sums of the invocation records.
    pub totals: UsageTotals,
    pub plan: PricePlan,
    /// What the namespace's SQLite databases hold on disk now, whatever the period; null on a
    /// server without SQLite databases (one sharing a PostgreSQL store).
    pub sqlite_bytes: Option<u64>,
}

#[utoipa::path(get, path = "/v1/usage", tag = "usage", params(UsageParams),
    responses((status = 200, body = UsageReport), (status = 400, body = ErrorBody),
        (status = 403, description = "The key's role may not read usage", body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn report(
    State(catalog): State<Arc<dyn Catalog>>,
    State(records): State<Arc<dyn Records>>,
    State(plan): State<PricePlan>,
    State(sqlite): State<FunctionSqlite>,
    Extension(caller): Extension<Caller>,
    ApiQuery(params): ApiQuery<UsageParams>,
) -> Result<Json<UsageReport>, ApiError> {
    let namespace = match &params.namespace {
        Some(ns) => Name::parse("namespace", ns)?,
        None => Name::default_namespace(),
    };
    authorize(&caller, Action::Read, &namespace)?;
    if !catalog.namespace_exists(&namespace).await? {
        return Err(vireo_core::StoreError::NamespaceNotFound(namespace).into());
    }
    let function = params
        .function
        .as_deref()
        .map(|f| Name::parse("function", f))
        .transpose()?;
    let now = now_micros();
    let time = |value: &Option<String>, default: i64| match value {
        Some(value) => parse_since(value, now).map_err(ApiError::bad_request),
        None => Ok(default),
    };
    let from_us = time(&params.from, now - DEFAULT_WINDOW_US)?;
    let to_us = time(&params.to, now)?;
    if from_us > to_us {
        return Err(ApiError::bad_request("`from` must not be after `to`"));
    }
    let query = UsageQuery {
        namespace,
        function,
        from_us,
        to_us,
        group_by: params.group_by.unwrap_or(UsageGrouping::Function),
    };
    let sqlite_bytes = match &sqlite.0 {
        Some(databases) => Some(
            databases
                .list(&query.namespace)
                .await?
                .iter()
                .map(|database| database.bytes)
                .sum(),
        ),
        None => None,
    };
    Ok(Json(UsageReport {
        sqlite_bytes,
        ..compute(records.as_ref(), plan, query).await?
    }))
}

/// The usage `query` asks for, priced under `plan`.
pub(crate) async fn compute(
    records: &dyn Records,
    plan: PricePlan,
    query: UsageQuery,
) -> Result<UsageReport, ApiError> {
    let rows = records.usage(&query).await?;
    Ok(UsageReport {
        namespace: query.namespace.to_string(),
        function: query.function.as_ref().map(ToString::to_string),
        from: rfc3339(query.from_us),
        to: rfc3339(query.to_us),
        group_by: query.group_by,
        totals: totals(&rows, &plan),
        rows: rows.into_iter().map(|row| line(row, &plan)).collect(),
        plan,
        sqlite_bytes: None,
    })
}

fn line(row: UsageRow, plan: &PricePlan) -> UsageLine {
    let gbs = gb_seconds(row.mib_ms);
    UsageLine {
        cost: plan.gross(row.requests, gbs),
        key: row.key,
        requests: row.requests,
        billed_ms: row.billed_ms,
        gb_seconds: gbs,
        cold_starts: row.cold_starts,
        request_bytes: row.request_bytes,
        response_bytes: row.response_bytes,
        kv_reads: row.kv_reads,
        kv_writes: row.kv_writes,
        kv_bytes: row.kv_bytes,
        object_reads: row.object_reads,
        object_writes: row.object_writes,
        object_bytes: row.object_bytes,
    }
}

fn totals(rows: &[UsageRow], plan: &PricePlan) -> UsageTotals {
    let sum = |field: fn(&UsageRow) -> u64| rows.iter().map(field).sum::<u64>();
    let requests = sum(|r| r.requests);
    // From the summed integer MiB-ms, so the total is not a sum of rounded rows.
    let gbs = gb_seconds(sum(|r| r.mib_ms));
    UsageTotals {
        requests,
        billed_ms: sum(|r| r.billed_ms),
        gb_seconds: gbs,
        cold_starts: sum(|r| r.cold_starts),
        request_bytes: sum(|r| r.request_bytes),
        response_bytes: sum(|r| r.response_bytes),
        kv_reads: sum(|r| r.kv_reads),
        kv_writes: sum(|r| r.kv_writes),
        kv_bytes: sum(|r| r.kv_bytes),
        object_reads: sum(|r| r.object_reads),
        object_writes: sum(|r| r.object_writes),
        object_bytes: sum(|r| r.object_bytes),
        cost_before_free_tier: plan.gross(requests, gbs),
        cost: plan.net(requests, gbs),
    }
}
