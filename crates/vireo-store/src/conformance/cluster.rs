//! Two nodes on one store: each case writes through one node's handles and checks what the
//! other's see, so nothing relies on there being one writer.

use vireo_core::{
    AliasName, AliasTarget, AsyncStatus, Change, Enqueued, HostPattern, InvocationId, MissedSlots,
    Name, NamespaceQuotas, NewSchedule, SealedSecret, SecretName, Settlement, StoreError,
    VersionSelector,
};

use futures::future::join_all;
use vireo_core::encode_counter;

use super::Fixture;
use super::key_value::{INCREMENT_TASKS, INCREMENTS_PER_TASK, default_store};
use super::support::{
    AT, NO_QUOTA, default_function, deployed, invocation_id, job, name, receive, result, start,
    status,
};

pub(super) async fn what_one_node_writes_the_other_reads(fixture: &dyn Fixture) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let function = deployed(one, "shared").await;
    let namespace = Name::default_namespace();
    let prod = AliasName::parse("prod").unwrap();
    one.catalog
        .set_alias(&namespace, &function, &prod, &AliasTarget::single(1))
        .await
        .unwrap();
    let resolved = other
        .catalog
        .resolve_version(&namespace, &function, &VersionSelector::Alias(prod))
        .await
        .unwrap();
    assert_eq!(resolved.version, 1);
    other
        .catalog
        .add_version(&namespace, &function, super::support::new_version("cd"), AT)
        .await
        .unwrap();
    let latest = one
        .catalog
        .get_function(&namespace, &function)
        .await
        .unwrap();
    assert_eq!(latest.latest_version, Some(2));
}

pub(super) async fn a_closed_store_reopens_with_its_data(fixture: &dyn Fixture) {
    let (namespace, function) = default_function("kept");
    fixture
        .stores()
        .catalog
        .add_version(&namespace, &function, super::support::new_version("aa"), AT)
        .await
        .unwrap();
    fixture.stores().close().await;
    let reopened = fixture.second_node().await;
    let info = reopened
        .catalog
        .get_function(&namespace, &function)
        .await
        .unwrap();
    assert_eq!(info.latest_version, Some(1));
}

pub(super) async fn a_claim_through_one_node_is_not_claimable_through_the_other(
    fixture: &dyn Fixture,
) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let function = deployed(one, "contended").await;
    let batch: Vec<_> = (1..=20).map(|n| job(&function, n, None)).collect();
    one.queue.enqueue(&batch, NO_QUOTA).await.unwrap();
    // Both nodes claim at once, each asking for everything.
    let (mine, theirs) = tokio::join!(
        one.queue.claim("node-one", 5_000, 60_000, 20),
        other.queue.claim("node-two", 5_000, 60_000, 20),
    );
    let mut claimed: Vec<InvocationId> = mine
        .unwrap()
        .into_iter()
        .chain(theirs.unwrap())
        .map(|job| job.id)
        .collect();
    claimed.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    let every: Vec<InvocationId> = (1..=20).map(invocation_id).collect();
    assert_eq!(claimed, every, "every invocation claimed exactly once");
    assert!(
        one.queue
            .claim("node-one", 5_000, 60_000, 20)
            .await
            .unwrap()
            .is_empty()
    );
}

