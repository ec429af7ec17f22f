//! Cron schedules: each fire becomes an async invocation of the schedule's function.

use serde::{Deserialize, Serialize};

use crate::invocation::InvocationId;
use crate::names::{Name, VersionSelector};
use crate::queue::AsyncStatus;
use crate::store::StoreError;

/// What to do about slots that passed while no server was running.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MissedSlots {
    /// Fire nothing for them; continue with the next slot.
    #[default]
    Skip,
    /// Fire the most recent missed slot once, then continue.
    CatchUpOne,
}

impl MissedSlots {
    pub fn as_str(self) -> &'static str {
        match self {
            MissedSlots::Skip => "skip",
            MissedSlots::CatchUpOne => "catch-up-one",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "skip" => Some(Self::Skip),
            "catch-up-one" => Some(Self::CatchUpOne),
            _ => None,
        }
    }
}

/// A schedule to create; `next_fire_at_us` is computed by the caller from the expression.
#[derive(Debug, Clone)]
pub struct NewSchedule {
    pub namespace: Name,
    pub name: Name,
    pub function: Name,
    pub selector: VersionSelector,
    pub expression: String,
    /// IANA time zone name the expression is evaluated in.
    pub time_zone: String,
    /// Body of every fired invocation.
    pub payload: String,
    pub missed: MissedSlots,
    pub next_fire_at_us: Option<i64>,
    pub created_at_us: i64,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub namespace: Name,
    pub name: Name,
    pub function: Name,
    pub selector: VersionSelector,
    pub expression: String,
    pub time_zone: String,
    pub payload: String,
    pub missed: MissedSlots,
    pub paused: bool,
    /// None when the expression has no future slot.
    pub next_fire_at_us: Option<i64>,
    pub created_at_us: i64,
    /// The slot fired last and the invocation it became.
    pub last_slot_us: Option<i64>,
    pub last_invocation: Option<InvocationId>,
    /// That invocation's status now.
    pub last_status: Option<AsyncStatus>,
}

/// Where schedules are kept, and the compare-and-set that makes each slot fire once.
#[async_trait::async_trait]
pub trait ScheduleStore: Send + Sync + 'static {
    /// `ScheduleExists` if the name is taken in the namespace; `FunctionNotFound` without the
    /// function.
    async fn create_schedule(&self, schedule: &NewSchedule) -> Result<Schedule, StoreError>;
    async fn get_schedule(&self, namespace: &Name, name: &Name) -> Result<Schedule, StoreError>;
    async fn list_schedules(&self, namespace: &Name) -> Result<Vec<Schedule>, StoreError>;
    async fn delete_schedule(&self, namespace: &Name, name: &Name) -> Result<(), StoreError>;
    /// Pauses, or resumes with the given next slot.
    async fn set_schedule_paused(
        &self,
        namespace: &Name,
        name: &Name,
        paused: bool,
        next_fire_at_us: Option<i64>,
    ) -> Result<Schedule, StoreError>;
    /// Unpaused schedules whose next slot is at or before `now_us`, across namespaces.
    async fn due_schedules(&self, now_us: i64, limit: u32) -> Result<Vec<Schedule>, StoreError>;
    /// Moves a schedule from the slot it was due at to its next one, recording what fired.
    /// Compare-and-set on the due slot: false (and no change) if another scheduler moved it.
    async fn advance_schedule(
        &self,
        schedule: &Schedule,
        next_fire_at_us: Option<i64>,
        fired: Option<(i64, &InvocationId)>,
    ) -> Result<bool, StoreError>;
}
