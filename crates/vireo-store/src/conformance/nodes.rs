//! The node registry: heartbeats add and update nodes, silent ones drop out of the list and are
//! forgotten, a node that leaves is gone.

use vireo_core::NodeInfo;

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
    }
}

pub(super) async fn heartbeats_list_live_nodes_and_forget_silent_ones(stores: &Stores) {
    let registry = &stores.nodes;
    registry
        .heartbeat(&node("b", 2_000, 2_000), 0)
        .await
        .unwrap();
    registry
        .heartbeat(&node("a", 1_000, 2_500), 0)
        .await
        .unwrap();
    let listed = registry.nodes(0).await.unwrap();
    assert_eq!(listed, [node("a", 1_000, 2_500), node("b", 2_000, 2_000)]);

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
            0,
        )
        .await
        .unwrap();
    assert_eq!(
        registry.nodes(5_000).await.unwrap(),
        std::slice::from_ref(&later)
    );

    // A node silent since before the cut-off is forgotten by anyone's heartbeat.
    registry.heartbeat(&later, 2_100).await.unwrap();
    assert_eq!(registry.nodes(0).await.unwrap(), [later]);

    registry.leave("a").await.unwrap();
    registry.leave("never-seen").await.unwrap();
    assert!(registry.nodes(0).await.unwrap().is_empty());
}