pub(super) async fn an_expired_lease_reclaimed_by_one_node_ignores_the_other_nodes_late_result(
    fixture: &dyn Fixture,
) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let function = deployed(one, "leased").await;
    one.queue
        .enqueue(&[job(&function, 1, None)], NO_QUOTA)
        .await
        .unwrap();
    let claimed = one.queue.claim("node-one", 5_000, 10_000, 1).await.unwrap();
    start(one, "node-one", &claimed).await;
    // The first node stalls past its lease; the second takes the invocation over.
    assert_eq!(
        other.queue.reclaim_expired(10_001, 10_001).await.unwrap(),
        1
    );
    let retaken = other
        .queue
        .claim("node-two", 10_001, 90_000, 1)
        .await
        .unwrap();
    assert_eq!(retaken[0].attempt, 2);
    start(&other, "node-two", &retaken).await;
    one.queue
        .settle("node-one", &[result(1, 1, Settlement::Dead, None)])
        .await
        .unwrap();
    assert_eq!(
        status(&other, 1).await,
        (AsyncStatus::Running, 2),
        "the stale result of the first node is ignored"
    );
    other
        .queue
        .settle(
            "node-two",
            &[result(1, 2, Settlement::Succeeded, Some(200))],
        )
        .await
        .unwrap();
    assert_eq!(status(one, 1).await, (AsyncStatus::Succeeded, 2));
}

pub(super) async fn a_live_lease_keeps_the_invocation_from_the_other_node_an_expired_one_does_not(
    fixture: &dyn Fixture,
) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let function = deployed(one, "handed-over").await;
    one.queue
        .enqueue(&[job(&function, 1, None)], NO_QUOTA)
        .await
        .unwrap();
    let claimed = one.queue.claim("node-one", 5_000, 10_000, 1).await.unwrap();
    assert_eq!(claimed.len(), 1);
    // While the lease lives, the other node can neither reclaim nor claim it.
    assert_eq!(other.queue.reclaim_expired(9_999, 9_999).await.unwrap(), 0);
    assert!(
        other
            .queue
            .claim("node-two", 9_999, 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // The first node keeps it alive past its first term; the second still cannot take it.
    one.queue.extend_leases("node-one", 20_000).await.unwrap();
    assert_eq!(
        other.queue.reclaim_expired(15_000, 15_000).await.unwrap(),
        0
    );
    // Once the extended lease expires, the other node takes it over.
    assert_eq!(
        other.queue.reclaim_expired(20_001, 20_001).await.unwrap(),
        1
    );
    let taken = other
        .queue
        .claim("node-two", 20_001, 90_000, 10)
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].id, invocation_id(1));
    assert_eq!(status(one, 1).await, (AsyncStatus::Running, 0));
}

/// Both nodes accept into one namespace at once; together they stay within its quota.
pub(super) async fn a_queue_quota_holds_across_nodes_accepting_at_once(fixture: &dyn Fixture) {
    const QUOTA: u64 = 10;
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let function = deployed(one, "popular").await;
    one.tenants
        .set_quotas(
            &Name::default_namespace(),
            &NamespaceQuotas {
                max_queued: Some(QUOTA),
                ..NamespaceQuotas::default()
            },
        )
        .await
        .unwrap();
    let (mine, theirs): (Vec<_>, Vec<_>) = (
        (1..=8).map(|n| job(&function, n, None)).collect(),
        (9..=16).map(|n| job(&function, n, None)).collect(),
    );
    let (mine, theirs) = tokio::join!(
        one.queue.enqueue(&mine, NO_QUOTA),
        other.queue.enqueue(&theirs, NO_QUOTA),
    );
    let outcomes: Vec<Enqueued> = mine.unwrap().into_iter().chain(theirs.unwrap()).collect();
    let accepted = outcomes
        .iter()
        .filter(|outcome| **outcome == Enqueued::Accepted)
        .count();
    let refused = outcomes
        .iter()
        .filter(|outcome| **outcome == Enqueued::QueueFull { limit: QUOTA })
        .count();
    assert_eq!((accepted, refused), (10, 6), "{outcomes:?}");
    let pending = one.queue.pending_by_namespace().await.unwrap();
    assert!(
        pending.contains(&(Name::default_namespace(), QUOTA)),
        "{pending:?}"
    );
}

