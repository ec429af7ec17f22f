//! The cron scheduler: each tick it fires the slots that have come due as async invocations.
//! A slot's idempotency key is `(schedule, slot)`, and a schedule advances by compare-and-set,
//! so a slot fires at most once even across restarts or with several schedulers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, header};
use tokio_util::sync::CancellationToken;
use vireo_core::backoff::Retry;
use vireo_core::time::{now_micros, rfc3339};
use vireo_core::{
    AsyncSubmitter, CronSchedule, Enqueued, InvocationId, MissedSlots, NewAsyncInvocation,
    Schedule, ScheduleStore, StoredRequest, Trigger,
};

/// Most schedules fired per tick; the rest wait for the next one.
const DUE_PER_TICK: u32 = 500;

#[derive(Debug, Clone, Copy)]
pub struct SchedulerSettings {
    pub tick: Duration,
    /// A slot found later than this after its time was missed (no server was running).
    pub misfire_grace: Duration,
}

/// Runs the scheduler until `cancel` fires. While the store fails, ticks back off; a
/// schedule its namespace's full queue refuses is tried again each tick, without slowing the
/// others. Both are logged at most once per interval.
pub async fn run(
    schedules: Arc<dyn ScheduleStore>,
    submitter: Arc<dyn AsyncSubmitter>,
    settings: SchedulerSettings,
    cancel: CancellationToken,
) {
    let mut ticks = tokio::time::interval(settings.tick);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut store_retry = Retry::new("firing due schedules");
    let mut refusals = Retry::new("queueing a due schedule's invocation");
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let now = now_micros();
        let mut fired = Fired::default();
        let outcome = match schedules.due_schedules(now, DUE_PER_TICK).await {
            Ok(due) => {
                for schedule in &due {
                    fired.add(
                        fire(
                            schedules.as_ref(),
                            submitter.as_ref(),
                            schedule,
                            now,
                            settings.misfire_grace,
                        )
                        .await,
                    );
                }
                fired.store_failure.map_or(Ok(()), Err)
            }
            Err(error) => Err(format!("reading due schedules: {error}")),
        };
        match fired.refusal {
            Some(refusal) => {
                // Logged only: the others due must not wait for this one's backoff.
                refusals.failed(&refusal);
            }
            None => refusals.succeeded(),
        }
        match outcome {
            Ok(()) => store_retry.succeeded(),
            Err(error) => {
                if !store_retry.pause_after(&error, cancel.cancelled()).await {
                    return;
                }
            }
        }
    }
}

/// What went wrong in one tick, if anything: the last store failure and refusal.
#[derive(Default)]
struct Fired {
    store_failure: Option<String>,
    refusal: Option<String>,
}

impl Fired {
    fn add(&mut self, outcome: Result<(), Unfired>) {
        match outcome {
            Ok(()) => {}
            Err(Unfired::Store(error)) => self.store_failure = Some(error),
            Err(Unfired::Refused(why)) => self.refusal = Some(why),
        }
    }
}

/// Why a due schedule did not fire or advance; it is tried again on the next tick.
enum Unfired {
    Store(String),
    Refused(String),
}

/// What to do about a due schedule at `now`.
#[derive(Debug, PartialEq, Eq)]
struct Plan {
    /// The slot to fire, if any.
    fire: Option<i64>,
    /// Where the schedule moves next.
    next: Option<i64>,
}

fn plan(cron: &CronSchedule, due: i64, missed: MissedSlots, now: i64, grace_us: i64) -> Plan {
    if now - due <= grace_us {
        // On time (or a little late): later slots that are due too fire on the next ticks.
        return Plan {
            fire: Some(due),
            next: cron.next_after(due),
        };
    }
    let fire = match missed {
        MissedSlots::Skip => None,
        MissedSlots::CatchUpOne => cron.latest_in(due, now),
    };
    Plan {
        fire,
        next: cron.next_after(now),
    }
}

