//! Schedules, and the compare-and-set that makes each slot fire once.

use vireo_core::{
    AliasName, AsyncStatus, MissedSlots, Name, NewSchedule, StoreError, VersionSelector,
};

use super::support::{NO_QUOTA, deployed, invocation_id, job, name};
use crate::Stores;

fn schedule(function: &Name, name_: &str, next: Option<i64>) -> NewSchedule {
    NewSchedule {
        namespace: Name::default_namespace(),
        name: name(name_),
        function: function.clone(),
        selector: VersionSelector::Alias(AliasName::latest()),
        expression: "*/5 * * * *".to_string(),
        time_zone: "Europe/Berlin".to_string(),
        payload: "{}".to_string(),
        missed: MissedSlots::CatchUpOne,
        next_fire_at_us: next,
        created_at_us: 1,
    }
}

pub(super) async fn schedules_fire_once_per_slot(stores: &Stores) {
    let function = deployed(stores, "cron-target").await;
    let namespace = Name::default_namespace();
    let created = stores
        .schedules
        .create_schedule(&schedule(&function, "nightly", Some(1_000)))
        .await
        .unwrap();
    assert_eq!(created.missed, MissedSlots::CatchUpOne);
    assert!(matches!(
        stores
            .schedules
            .create_schedule(&schedule(&function, "nightly", Some(1_000)))
            .await,
        Err(StoreError::ScheduleExists { .. })
    ));
    assert!(matches!(
        stores
            .schedules
            .create_schedule(&schedule(&name("nope"), "x", Some(1)))
            .await,
        Err(StoreError::FunctionNotFound { .. })
    ));
    stores
        .schedules
        .create_schedule(&schedule(&function, "later", Some(50_000)))
        .await
        .unwrap();

    let due = stores.schedules.due_schedules(1_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    stores
        .queue
        .enqueue(&[job(&function, 9, None)], NO_QUOTA)
        .await
        .unwrap();
    assert!(
        stores
            .schedules
            .advance_schedule(&due[0], Some(2_000), Some((1_000, &invocation_id(9))))
            .await
            .unwrap()
    );
    assert!(
        !stores
            .schedules
            .advance_schedule(&due[0], Some(2_000), Some((1_000, &invocation_id(9))))
            .await
            .unwrap(),
        "a second scheduler holding the old slot must not advance it again"
    );
    let after = stores
        .schedules
        .get_schedule(&namespace, &name("nightly"))
        .await
        .unwrap();
    assert_eq!(after.next_fire_at_us, Some(2_000));
    assert_eq!(after.last_slot_us, Some(1_000));
    assert_eq!(after.last_status, Some(AsyncStatus::Queued));

    stores
        .schedules
        .set_schedule_paused(&namespace, &name("nightly"), true, None)
        .await
        .unwrap();
    assert!(
        stores
            .schedules
            .due_schedules(10_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let resumed = stores
        .schedules
        .set_schedule_paused(&namespace, &name("nightly"), false, Some(60_000))
        .await
        .unwrap();
    assert_eq!(resumed.next_fire_at_us, Some(60_000));
    assert_eq!(
        stores
            .schedules
            .list_schedules(&namespace)
            .await
            .unwrap()
            .len(),
        2
    );
    stores
        .schedules
        .delete_schedule(&namespace, &name("later"))
        .await
        .unwrap();
    assert!(matches!(
        stores
            .schedules
            .delete_schedule(&namespace, &name("later"))
            .await,
        Err(StoreError::ScheduleNotFound { .. })
    ));
}