pub(super) async fn an_idempotency_key_used_through_one_node_is_a_duplicate_through_the_other(
    fixture: &dyn Fixture,
) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let function = deployed(one, "once").await;
    assert_eq!(
        one.queue
            .enqueue(&[job(&function, 1, Some("k"))], NO_QUOTA)
            .await
            .unwrap(),
        [Enqueued::Accepted]
    );
    assert_eq!(
        other
            .queue
            .enqueue(&[job(&function, 2, Some("k"))], NO_QUOTA)
            .await
            .unwrap(),
        [Enqueued::Duplicate(invocation_id(1))]
    );
    assert!(
        one.queue_admin
            .get_async(&invocation_id(2))
            .await
            .unwrap()
            .is_none()
    );
}

/// A schedule of `function` whose first slot is due at 1,000 µs.
fn due_at_1000(function: Name, schedule: &str, expression: &str) -> NewSchedule {
    NewSchedule {
        namespace: Name::default_namespace(),
        name: name(schedule),
        function,
        selector: VersionSelector::Alias(AliasName::latest()),
        expression: expression.to_string(),
        time_zone: "UTC".to_string(),
        payload: "{}".to_string(),
        missed: MissedSlots::Skip,
        next_fire_at_us: Some(1_000),
        created_at_us: AT,
    }
}

pub(super) async fn a_slot_advanced_by_one_node_is_not_advanced_by_the_other(
    fixture: &dyn Fixture,
) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let function = deployed(one, "cron-target").await;
    one.schedules
        .create_schedule(&due_at_1000(function, "nightly", "*/5 * * * *"))
        .await
        .unwrap();
    // Both schedulers see the slot due.
    let (seen_by_one, seen_by_other) = (
        one.schedules.due_schedules(1_000, 10).await.unwrap(),
        other.schedules.due_schedules(1_000, 10).await.unwrap(),
    );
    assert_eq!((seen_by_one.len(), seen_by_other.len()), (1, 1));
    assert!(
        one.schedules
            .advance_schedule(&seen_by_one[0], Some(2_000), None)
            .await
            .unwrap()
    );
    assert!(
        !other
            .schedules
            .advance_schedule(&seen_by_other[0], Some(2_000), None)
            .await
            .unwrap(),
        "the slot was taken by the first node"
    );
    assert!(
        other
            .schedules
            .due_schedules(1_999, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Two schedulers race for every slot of one schedule, many times: each slot is taken once.
pub(super) async fn racing_schedulers_advance_each_slot_exactly_once(fixture: &dyn Fixture) {
    const SLOTS: i64 = 40;
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let function = deployed(one, "raced").await;
    one.schedules
        .create_schedule(&due_at_1000(function, "often", "* * * * * *"))
        .await
        .unwrap();
    let mut taken_by = [0_u32; 2];
    for slot in 1..=SLOTS {
        let now = slot * 1_000;
        let (seen_by_one, seen_by_other) = tokio::join!(
            one.schedules.due_schedules(now, 10),
            other.schedules.due_schedules(now, 10),
        );
        let (seen_by_one, seen_by_other) = (seen_by_one.unwrap(), seen_by_other.unwrap());
        assert_eq!(
            (seen_by_one.len(), seen_by_other.len()),
            (1, 1),
            "slot {slot}"
        );
        let (first, second) = tokio::join!(
            one.schedules
                .advance_schedule(&seen_by_one[0], Some(now + 1_000), None),
            other
                .schedules
                .advance_schedule(&seen_by_other[0], Some(now + 1_000), None),
        );
        let won = [first.unwrap(), second.unwrap()];
        assert_eq!(
            won.iter().filter(|won| **won).count(),
            1,
            "slot {slot} was advanced by {won:?}"
        );
        taken_by[usize::from(won[1])] += 1;
    }
    assert_eq!(taken_by.iter().sum::<u32>(), 40);
}

pub(super) async fn writes_through_one_node_reach_the_other_nodes_subscribers(
    fixture: &dyn Fixture,
) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let function = deployed(one, "moved").await;
    let namespace = Name::default_namespace();
    let mut elsewhere = other.changes.subscribe();
    one.catalog
        .set_alias(
            &namespace,
            &function,
            &AliasName::parse("prod").unwrap(),
            &AliasTarget::single(1),
        )
        .await
        .unwrap();
    receive(
        &mut elsewhere,
        &Change::Routes {
            namespace: namespace.clone(),
            function,
        },
    )
    .await;
    let token = SecretName::parse("TOKEN").unwrap();
    let sealed = SealedSecret {
        nonce: vec![1; 24],
        ciphertext: vec![2; 8],
    };
    one.secrets
        .put_secret(&namespace, &token, &sealed, AT)
        .await
        .unwrap();
    receive(
        &mut elsewhere,
        &Change::Secret {
            namespace,
            name: token,
        },
    )
    .await;
    one.tenants
        .create_namespace(&name("team"), &Default::default(), AT)
        .await
        .unwrap();
    receive(&mut elsewhere, &Change::Tenants).await;
}

pub(super) async fn changes_published_on_one_node_reach_the_other(fixture: &dyn Fixture) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let mut elsewhere = other.changes.subscribe();
    let mut here = one.changes.subscribe();
    one.changes.publish(Change::Tenants).await.unwrap();
    assert_eq!(elsewhere.next().await, Some(Ok(Change::Tenants)));
    assert_eq!(
        here.next().await,
        Some(Ok(Change::Tenants)),
        "and its own node"
    );
}

