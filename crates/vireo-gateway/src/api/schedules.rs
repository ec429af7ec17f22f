//! `/v1/namespaces/{namespace}/schedules`: cron schedules whose slots become async invocations.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use vireo_core::time::{now_micros, rfc3339};
use vireo_core::{
    AsyncStatus, Catalog, CronSchedule, MissedSlots, Name, NewSchedule, Schedule, ScheduleStore,
    VersionSelector,
};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, NamespacePath, SchedulePath};

/// Largest payload a schedule may carry.
const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    /// `function`, `function@alias` or `function@version`.
    pub function: String,
    /// Five fields (`*/5 * * * *`) or six with leading seconds (`*/10 * * * * *`).
    pub schedule: String,
    /// IANA time zone the schedule is read in (default UTC).
    pub time_zone: Option<String>,
    /// Name of the schedule in the namespace (default: the function's name).
    pub name: Option<String>,
    /// Body of every fired invocation (sent as JSON when it parses as JSON, else as text).
    #[serde(default)]
    pub payload: String,
    /// Slots missed while no server ran: `skip` (default) or `catch-up-one`.
    #[serde(default)]
    pub missed: MissedSlots,
}

#[derive(Serialize, ToSchema)]
pub struct ScheduleView {
    pub namespace: String,
    pub name: String,
    /// The function it invokes, with `@alias` or `@version` when not `latest`.
    pub function: String,
    pub schedule: String,
    pub time_zone: String,
    pub payload: String,
    pub missed: MissedSlots,
    pub paused: bool,
    /// None when the expression has no future slot.
    pub next_fire_at: Option<String>,
    pub next_fire_at_us: Option<i64>,
    pub last_fired_at: Option<String>,
    pub last_invocation_id: Option<String>,
    /// The last fired invocation's status now.
    pub last_status: Option<AsyncStatus>,
    pub created_at: String,
}

impl From<Schedule> for ScheduleView {
    fn from(schedule: Schedule) -> Self {
        let function = match &schedule.selector {
            VersionSelector::Alias(alias) if alias.is_latest() => schedule.function.to_string(),
            selector => format!("{}@{selector}", schedule.function),
        };
        Self {
            namespace: schedule.namespace.to_string(),
            name: schedule.name.to_string(),
            function,
            schedule: schedule.expression,
            time_zone: schedule.time_zone,
            payload: schedule.payload,
            missed: schedule.missed,
            paused: schedule.paused,
            next_fire_at: schedule.next_fire_at_us.map(rfc3339),
            next_fire_at_us: schedule.next_fire_at_us,
            last_fired_at: schedule.last_slot_us.map(rfc3339),
            last_invocation_id: schedule.last_invocation.map(|id| id.to_string()),
            last_status: schedule.last_status,
            created_at: rfc3339(schedule.created_at_us),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleView>,
}

fn cron(expression: &str, time_zone: Option<&str>) -> Result<CronSchedule, ApiError> {
    CronSchedule::parse(expression, time_zone)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_schedule", e.to_string()))
}

#[utoipa::path(post, path = "/v1/namespaces/{namespace}/schedules", tag = "schedules",
    params(("namespace" = String, Path)), request_body = CreateSchedule,
    responses((status = 201, body = ScheduleView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(catalog): State<Arc<dyn Catalog>>,
    State(schedules): State<Arc<dyn ScheduleStore>>,
    NamespacePath(namespace): NamespacePath,
    ApiJson(body): ApiJson<CreateSchedule>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    let (function, selector) = VersionSelector::split_target(&body.function)?;
    let name = match &body.name {
        Some(name) => Name::parse("schedule", name)?,
        None => function.clone(),
    };
    let cron = cron(&body.schedule, body.time_zone.as_deref())?;
    if body.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(ApiError::payload_too_large(format!(
            "a schedule's payload is at most {MAX_PAYLOAD_BYTES} bytes"
        )));
    }
    catalog
        .resolve_version(&namespace, &function, &selector)
        .await?;
    let now = now_micros();
    let created = schedules
        .create_schedule(&NewSchedule {
            namespace,
            name,
            function,
            selector,
            expression: cron.expression().to_string(),
            time_zone: cron.time_zone().to_string(),
            payload: body.payload,
            missed: body.missed,
            next_fire_at_us: cron.next_after(now),
            created_at_us: now,
        })
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/schedules", tag = "schedules",
    params(("namespace" = String, Path)),
    responses((status = 200, body = ScheduleList), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(catalog): State<Arc<dyn Catalog>>,
    State(schedules): State<Arc<dyn ScheduleStore>>,
    NamespacePath(namespace): NamespacePath,
) -> Result<Json<ScheduleList>, ApiError> {
    if !catalog.namespace_exists(&namespace).await? {
        return Err(vireo_core::StoreError::NamespaceNotFound(namespace).into());
    }
    let listed = schedules.list_schedules(&namespace).await?;
    Ok(Json(ScheduleList {
        schedules: listed.into_iter().map(ScheduleView::from).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/namespaces/{namespace}/schedules/{name}", tag = "schedules",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(schedules): State<Arc<dyn ScheduleStore>>,
    SchedulePath { namespace, name }: SchedulePath,
) -> Result<Json<ScheduleView>, ApiError> {
    Ok(Json(
        schedules.get_schedule(&namespace, &name).await?.into(),
    ))
}

#[utoipa::path(delete, path = "/v1/namespaces/{namespace}/schedules/{name}", tag = "schedules",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 204, description = "Deleted; slots already fired still run"), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(schedules): State<Arc<dyn ScheduleStore>>,
    SchedulePath { namespace, name }: SchedulePath,
) -> Result<StatusCode, ApiError> {
    schedules.delete_schedule(&namespace, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/namespaces/{namespace}/schedules/{name}/pause", tag = "schedules",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn pause(
    State(schedules): State<Arc<dyn ScheduleStore>>,
    SchedulePath { namespace, name }: SchedulePath,
) -> Result<Json<ScheduleView>, ApiError> {
    let paused = set_paused(schedules.as_ref(), &namespace, &name, true).await?;
    Ok(Json(paused.into()))
}

/// Resumes from now: slots that passed while paused do not fire.
#[utoipa::path(post, path = "/v1/namespaces/{namespace}/schedules/{name}/resume", tag = "schedules",
    params(("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = ScheduleView), (status = 404, body = ErrorBody)))]
pub async fn resume(
    State(schedules): State<Arc<dyn ScheduleStore>>,
    SchedulePath { namespace, name }: SchedulePath,
) -> Result<Json<ScheduleView>, ApiError> {
    let resumed = set_paused(schedules.as_ref(), &namespace, &name, false).await?;
    Ok(Json(resumed.into()))
}

/// Pauses a schedule, or resumes it from now (its next slot after now).
pub(crate) async fn set_paused(
    schedules: &dyn ScheduleStore,
    namespace: &Name,
    name: &Name,
    paused: bool,
) -> Result<Schedule, ApiError> {
    let next = if paused {
        None
    } else {
        let current = schedules.get_schedule(namespace, name).await?;
        cron(&current.expression, Some(&current.time_zone))?.next_after(now_micros())
    };
    Ok(schedules
        .set_schedule_paused(namespace, name, paused, next)
        .await?)
}
