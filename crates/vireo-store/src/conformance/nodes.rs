//! The node registry: heartbeats add and update nodes, silent ones drop out of the list and are
//! forgotten, a node that leaves is gone.

use vireo_core::{HeartbeatBounds, NodeInfo};

use crate::Stores;

pub(super) fn node(id: &str, started_at_us: i64, heartbeat_at_us: i64) -> NodeInfo {
    NodeInfo {
        id: id.to_string(),
        address: format!("127.0.0.1:{}", 8000 + id.len()),
        version: "0.1.0".to_string(),
        started_at_us,
        heartbeat_at_us,
        in_flight: 3,
        draining: false,
        slot: None,
    }
}

/// `node` as listed, holding `slot`.
pub(super) fn holding(node: NodeInfo, slot: u32) -> NodeInfo {
    NodeInfo {
        slot: Some(slot),
        ..node
    }
}

/// Bounds that count every node as live and forget those silent since before `us`.
pub(super) fn forgetting_before(us: i64) -> HeartbeatBounds {
    HeartbeatBounds {
        live_since_us: 0,
        forget_before_us: us,
        predecessor: None,
    }
}

pub(super) async fn heartbeats_list_live_nodes_and_forget_silent_ones(stores: &Stores) {
    let registry = &stores.nodes;
    registry
        .heartbeat(&node("b", 2_000, 2_000), &forgetting_before(0))
        .await
        .unwrap();
    registry
        .heartbeat(&node("a", 1_000, 2_500), &forgetting_before(0))
        .await
        .unwrap();
    let listed = registry.nodes(0).await.unwrap();
    assert_eq!(
        listed,
        [
            holding(node("a", 1_000, 2_500), 1),
            holding(node("b", 2_000, 2_000), 0)
        ]
    );

    // A later heartbeat updates what changed and keeps the start time.
    let later = NodeInfo {
        in_flight: 7,
        draining: true,
        ..node("a", 1_000, 9_000)
    };
    registry
        .heartbeat(
            &NodeInfo {
                started_at_us: 5,
                ..later.clone()
            },
            &forgetting_before(0),
        )
        .await
        .unwrap();
    let later = holding(later, 1);
    assert_eq!(
        registry.nodes(5_000).await.unwrap(),
        std::slice::from_ref(&later)
    );

    // A node silent since before the cut-off is forgotten by anyone's heartbeat.
    registry
        .heartbeat(&later, &forgetting_before(2_100))
        .await
        .unwrap();
    assert_eq!(registry.nodes(0).await.unwrap(), [later]);

    registry.leave("a").await.unwrap();
    registry.leave("never-seen").await.unwrap();
    assert!(registry.nodes(0).await.unwrap().is_empty());
}

pub(super) async fn live_nodes_hold_distinct_slots_and_silent_ones_give_theirs_up(stores: &Stores) {
    let registry = &stores.nodes;
    let beat = |id: &'static str, at: i64, live_since_us: i64| async move {
        let bounds = HeartbeatBounds {
            live_since_us,
            ..forgetting_before(0)
        };
        registry.heartbeat(&node(id, 1, at), &bounds).await.unwrap()
    };
    assert_eq!(beat("a", 10, 0).await, 0);
    assert_eq!(beat("b", 10, 0).await, 1);
    assert_eq!(beat("a", 20, 0).await, 0, "a node keeps its slot");

    // A node that leaves frees its slot for the next one.
    registry.leave("b").await.unwrap();
    assert_eq!(beat("c", 20, 0).await, 1);

    // `a` fell silent (its last beat, at 20, is before 25): `d` takes its slot, and `a`,
    // beating again, gets the lowest slot free then.
    assert_eq!(beat("c", 30, 25).await, 1);
    assert_eq!(beat("d", 30, 25).await, 0);
    assert_eq!(beat("a", 31, 25).await, 2);

    // A node restarted from `c`'s data directory takes `c`'s slot, live as `c` still looks.
    let restarted = HeartbeatBounds {
        predecessor: Some("c".to_string()),
        ..forgetting_before(0)
    };
    let slot = registry.heartbeat(&node("e", 2, 32), &restarted).await;
    assert_eq!(slot.unwrap(), 1);
    assert_eq!(beat("c", 33, 0).await, 3, "c lost its slot");
    let listed: Vec<_> = registry.nodes(0).await.unwrap();
    let slots: Vec<_> = listed
        .iter()
        .map(|node| (node.id.as_str(), node.slot))
        .collect();
    assert_eq!(
        slots,
        [
            ("a", Some(2)),
            ("c", Some(3)),
            ("d", Some(0)),
            ("e", Some(1))
        ],
        "the listing shows each node's slot"
    );
}
