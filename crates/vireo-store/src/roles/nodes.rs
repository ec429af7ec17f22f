//! The [`NodeRegistry`]: each node's last heartbeat, one row per node.

use vireo_core::{NodeInfo, NodeRegistry, StoreError};

use super::{Dialect, SqlStore, commit};
use crate::rows;
use crate::sql::query;

/// The first heartbeat inserts the node; later ones keep its id and start time.
const HEARTBEAT: &str = "INSERT INTO nodes
        (id, address, version, started_at_us, heartbeat_at_us, in_flight, draining)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (id) DO UPDATE SET address = excluded.address, version = excluded.version,
        heartbeat_at_us = excluded.heartbeat_at_us, in_flight = excluded.in_flight,
        draining = excluded.draining";
const FORGET_SILENT: &str = "DELETE FROM nodes WHERE heartbeat_at_us < $1";
const LIVE_NODES: &str = "SELECT id, address, version, started_at_us, heartbeat_at_us,
        in_flight, draining
    FROM nodes WHERE heartbeat_at_us >= $1 ORDER BY started_at_us, id";
const LEAVE: &str = "DELETE FROM nodes WHERE id = $1";

#[async_trait::async_trait]
impl<D: Dialect> NodeRegistry for SqlStore<D> {
    async fn heartbeat(&self, node: &NodeInfo, forget_before_us: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        query(HEARTBEAT)
            .bind(node.id.as_str())
            .bind(node.address.as_str())
            .bind(node.version.as_str())
            .bind(node.started_at_us)
            .bind(node.heartbeat_at_us)
            .bind(i64::try_from(node.in_flight).unwrap_or(i64::MAX))
            .bind(node.draining)
            .execute(&mut *tx, "recording the node's heartbeat")
            .await?;
        query(FORGET_SILENT)
            .bind(forget_before_us)
            .execute(&mut *tx, "forgetting silent nodes")
            .await?;
        commit::<D>(tx).await
    }

    async fn nodes(&self, since_us: i64) -> Result<Vec<NodeInfo>, StoreError> {
        let mut conn = self.reader().await?;
        let rows = query(LIVE_NODES)
            .bind(since_us)
            .fetch_all(&mut *conn, "listing nodes")
            .await?;
        rows.iter().map(rows::node_info).collect()
    }

    async fn leave(&self, id: &str) -> Result<(), StoreError> {
        let mut conn = self.writer().await?;
        query(LEAVE)
            .bind(id)
            .execute(&mut *conn, "removing the node")
            .await?;
        Ok(())
    }
}