/// The key and quota directory of each node follows the other's writes through the feed: a
/// key revoked on one node is refused by the other once it has heard.
pub(super) async fn a_key_revoked_on_one_node_is_refused_by_the_other_once_it_hears(
    fixture: &dyn Fixture,
) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let load = |stores: &crate::Stores| vireo_core::Directory::load(stores.tenants.clone(), None);
    let (here, there) = (load(one).await.unwrap(), load(&other).await.unwrap());
    let mut heard = other.changes.subscribe();
    let generated = vireo_core::auth::generate_key();
    here.create_key(vireo_core::ApiKey {
        id: generated.id.clone(),
        role: vireo_core::Role::Admin,
        namespaces: Vec::new(),
        description: None,
        created_at_us: AT,
        expires_at_us: None,
        revoked_at_us: None,
        secret_sha256: generated.secret_sha256,
    })
    .await
    .unwrap();
    assert_eq!(heard.next().await, Some(Ok(Change::Tenants)));
    there.reload().await.unwrap();
    assert!(there.authenticate(&generated.key, AT).is_ok());
    here.revoke_key(&generated.id, AT + 1).await.unwrap();
    assert_eq!(heard.next().await, Some(Ok(Change::Tenants)));
    assert!(
        there.authenticate(&generated.key, AT + 2).is_ok(),
        "a copy that has not reloaded still holds the key"
    );
    there.reload().await.unwrap();
    assert!(there.authenticate(&generated.key, AT + 2).is_err());
}

pub(super) async fn a_component_stored_through_one_node_is_read_through_the_other(
    fixture: &dyn Fixture,
) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let sha = one
        .components
        .put_component(b"deployed on one")
        .await
        .unwrap();
    assert_eq!(
        other.components.component(&sha).await.unwrap(),
        b"deployed on one"
    );
}

pub(super) async fn each_node_sees_the_others_heartbeat(fixture: &dyn Fixture) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let (first, second) = (
        super::nodes::node("first", 1, 10),
        super::nodes::node("second", 2, 20),
    );
    let bounds = super::nodes::forgetting_before(0);
    assert_eq!(one.nodes.heartbeat(&first, &bounds).await.unwrap(), 0);
    assert_eq!(other.nodes.heartbeat(&second, &bounds).await.unwrap(), 1);
    for node in [one, &other] {
        assert_eq!(
            node.nodes.nodes(0).await.unwrap(),
            [
                super::nodes::holding(first.clone(), 0),
                super::nodes::holding(second.clone(), 1)
            ]
        );
    }
}

