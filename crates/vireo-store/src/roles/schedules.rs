//! The [`ScheduleStore`]. Every node's scheduler reads the due schedules; the one whose
//! compare-and-set on the slot succeeds fires it (where writers run side by side, a second
//! node's update waits for the first's commit, then finds the slot moved and changes nothing).

use vireo_core::{InvocationId, Name, NewSchedule, Schedule, ScheduleStore, StoreError};

use super::{Dialect, SqlStore, check_function, commit};
use crate::rows;
use crate::sql::query;

/// Where the dialects differ for schedules.
pub(crate) trait SchedulesDialect: Dialect {
    /// The condition that a schedule `s` is not paused, as the database's index of due
    /// schedules is written.
    const UNPAUSED: &'static str;
}

/// The schedule's columns plus its last invocation's status, for [`rows::schedule`].
macro_rules! schedule_select {
    () => {
        "SELECT s.namespace, s.name, s.function, s.selector, s.expression, s.time_zone, s.payload, s.missed, s.paused, s.next_fire_at_us, s.created_at_us, s.last_slot_us, s.last_invocation_id, a.status AS last_status
         FROM schedules s LEFT JOIN async_invocations a ON a.id = s.last_invocation_id"
    };
}

const CREATE_SCHEDULE: &str = "INSERT INTO schedules (namespace, name, function, selector, expression, time_zone, payload, missed, next_fire_at_us, created_at_us)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING";
const GET_SCHEDULE: &str = concat!(
    schedule_select!(),
    " WHERE s.namespace = $1 AND s.name = $2"
);
const LIST_SCHEDULES: &str = concat!(
    schedule_select!(),
    " WHERE s.namespace = $1 ORDER BY s.name LIMIT $2"
);
const DELETE_SCHEDULE: &str = "DELETE FROM schedules WHERE namespace = $1 AND name = $2";
/// Followed by [`SchedulesDialect::UNPAUSED`] and [`DUE_SCHEDULES_END`].
const DUE_SCHEDULES: &str = concat!(schedule_select!(), " WHERE ");
const DUE_SCHEDULES_END: &str = " AND s.next_fire_at_us <= $1 ORDER BY s.next_fire_at_us LIMIT $2";
/// Compare-and-set on the slot the schedule was due at.
const ADVANCE_SCHEDULE: &str = "UPDATE schedules SET next_fire_at_us = $4,
        last_slot_us = COALESCE($5, last_slot_us),
        last_invocation_id = COALESCE($6, last_invocation_id)
    WHERE namespace = $1 AND name = $2 AND next_fire_at_us IS NOT DISTINCT FROM $3 AND NOT paused";
/// Pausing keeps the next slot for display; resuming replaces it.
const SET_SCHEDULE_PAUSED: &str = "UPDATE schedules SET paused = $3, next_fire_at_us = CASE WHEN $3 THEN next_fire_at_us ELSE $4 END
    WHERE namespace = $1 AND name = $2";

const MAX_SCHEDULES_PER_READ: u32 = 10_000;

#[async_trait::async_trait]
impl<D: SchedulesDialect> ScheduleStore for SqlStore<D> {
    async fn create_schedule(&self, schedule: &NewSchedule) -> Result<Schedule, StoreError> {
        let mut tx = self.write().await?;
        check_function(&mut *tx, &schedule.namespace, &schedule.function).await?;
        let inserted = query(CREATE_SCHEDULE)
            .bind(schedule.namespace.as_str())
            .bind(schedule.name.as_str())
            .bind(schedule.function.as_str())
            .bind(schedule.selector.to_string())
            .bind(schedule.expression.as_str())
            .bind(schedule.time_zone.as_str())
            .bind(&schedule.payload)
            .bind(schedule.missed.as_str())
            .bind(schedule.next_fire_at_us)
            .bind(schedule.created_at_us)
            .execute(&mut *tx, "creating schedule")
            .await?;
        if inserted == 0 {
            return Err(StoreError::ScheduleExists {
                namespace: schedule.namespace.clone(),
                name: schedule.name.clone(),
            });
        }
        commit::<D>(tx).await?;
        self.get_schedule(&schedule.namespace, &schedule.name).await
    }

    async fn get_schedule(&self, namespace: &Name, name: &Name) -> Result<Schedule, StoreError> {
        let row = query(GET_SCHEDULE)
            .bind(namespace.as_str())
            .bind(name.as_str())
            .fetch_optional(&mut *self.reader().await?, "reading schedule")
            .await?;
        match row {
            Some(row) => rows::schedule(&row),
            None => Err(not_found(namespace, name)),
        }
    }

    async fn list_schedules(&self, namespace: &Name) -> Result<Vec<Schedule>, StoreError> {
        let rows = query(LIST_SCHEDULES)
            .bind(namespace.as_str())
            .bind(MAX_SCHEDULES_PER_READ)
            .fetch_all(&mut *self.reader().await?, "listing schedules")
            .await?;
        rows.iter().map(rows::schedule).collect()
    }

    async fn delete_schedule(&self, namespace: &Name, name: &Name) -> Result<(), StoreError> {
        let deleted = query(DELETE_SCHEDULE)
            .bind(namespace.as_str())
            .bind(name.as_str())
            .execute(&mut *self.writer().await?, "deleting schedule")
            .await?;
        if deleted == 0 {
            return Err(not_found(namespace, name));
        }
        Ok(())
    }

    async fn set_schedule_paused(
        &self,
        namespace: &Name,
        name: &Name,
        paused: bool,
        next_fire_at_us: Option<i64>,
    ) -> Result<Schedule, StoreError> {
        let changed = query(SET_SCHEDULE_PAUSED)
            .bind(namespace.as_str())
            .bind(name.as_str())
            .bind(paused)
            .bind(next_fire_at_us)
            .execute(&mut *self.writer().await?, "pausing schedule")
            .await?;
        if changed == 0 {
            return Err(not_found(namespace, name));
        }
        self.get_schedule(namespace, name).await
    }

    async fn due_schedules(&self, now_us: i64, limit: u32) -> Result<Vec<Schedule>, StoreError> {
        let mut due = query(DUE_SCHEDULES);
        due.push(D::UNPAUSED).push(DUE_SCHEDULES_END);
        let rows = due
            .bind(now_us)
            .bind(limit.min(MAX_SCHEDULES_PER_READ))
            .fetch_all(&mut *self.reader().await?, "reading due schedules")
            .await?;
        rows.iter().map(rows::schedule).collect()
    }

    async fn advance_schedule(
        &self,
        schedule: &Schedule,
        next_fire_at_us: Option<i64>,
        fired: Option<(i64, &InvocationId)>,
    ) -> Result<bool, StoreError> {
        let advanced = query(ADVANCE_SCHEDULE)
            .bind(schedule.namespace.as_str())
            .bind(schedule.name.as_str())
            .bind(schedule.next_fire_at_us)
            .bind(next_fire_at_us)
            .bind(fired.map(|(slot, _)| slot))
            .bind(fired.map(|(_, id)| id.as_str()))
            .execute(&mut *self.writer().await?, "advancing schedule")
            .await?;
        Ok(advanced == 1)
    }
}

fn not_found(namespace: &Name, name: &Name) -> StoreError {
    StoreError::ScheduleNotFound {
        namespace: namespace.clone(),
        name: name.clone(),
    }
}
