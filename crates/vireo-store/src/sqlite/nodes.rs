//! The SQLite [`NodeRegistry`]: one node at a time, listed like a cluster's.

use vireo_core::{NodeInfo, NodeRegistry, StoreError};

use super::{SqliteStore, backend, commit};
use crate::rows;
use crate::sql::{FORGET_SILENT, HEARTBEAT, LEAVE, LIVE_NODES};

#[async_trait::async_trait]
impl NodeRegistry for SqliteStore {
    async fn heartbeat(&self, node: &NodeInfo, forget_before_us: i64) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(HEARTBEAT)
            .bind(&node.id)
            .bind(&node.address)
            .bind(&node.version)
            .bind(node.started_at_us)
            .bind(node.heartbeat_at_us)
            .bind(i64::try_from(node.in_flight).unwrap_or(i64::MAX))
            .bind(node.draining)
            .execute(&mut *tx)
            .await
            .map_err(backend("recording the node's heartbeat"))?;
        sqlx::query(FORGET_SILENT)
            .bind(forget_before_us)
            .execute(&mut *tx)
            .await
            .map_err(backend("forgetting silent nodes"))?;
        commit(tx).await
    }

    async fn nodes(&self, since_us: i64) -> Result<Vec<NodeInfo>, StoreError> {
        let mut tx = self.read().await?;
        let rows = sqlx::query(LIVE_NODES)
            .bind(since_us)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend("listing nodes"))?;
        rows.iter().map(rows::node_info).collect()
    }

    async fn leave(&self, id: &str) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        sqlx::query(LEAVE)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(backend("removing the node"))?;
        commit(tx).await
    }
}