async fn fire(
    schedules: &dyn ScheduleStore,
    submitter: &dyn AsyncSubmitter,
    schedule: &Schedule,
    now: i64,
    grace: Duration,
) -> Result<(), Unfired> {
    let Some(due) = schedule.next_fire_at_us else {
        return Ok(());
    };
    let name = format!("{}/{}", schedule.namespace, schedule.name);
    let plan = match CronSchedule::parse(&schedule.expression, Some(&schedule.time_zone)) {
        Ok(cron) => plan(
            &cron,
            due,
            schedule.missed,
            now,
            i64::try_from(grace.as_micros()).unwrap_or(i64::MAX),
        ),
        // Validated when created; a stored expression this build cannot read stops the schedule.
        Err(error) => {
            tracing::error!(schedule = %name, %error, "stored schedule is unreadable; it stops");
            Plan {
                fire: None,
                next: None,
            }
        }
    };
    let fired = match plan.fire {
        Some(slot) => {
            let invocation = invocation(schedule, slot, now);
            let id = invocation.id.clone();
            match submitter.submit(invocation).await {
                Ok(Enqueued::Accepted) => Some((slot, id)),
                // Fired before a restart that came before the schedule could advance.
                Ok(Enqueued::Duplicate(first)) => Some((slot, first)),
                // Not advancing retries the slot on the next tick, until it counts as missed.
                Ok(refused) => {
                    return Err(Unfired::Refused(format!(
                        "schedule {name} could not fire its slot {}: {refused:?}",
                        rfc3339(slot)
                    )));
                }
                Err(error) => {
                    return Err(Unfired::Store(format!(
                        "schedule {name} could not fire its slot {}: {error}",
                        rfc3339(slot)
                    )));
                }
            }
        }
        None => {
            tracing::info!(schedule = %name, missed = %rfc3339(due), "skipped slots missed while no server ran");
            None
        }
    };
    let fired_ref = fired.as_ref().map(|(slot, id)| (*slot, id));
    match schedules
        .advance_schedule(schedule, plan.next, fired_ref)
        .await
    {
        Ok(true) => {
            if let Some((slot, id)) = &fired {
                tracing::info!(schedule = %name, slot = %rfc3339(*slot), invocation_id = %id, "schedule fired");
            }
            Ok(())
        }
        Ok(false) => {
            tracing::debug!(schedule = %name, "another scheduler advanced the schedule");
            Ok(())
        }
        Err(error) => Err(Unfired::Store(format!(
            "advancing schedule {name}: {error}"
        ))),
    }
}

/// The async invocation a slot becomes: `POST /` with the schedule's payload.
fn invocation(schedule: &Schedule, slot: i64, now: i64) -> NewAsyncInvocation {
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static("localhost"));
    let content_type = if serde_json::from_str::<serde_json::Value>(&schedule.payload).is_ok() {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    NewAsyncInvocation {
        id: InvocationId::generate(),
        namespace: schedule.namespace.clone(),
        function: schedule.function.clone(),
        selector: schedule.selector.clone(),
        trigger: Trigger::Cron,
        source: format!(
            "/namespaces/{}/schedules/{}",
            schedule.namespace, schedule.name
        ),
        request: StoredRequest {
            method: "POST".to_string(),
            uri: "/".to_string(),
            headers,
            body: Bytes::from(schedule.payload.clone()),
        },
        idempotency_key: Some(format!("cron:{}:{slot}", schedule.name)),
        accepted_at_us: now,
        event_time_us: slot,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000;

    fn every_minute() -> CronSchedule {
        CronSchedule::parse("0 * * * * *", None).unwrap()
    }

    #[test]
    fn a_slot_within_the_grace_fires_and_the_next_follows_it() {
        let due = 60 * SECOND;
        let planned = plan(
            &every_minute(),
            due,
            MissedSlots::Skip,
            due + 2 * SECOND,
            10 * SECOND,
        );
        assert_eq!(
            planned,
            Plan {
                fire: Some(due),
                next: Some(120 * SECOND)
            }
        );
    }

    #[test]
    fn missed_slots_are_skipped_or_the_latest_fires_once() {
        let due = 60 * SECOND;
        let now = 10 * 60 * SECOND + 5 * SECOND;
        let skip = plan(&every_minute(), due, MissedSlots::Skip, now, 10 * SECOND);
        assert_eq!(
            skip,
            Plan {
                fire: None,
                next: Some(11 * 60 * SECOND)
            }
        );
        let catch_up = plan(
            &every_minute(),
            due,
            MissedSlots::CatchUpOne,
            now,
            10 * SECOND,
        );
        assert_eq!(
            catch_up,
            Plan {
                fire: Some(10 * 60 * SECOND),
                next: Some(11 * 60 * SECOND)
            }
        );
    }
}