pub(super) async fn nodes_starting_at_once_get_distinct_slots(fixture: &dyn Fixture) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let bounds = super::nodes::forgetting_before(0);
    let beats = (0..8).map(|n| {
        let (stores, id) = (if n % 2 == 0 { one } else { &other }, format!("node-{n}"));
        let bounds = &bounds;
        async move {
            let node = super::nodes::node(&id, n, n);
            stores.nodes.heartbeat(&node, bounds).await.unwrap()
        }
    });
    let mut slots = join_all(beats).await;
    slots.sort_unstable();
    assert_eq!(slots, (0..8).collect::<Vec<u32>>());
}

pub(super) async fn a_master_key_recorded_through_one_node_binds_the_other(fixture: &dyn Fixture) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    one.master_key.record_master_key(b"node one").await.unwrap();
    let recorded = other.master_key.record_master_key(b"node two").await;
    assert_eq!(recorded.unwrap(), b"node one");
}

/// Half the tasks increment through each node, all on one key.
pub(super) async fn increments_through_two_nodes_never_lose_one(fixture: &dyn Fixture) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let store = default_store();
    let tasks = (0..INCREMENT_TASKS).map(|n| {
        let kv = if n % 2 == 0 {
            &one.key_value
        } else {
            &other.key_value
        };
        let store = &store;
        async move {
            for _ in 0..INCREMENTS_PER_TASK {
                kv.increment(store, "hits", 1).await.unwrap();
            }
        }
    });
    join_all(tasks).await;
    let total = (INCREMENT_TASKS * INCREMENTS_PER_TASK) as i64;
    assert_eq!(
        one.key_value.get(&store, "hits").await.unwrap().unwrap(),
        encode_counter(total)
    );
    assert_eq!(
        other.key_value.increment(&store, "hits", 0).await.unwrap(),
        total
    );
}

pub(super) async fn of_two_swaps_through_two_nodes_exactly_one_wins(fixture: &dyn Fixture) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let store = default_store();
    one.key_value.set(&store, "doc", b"v1").await.unwrap();
    let read = other.key_value.get_versioned(&store, "doc").await.unwrap();
    let (mine, theirs) = tokio::join!(
        one.key_value.swap(&store, "doc", read.version, b"one"),
        other.key_value.swap(&store, "doc", read.version, b"other"),
    );
    let (mine, theirs) = (mine.unwrap(), theirs.unwrap());
    assert!(mine ^ theirs, "exactly one wins: {mine} {theirs}");
    let winner: &[u8] = if mine { b"one" } else { b"other" };
    for node in [one, &other] {
        assert_eq!(
            node.key_value.get(&store, "doc").await.unwrap().unwrap(),
            winner
        );
    }
}

/// Rounds of two overlapping claims raced through two nodes: without serialising, both read
/// no claim and both insert.
const CLAIM_RACES: usize = 20;

pub(super) async fn of_two_overlapping_host_claims_through_two_nodes_exactly_one_wins(
    fixture: &dyn Fixture,
) {
    let (one, other) = (fixture.stores(), fixture.second_node().await);
    let (default, team) = (Name::default_namespace(), name("team"));
    one.tenants
        .create_namespace(&team, &Default::default(), AT)
        .await
        .unwrap();
    for round in 0..CLAIM_RACES {
        let every = HostPattern::parse(&format!("*.r{round}.example.com")).unwrap();
        let api = HostPattern::parse(&format!("api.r{round}.example.com")).unwrap();
        let (mine, theirs) = tokio::join!(
            one.http_routes.claim_host(&every, &default, AT),
            other.http_routes.claim_host(&api, &team, AT),
        );
        match (mine, theirs) {
            (Ok(()), Err(StoreError::HostTaken { .. }))
            | (Err(StoreError::HostTaken { .. }), Ok(())) => {}
            outcome => panic!("round {round}: exactly one claim wins, got {outcome:?}"),
        }
    }
    let claims = other.http_routes.list_host_claims().await.unwrap();
    assert_eq!(claims.len(), CLAIM_RACES, "{claims:?}");
}
