//! The behaviour every async queue and schedule store must have, on an empty store.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use vireo_core::{
    AliasName, AsyncStatus, AttemptResult, ClaimRequest, ClaimedInvocation, Enqueued, InvocationId,
    MissedSlots, Name, NewAsyncInvocation, NewSchedule, Queue, QueueCounts, QueueCycle,
    RetryPolicy, Schedules, Settlement, StartedAttempt, Store, StoreError, StoredRequest,
    StoredResponse, Trigger, VersionSelector,
};

use crate::support::{default_function, invocation_id, name, new_version};

const NO_QUOTA: u64 = u64::MAX;

pub(crate) fn job(function: &Name, n: u64, key: Option<&str>) -> NewAsyncInvocation {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    NewAsyncInvocation {
        id: invocation_id(n),
        namespace: Name::default_namespace(),
        function: function.clone(),
        selector: VersionSelector::Alias(AliasName::latest()),
        trigger: Trigger::Async,
        source: format!("/namespaces/default/functions/{function}"),
        request: StoredRequest {
            method: "POST".to_string(),
            uri: format!("/path?n={n}"),
            headers,
            body: Bytes::from(format!("payload {n}")),
        },
        idempotency_key: key.map(str::to_string),
        accepted_at_us: 1_000,
        event_time_us: 900,
    }
}

/// A result that leaves the invocation with `attempts` counted.
fn result(n: u64, attempts: u32, settlement: Settlement, status: Option<u16>) -> AttemptResult {
    AttemptResult {
        id: invocation_id(n),
        attempts,
        settlement,
        response: status.map(|status| StoredResponse {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"answer"),
            body_truncated: false,
        }),
        error: None,
        at_us: 2_000,
    }
}

/// Reports the claimed attempts as begun, as a worker does when it starts each.
async fn start<S: Queue>(store: &S, owner: &str, claimed: &[ClaimedInvocation]) {
    let started: Vec<StartedAttempt> = claimed
        .iter()
        .map(|job| StartedAttempt {
            id: job.id.clone(),
            attempt: job.attempt,
        })
        .collect();
    let cycle = QueueCycle {
        owner,
        started: &started,
        ..QueueCycle::default()
    };
    store.cycle(&cycle).await.unwrap();
}

pub(crate) async fn deployed<S: Store>(store: &S, function: &str) -> Name {
    let (namespace, function) = default_function(function);
    store
        .add_version(&namespace, &function, new_version("ab"))
        .await
        .unwrap();
    function
}

async fn status<S: Queue>(store: &S, n: u64) -> (AsyncStatus, u32) {
    let found = store.get_async(&invocation_id(n)).await.unwrap().unwrap();
    (found.status, found.attempts)
}

