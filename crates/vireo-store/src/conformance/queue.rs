//! The async queue: cycles that accept, start, settle and claim, leases, idempotency keys, the
//! namespace quota, dead letters and retry policies.

use bytes::Bytes;
use vireo_core::{
    AsyncStatus, AttemptResult, ClaimRequest, Enqueued, InvocationId, Name, QueueCounts,
    QueueCycle, RetryPolicy, Settlement, StartedAttempt, StoreError,
};

use super::support::{
    NO_QUOTA, async_invocation, claim_by_id, deployed, invocation_id, job, name, result, start,
    status,
};
use crate::Stores;

fn id_number(id: &InvocationId) -> u64 {
    u64::from_str_radix(&id.as_str()[24..], 16).unwrap()
}

pub(super) async fn enqueue_claim_settle_and_redrive(stores: &Stores) {
    let function = deployed(stores, "worker").await;
    let batch = [job(&function, 1, None), job(&function, 2, None)];
    assert_eq!(
        stores.queue.enqueue(&batch, NO_QUOTA).await.unwrap(),
        [Enqueued::Accepted, Enqueued::Accepted]
    );
    assert_eq!(status(stores, 1).await, (AsyncStatus::Queued, 0));

    let claimed = claim_by_id(stores, "node-a", 5_000, 60_000, 10).await;
    assert_eq!(claimed.len(), 2);
    assert_eq!(claimed[0].attempt, 1);
    assert_eq!(claimed[0].event_time_us, 900);
    assert_eq!(claimed[0].request, batch[0].request);
    assert_eq!(claimed[0].policy, RetryPolicy::default());
    assert!(
        claim_by_id(stores, "node-b", 5_000, 60_000, 10)
            .await
            .is_empty()
    );
    assert_eq!(
        status(stores, 2).await,
        (AsyncStatus::Running, 0),
        "claiming counts no attempt"
    );
    start(stores, "node-a", &claimed).await;
    assert_eq!(status(stores, 2).await, (AsyncStatus::Running, 1));

    stores
        .queue
        .settle(
            "node-a",
            &[
                result(1, 1, Settlement::Succeeded, Some(200)),
                result(2, 1, Settlement::Retry { at_us: 9_000 }, Some(503)),
            ],
        )
        .await
        .unwrap();
    let done = async_invocation(stores, 1).await;
    assert_eq!(done.status, AsyncStatus::Succeeded);
    assert_eq!(done.response.unwrap().body, Bytes::from_static(b"answer"));
    assert_eq!(stores.queue.next_due_us().await.unwrap(), Some(9_000));
    assert!(
        claim_by_id(stores, "node-a", 8_999, 60_000, 10)
            .await
            .is_empty()
    );

    let again = stores
        .queue
        .claim("node-a", 9_000, 60_000, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
    start(stores, "node-a", &again).await;
    stores
        .queue
        .settle("node-a", &[result(2, 2, Settlement::Dead, None)])
        .await
        .unwrap();
    let dead = stores
        .queue_admin
        .list_dead(&Name::default_namespace(), &function, 10)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    // A result without a response keeps the last attempt's answer.
    assert_eq!(dead[0].response.as_ref().unwrap().status, 503);
    assert_eq!(
        stores
            .queue_admin
            .queue_counts(&Name::default_namespace(), &function)
            .await
            .unwrap(),
        QueueCounts {
            succeeded: 1,
            dead: 1,
            ..QueueCounts::default()
        }
    );

    let redriven = stores
        .queue_admin
        .redrive(&Name::default_namespace(), &function, None, 20_000)
        .await
        .unwrap();
    assert_eq!(redriven, 1);
    let back = async_invocation(stores, 2).await;
    assert_eq!((back.status, back.attempts), (AsyncStatus::Queued, 0));
    assert_eq!(
        back.accepted_at_us, 20_000,
        "a redrive restarts the event age"
    );
}

pub(super) async fn idempotency_keys_return_the_first_invocation(stores: &Stores) {
    let function = deployed(stores, "once").await;
    let other = deployed(stores, "other").await;
    let outcomes = stores
        .queue
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
    let later = stores
        .queue
        .enqueue(&[job(&function, 4, Some("k"))], NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(later, [Enqueued::Duplicate(invocation_id(1))]);
    assert!(
        stores
            .queue_admin
            .get_async(&invocation_id(4))
            .await
            .unwrap()
            .is_none()
    );

    // Once the key has expired, the same key starts a new invocation.
    assert_eq!(
        stores
            .queue
            .expire_idempotency_keys(i64::MAX)
            .await
            .unwrap(),
        2
    );
    let fresh = stores
        .queue
        .enqueue(&[job(&function, 5, Some("k"))], NO_QUOTA)
        .await
        .unwrap();
    assert_eq!(fresh, [Enqueued::Accepted]);
}

pub(super) async fn namespace_quota_counts_pending_invocations(stores: &Stores) {
    let function = deployed(stores, "limited").await;
    let outcomes = stores
        .queue
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
    stores.queue.claim("node", 5_000, 60_000, 1).await.unwrap();
    // Running still counts; finishing frees the slot.
    assert_eq!(
        stores
            .queue
            .enqueue(&[job(&function, 4, None)], 2)
            .await
            .unwrap(),
        [Enqueued::QueueFull { limit: 2 }]
    );
    let running = stores.queue.claim("node", 5_000, 60_000, 10).await.unwrap();
    stores
        .queue
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
        stores
            .queue
            .enqueue(&[job(&function, 5, Some("refused"))], 2)
            .await
            .unwrap(),
        [Enqueued::Accepted],
        "a key whose invocation was refused is not taken"
    );
}

pub(super) async fn one_cycle_settles_frees_quota_accepts_and_claims_what_it_accepted(
    stores: &Stores,
) {
    let function = deployed(stores, "cycled").await;
    stores
        .queue
        .enqueue(&[job(&function, 1, None)], NO_QUOTA)
        .await
        .unwrap();
    let claimed = stores.queue.claim("node", 5_000, 60_000, 10).await.unwrap();
    start(stores, "node", &claimed).await;

    // The namespace is at its quota of 1 until the settlement in the same cycle frees it.
    let results = [result(1, 1, Settlement::Succeeded, Some(200))];
    let accept = [job(&function, 2, None), job(&function, 3, None)];
    let outcome = stores
        .queue
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
    assert_eq!(status(stores, 1).await, (AsyncStatus::Succeeded, 1));
    assert_eq!(status(stores, 2).await, (AsyncStatus::Running, 0));
    assert!(
        stores
            .queue_admin
            .get_async(&invocation_id(3))
            .await
            .unwrap()
            .is_none()
    );

    // A cycle that fails (here: an id stored twice) takes nothing, its started attempts and
    // settlements included.
    let started = [StartedAttempt {
        id: invocation_id(2),
        attempt: 1,
    }];
    let results = [result(2, 1, Settlement::Succeeded, Some(200))];
    let clash = [job(&function, 2, None)];
    let failed = stores
        .queue
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
    assert_eq!(status(stores, 2).await, (AsyncStatus::Running, 0));

    let empty = stores.queue.cycle(&QueueCycle::default()).await.unwrap();
    assert!(empty.accepted.is_empty() && empty.claimed.is_empty());
}

pub(super) async fn expired_leases_are_reclaimed_and_stale_results_ignored(stores: &Stores) {
    let function = deployed(stores, "leased").await;
    stores
        .queue
        .enqueue(&[job(&function, 1, None)], NO_QUOTA)
        .await
        .unwrap();
    let claimed = stores
        .queue
        .claim("dead-node", 5_000, 10_000, 10)
        .await
        .unwrap();
    start(stores, "dead-node", &claimed).await;
    stores
        .queue
        .extend_leases("dead-node", 20_000)
        .await
        .unwrap();
    assert_eq!(
        stores.queue.reclaim_expired(19_999, 19_999).await.unwrap(),
        0
    );
    assert_eq!(
        stores.queue.reclaim_expired(20_001, 20_001).await.unwrap(),
        1
    );
    assert_eq!(status(stores, 1).await, (AsyncStatus::Queued, 1));
    assert_eq!(stores.queue.next_due_us().await.unwrap(), Some(20_001));

    let claimed = stores
        .queue
        .claim("live-node", 20_001, 90_000, 10)
        .await
        .unwrap();
    assert_eq!(
        claimed[0].attempt, 2,
        "the crashed attempt had begun: it counted"
    );
    start(stores, "live-node", &claimed).await;
    stores
        .queue
        .settle(
            "dead-node",
            &[result(1, 1, Settlement::Succeeded, Some(200))],
        )
        .await
        .unwrap();
    assert_eq!(status(stores, 1).await, (AsyncStatus::Running, 2));

    stores
        .queue
        .settle(
            "live-node",
            &[result(1, 1, Settlement::Postpone { at_us: 30_000 }, None)],
        )
        .await
        .unwrap();
    assert_eq!(
        status(stores, 1).await,
        (AsyncStatus::Queued, 1),
        "a postponed attempt does not count"
    );
}

pub(super) async fn only_attempts_that_began_count(stores: &Stores) {
    let function = deployed(stores, "buffered").await;
    let batch: Vec<_> = (1..=3).map(|n| job(&function, n, None)).collect();
    stores.queue.enqueue(&batch, NO_QUOTA).await.unwrap();
    let claimed = claim_by_id(stores, "node", 5_000, 10_000, 10).await;
    // Only the first begins; another worker's report of the second is not this lease's.
    start(stores, "node", &claimed[..1]).await;
    start(stores, "intruder", &claimed[1..2]).await;
    assert_eq!(status(stores, 1).await, (AsyncStatus::Running, 1));
    assert_eq!(status(stores, 2).await, (AsyncStatus::Running, 0));

    // The third is handed back unstarted (a shutdown): still no attempt counted.
    let back = AttemptResult {
        attempts: claimed[2].attempt - 1,
        ..result(3, 0, Settlement::Postpone { at_us: 6_000 }, None)
    };
    stores.queue.settle("node", &[back]).await.unwrap();
    assert_eq!(status(stores, 3).await, (AsyncStatus::Queued, 0));

    // The server dies; its claims are reclaimed.
    assert_eq!(
        stores
            .queue
            .reclaim_expired(i64::MAX, 20_000)
            .await
            .unwrap(),
        2
    );
    let again = claim_by_id(stores, "next", 20_000, 90_000, 10).await;
    let attempts: Vec<u32> = again.iter().map(|job| job.attempt).collect();
    assert_eq!(
        attempts,
        [2, 1, 1],
        "only the attempt that began used one up"
    );
}

pub(super) async fn missing_functions_take_nothing_and_deletion_clears_the_queue(stores: &Stores) {
    let ghost = name("ghost");
    assert_eq!(
        stores
            .queue
            .enqueue(&[job(&ghost, 1, None)], 5)
            .await
            .unwrap(),
        [Enqueued::FunctionNotFound]
    );
    let function = deployed(stores, "short-lived").await;
    stores
        .queue
        .enqueue(&[job(&function, 2, Some("k")), job(&function, 3, None)], 2)
        .await
        .unwrap();
    stores
        .catalog
        .delete_function(&Name::default_namespace(), &function)
        .await
        .unwrap();
    assert!(
        stores
            .queue_admin
            .get_async(&invocation_id(2))
            .await
            .unwrap()
            .is_none()
    );
    let again = deployed(stores, "short-lived").await;
    assert_eq!(
        stores
            .queue
            .enqueue(&[job(&again, 4, Some("k")), job(&again, 5, None)], 2)
            .await
            .unwrap(),
        [Enqueued::Accepted, Enqueued::Accepted],
        "deleting freed the namespace quota and the key"
    );
    assert!(matches!(
        stores
            .queue_admin
            .queue_counts(&Name::default_namespace(), &ghost)
            .await,
        Err(StoreError::FunctionNotFound { .. })
    ));
}

pub(super) async fn retry_policies_default_and_round_trip(stores: &Stores) {
    let function = deployed(stores, "policy").await;
    let namespace = Name::default_namespace();
    assert_eq!(
        stores
            .queue_admin
            .retry_policy(&namespace, &function)
            .await
            .unwrap(),
        RetryPolicy::default()
    );
    let policy = RetryPolicy {
        max_attempts: 7,
        min_backoff_ms: Some(10),
        retry_on_4xx: true,
        ..RetryPolicy::default()
    };
    stores
        .queue_admin
        .set_retry_policy(&namespace, &function, &policy)
        .await
        .unwrap();
    assert_eq!(
        stores
            .queue_admin
            .retry_policy(&namespace, &function)
            .await
            .unwrap(),
        policy
    );
    assert!(matches!(
        stores
            .queue_admin
            .set_retry_policy(&namespace, &name("nope"), &policy)
            .await,
        Err(StoreError::FunctionNotFound { .. })
    ));
}