pub async fn enqueue_claim_settle_and_redrive<S: Store + Queue>(store: &S) {
    let function = deployed(store, "worker").await;
    let batch = [job(&function, 1, None), job(&function, 2, None)];
    assert_eq!(
        store.enqueue(&batch, NO_QUOTA).await.unwrap(),
        [Enqueued::Accepted, Enqueued::Accepted]
    );
    assert_eq!(status(store, 1).await, (AsyncStatus::Queued, 0));

    let mut claimed = store.claim("node-a", 5_000, 60_000, 10).await.unwrap();
    claimed.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].attempt, 1);
    assert_eq!(claimed[0].event_time_us, 900);
    assert_eq!(claimed[0].request, batch[0].request);
    assert_eq!(claimed[0].policy, RetryPolicy::default());
    assert!(
        store
            .claim("node-b", 5_000, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        status(store, 2).await,
        (AsyncStatus::Running, 0),
        "claiming counts no attempt"
    );
    start(store, "node-a", &claimed).await;
    assert_eq!(status(store, 2).await, (AsyncStatus::Running, 1));

    store
        .settle(
            "node-a",
            &[
                result(1, 1, Settlement::Succeeded, Some(200)),
                result(2, 1, Settlement::Retry { at_us: 9_000 }, Some(503)),
            ],
        )
        .await
        .unwrap();
    let done = store.get_async(&invocation_id(1)).await.unwrap().unwrap();
    assert_eq!(done.status, AsyncStatus::Succeeded);
    assert_eq!(done.response.unwrap().body, Bytes::from_static(b"answer"));
    assert_eq!(store.next_due_us().await.unwrap(), Some(9_000));
    assert!(
        store
            .claim("node-a", 8_999, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let again = store.claim("node-a", 9_000, 60_000, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    start(store, "node-a", &again).await;
    store
        .settle("node-a", &[result(2, 2, Settlement::Dead, None)])
        .await
        .unwrap();
    let dead = store
        .list_dead(&Name::default_namespace(), &function, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    // A result without a response keeps the last attempt's answer.
    assert_eq!(dead[0].response.as_ref().unwrap().status, 503);
    assert_eq!(
        store
            .queue_counts(&Name::default_namespace(), &function)
            .await
            .unwrap(),
        QueueCounts {
            succeeded: 1,
            dead: 1,
            ..QueueCounts::default()
        }
    );

    let redriven = store
        .redrive(&Name::default_namespace(), &function, None, 20_000)
        .await
        .unwrap();
    assert_eq!(redriven, 1);
    let back = store.get_async(&invocation_id(2)).await.unwrap().unwrap();
    assert_eq!((back.status, back.attempts), (AsyncStatus::Queued, 0));
    assert_eq!(
        back.accepted_at_us, 20_000,
        "a redrive restarts the event age"
    );
}

pub async fn idempotency_keys_return_the_first_invocation<S: Store + Queue>(store: &S) {
    let function = deployed(store, "once").await;
    let other = deployed(store, "other").await;
    let outcomes = store
        .enqueue(
            &[
                job(&function, 1, Some("k")),
                job(&function, 2, Some("k")),
                job(&other, 3, Some("k")),
            ],
            NO_QUOTA,
        )
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            Enqueued::Accepted,
            Enqueued::Duplicate(invocation_id(1)),
            Enqueued::Accepted
        ]
    );
    let later = store
        .enqueue(&[job(&function, 4, Some("k"))], NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(later, [Enqueued::Duplicate(invocation_id(1))]);
    assert!(store.get_async(&invocation_id(4)).await.unwrap().is_none());

    // Once the key has expired, the same key starts a new invocation.
    assert_eq!(store.expire_idempotency_keys(i64::MAX).await.unwrap(), 2);
    let fresh = store
        .enqueue(&[job(&function, 5, Some("k"))], NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(fresh, [Enqueued::Accepted]);
}

pub async fn namespace_quota_counts_pending_invocations<S: Store + Queue>(store: &S) {
    let function = deployed(store, "limited").await;
    let outcomes = store
        .enqueue(
            &[
                job(&function, 1, None),
                job(&function, 2, None),
                job(&function, 3, Some("refused")),
            ],
            2,
        )
        .await
        .unwrap();
    assert_eq!(
        outcomes,
        [
            Enqueued::Accepted,
            Enqueued::Accepted,
            Enqueued::QueueFull { limit: 2 }
        ]
    );
    store.claim("node", 5_000, 60_000, 1).await.unwrap();
    // Running still counts; finishing frees the slot.
    assert_eq!(
        store.enqueue(&[job(&function, 4, None)], 2).await.unwrap(),
        [Enqueued::QueueFull { limit: 2 }]
    );
    let running = store.claim("node", 5_000, 60_000, 10).await.unwrap();
    store
        .settle(
            "node",
            &[result(
                id_number(&running[0].id),
                1,
                Settlement::Failed,
                Some(400),
            )],
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .enqueue(&[job(&function, 5, Some("refused"))], 2)
            .await
            .unwrap(),
        [Enqueued::Accepted],
        "a key whose invocation was refused is not taken"
    );
}

fn id_number(id: &InvocationId) -> u64 {
    u64::from_str_radix(&id.as_str()[24..], 16).unwrap()
}

pub async fn one_cycle_settles_frees_quota_accepts_and_claims_what_it_accepted<S: Store + Queue>(
    store: &S,
) {
    let function = deployed(store, "cycled").await;
    store
        .enqueue(&[job(&function, 1, None)], NO_QUOTA)
        .await
        .unwrap();
    let claimed = store.claim("node", 5_000, 60_000, 10).await.unwrap();
    start(store, "node", &claimed).await;

    // The namespace is at its quota of 1 until the settlement in the same cycle frees it.
    let results = [result(1, 1, Settlement::Succeeded, Some(200))];
    let accept = [job(&function, 2, None), job(&function, 3, None)];
    let outcome = store
        .cycle(&QueueCycle {
            owner: "node",
            started: &[],
            settle: &results,
            accept: &accept,
            max_pending: 1,
            claim: Some(ClaimRequest {
                now_us: 5_000,
                lease_until_us: 60_000,
                limit: 10,
            }),
        })
        .await
        .unwrap();
    assert_eq!(
        outcome.accepted,
        [Enqueued::Accepted, Enqueued::QueueFull { limit: 1 }]
    );
    let claimed: Vec<_> = outcome.claimed.iter().map(|job| job.id.clone()).collect();
    assert_eq!(
        claimed,
        [invocation_id(2)],
        "claimed in the cycle that accepted it"
    );
    assert_eq!(status(store, 1).await, (AsyncStatus::Succeeded, 1));
    assert_eq!(status(store, 2).await, (AsyncStatus::Running, 0));
    assert!(store.get_async(&invocation_id(3)).await.unwrap().is_none());

    // A cycle that fails (here: an id stored twice) takes nothing, its started attempts and
    // settlements included.
    let started = [StartedAttempt {
        id: invocation_id(2),
        attempt: 1,
    }];
    let results = [result(2, 1, Settlement::Succeeded, Some(200))];
    let clash = [job(&function, 2, None)];
    let failed = store
        .cycle(&QueueCycle {
            owner: "node",
            started: &started,
            settle: &results,
            accept: &clash,
            max_pending: NO_QUOTA,
            claim: None,
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(status(store, 2).await, (AsyncStatus::Running, 0));

    let empty = store.cycle(&QueueCycle::default()).await.unwrap();
    assert!(empty.accepted.is_empty() && empty.claimed.is_empty());
}

pub async fn expired_leases_are_reclaimed_and_stale_results_ignored<S: Store + Queue>(store: &S) {
    let function = deployed(store, "leased").await;
    store
        .enqueue(&[job(&function, 1, None)], NO_QUOTA)
        .await
        .unwrap();
    let claimed = store.claim("dead-node", 5_000, 10_000, 10).await.unwrap();
    start(store, "dead-node", &claimed).await;
    store.extend_leases("dead-node", 20_000).await.unwrap();
    assert_eq!(store.reclaim_expired(19_999, 19_999).await.unwrap(), 0);
    assert_eq!(store.reclaim_expired(20_001, 20_001).await.unwrap(), 1);
    assert_eq!(status(store, 1).await, (AsyncStatus::Queued, 1));
    assert_eq!(store.next_due_us().await.unwrap(), Some(20_001));

    let claimed = store.claim("live-node", 20_001, 90_000, 10).await.unwrap();
    assert_eq!(
        claimed[0].attempt, 2,
        "the crashed attempt had begun: it counted"
    );
    start(store, "live-node", &claimed).await;
    store
        .settle(
            "dead-node",
            &[result(1, 1, Settlement::Succeeded, Some(200))],
        )
        .await
        .unwrap();
    assert_eq!(status(store, 1).await, (AsyncStatus::Running, 2));

    store
        .settle(
            "live-node",
            &[result(1, 1, Settlement::Postpone { at_us: 30_000 }, None)],
        )
        .await
        .unwrap();
    assert_eq!(
        status(store, 1).await,
        (AsyncStatus::Queued, 1),
        "a postponed attempt does not count"
    );
}

pub async fn only_attempts_that_began_count<S: Store + Queue>(store: &S) {
    let function = deployed(store, "buffered").await;
    let batch: Vec<_> = (1..=3).map(|n| job(&function, n, None)).collect();
    store.enqueue(&batch, NO_QUOTA).await.unwrap();
    let mut claimed = store.claim("node", 5_000, 10_000, 10).await.unwrap();
    claimed.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    // Only the first begins; another worker's report of the second is not this lease's.
    start(store, "node", &claimed[..1]).await;
    start(store, "intruder", &claimed[1..2]).await;
    assert_eq!(status(store, 1).await, (AsyncStatus::Running, 1));
    assert_eq!(status(store, 2).await, (AsyncStatus::Running, 0));

    // The third is handed back unstarted (a shutdown): still no attempt counted.
    let back = AttemptResult {
        attempts: claimed[2].attempt - 1,
        ..result(3, 0, Settlement::Postpone { at_us: 6_000 }, None)
    };
    store.settle("node", &[back]).await.unwrap();
    assert_eq!(status(store, 3).await, (AsyncStatus::Queued, 0));

    // The server dies; its claims are reclaimed.
    assert_eq!(store.reclaim_expired(i64::MAX, 20_000).await.unwrap(), 2);
    let mut again = store.claim("next", 20_000, 90_000, 10).await.unwrap();
    again.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let attempts: Vec<u32> = again.iter().map(|job| job.attempt).collect();
    assert_eq!(
        attempts,
        [2, 1, 1],
        "only the attempt that began used one up"
    );
}

pub async fn missing_functions_take_nothing_and_deletion_clears_the_queue<S: Store + Queue>(
    store: &S,
) {
    let ghost = name("ghost");
    assert_eq!(
        store.enqueue(&[job(&ghost, 1, None)], 5).await.unwrap(),
        [Enqueued::FunctionNotFound]
    );
    let function = deployed(store, "short-lived").await;
    store
        .enqueue(&[job(&function, 2, Some("k")), job(&function, 3, None)], 2)
        .await
        .unwrap();
    store
        .delete_function(&Name::default_namespace(), &function)
        .await
        .unwrap();
    assert!(store.get_async(&invocation_id(2)).await.unwrap().is_none());
    let again = deployed(store, "short-lived").await;
    assert_eq!(
        store
            .enqueue(&[job(&again, 4, Some("k")), job(&again, 5, None)], 2)
            .await
            .unwrap(),
        [Enqueued::Accepted, Enqueued::Accepted],
        "deleting freed the namespace quota and the key"
    );
    assert!(matches!(
        store.queue_counts(&Name::default_namespace(), &ghost).await,
        Err(StoreError::FunctionNotFound { .. })
    ));
}

pub async fn retry_policies_default_and_round_trip<S: Store + Queue>(store: &S) {
    let function = deployed(store, "policy").await;
    let namespace = Name::default_namespace();
    assert_eq!(
        store.retry_policy(&namespace, &function).await.unwrap(),
        RetryPolicy::default()
    );
    let policy = RetryPolicy {
        max_attempts: 7,
        min_backoff_ms: Some(10),
        retry_on_4xx: true,
        ..RetryPolicy::default()
    };
    store
        .set_retry_policy(&namespace, &function, &policy)
        .await
        .unwrap();
    assert_eq!(
        store.retry_policy(&namespace, &function).await.unwrap(),
        policy
    );
    assert!(matches!(
        store
            .set_retry_policy(&namespace, &name("nope"), &policy)
            .await,
        Err(StoreError::FunctionNotFound { .. })
    ));
}

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

pub async fn schedules_fire_once_per_slot<S: Store + Queue + Schedules>(store: &S) {
    let function = deployed(store, "cron-target").await;
    let namespace = Name::default_namespace();
    let created = store
        .create_schedule(&schedule(&function, "nightly", Some(1_000)))
        .await
        .unwrap();
    assert_eq!(created.missed, MissedSlots::CatchUpOne);
    assert!(matches!(
        store
            .create_schedule(&schedule(&function, "nightly", Some(1_000)))
            .await,
        Err(StoreError::ScheduleExists { .. })
    ));
    assert!(matches!(
        store
            .create_schedule(&schedule(&name("nope"), "x", Some(1)))
            .await,
        Err(StoreError::FunctionNotFound { .. })
    ));
    store
        .create_schedule(&schedule(&function, "later", Some(50_000)))
        .await
        .unwrap();

    let due = store.due_schedules(1_000, 10).await.unwrap();
    assert_eq!(due.len(), 1);
    store
        .enqueue(&[job(&function, 9, None)], NO_QUOTA)
        .await
        .unwrap();
    assert!(
        store
            .advance_schedule(&due[0], Some(2_000), Some((1_000, &invocation_id(9))))
            .await
            .unwrap()
    );
    assert!(
        !store
            .advance_schedule(&due[0], Some(2_000), Some((1_000, &invocation_id(9))))
            .await
            .unwrap(),
        "a second scheduler holding the old slot must not advance it again"
    );
    let after = store
        .get_schedule(&namespace, &name("nightly"))
        .await
        .unwrap();
    assert_eq!(after.next_fire_at_us, Some(2_000));
    assert_eq!(after.last_slot_us, Some(1_000));
    assert_eq!(after.last_status, Some(AsyncStatus::Queued));

    store
        .set_schedule_paused(&namespace, &name("nightly"), true, None)
        .await
        .unwrap();
    assert!(store.due_schedules(10_000, 10).await.unwrap().is_empty());
    let resumed = store
        .set_schedule_paused(&namespace, &name("nightly"), false, Some(60_000))
        .await
        .unwrap();
    assert_eq!(resumed.next_fire_at_us, Some(60_000));
    assert_eq!(store.list_schedules(&namespace).await.unwrap().len(), 2);
    store
        .delete_schedule(&namespace, &name("later"))
        .await
        .unwrap();
    assert!(matches!(
        store.delete_schedule(&namespace, &name("later")).await,
        Err(StoreError::ScheduleNotFound { .. })
    ));
}
