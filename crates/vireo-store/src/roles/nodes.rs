//! The [`NodeRegistry`]: each node's last heartbeat and slot, one row per node.

use vireo_core::{HeartbeatBounds, NodeInfo, NodeRegistry, StoreError};

use super::{Dialect, SqlStore, commit};
use crate::rows;
use crate::sql::{Sql, query};

/// The first heartbeat inserts the node; later ones keep its id and start time.
const HEARTBEAT: &str = "INSERT INTO nodes
        (id, address, version, started_at_us, heartbeat_at_us, in_flight, draining)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (id) DO UPDATE SET address = excluded.address, version = excluded.version,
        heartbeat_at_us = excluded.heartbeat_at_us, in_flight = excluded.in_flight,
        draining = excluded.draining";
const FORGET_SILENT: &str = "DELETE FROM nodes WHERE heartbeat_at_us < $1";
const LIVE_NODES: &str = "SELECT id, address, version, started_at_us, heartbeat_at_us,
        in_flight, draining, slot
    FROM nodes WHERE heartbeat_at_us >= $1 ORDER BY started_at_us, id";
const LEAVE: &str = "DELETE FROM nodes WHERE id = $1";
const OWN_SLOT: &str = "SELECT slot FROM nodes WHERE id = $1";
/// Slots held by live nodes other than this one.
const HELD_SLOTS: &str = "SELECT slot FROM nodes
    WHERE slot IS NOT NULL AND heartbeat_at_us >= $1 AND id <> $2 ORDER BY slot";
/// Takes the slot from a silent node, which finds its own empty at its next beat.
const RELEASE_SLOT: &str = "UPDATE nodes SET slot = NULL WHERE slot = $1 AND id <> $2";
const TAKE_SLOT: &str = "UPDATE nodes SET slot = $1 WHERE id = $2";

#[async_trait::async_trait]
impl<D: Dialect> NodeRegistry for SqlStore<D> {
    async fn heartbeat(
        &self,
        node: &NodeInfo,
        bounds: &HeartbeatBounds,
    ) -> Result<u32, StoreError> {
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
            .bind(bounds.forget_before_us)
            .execute(&mut *tx, "forgetting silent nodes")
            .await?;
        let slot = match own_slot(&mut *tx, &node.id).await? {
            Some(slot) => slot,
            None => {
                D::lock_node_slots(&mut tx).await?;
                take_free_slot(&mut *tx, &node.id, bounds).await?
            }
        };
        commit::<D>(tx).await?;
        Ok(slot)
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

/// The slot of node `id`, if it is listed and holds one.
async fn own_slot(conn: &mut impl Sql, id: &str) -> Result<Option<u32>, StoreError> {
    let slot: Option<Option<i64>> = query(OWN_SLOT)
        .bind(id)
        .optional_scalar(conn, "reading the node's slot")
        .await?;
    Ok(slot.flatten().and_then(|slot| u32::try_from(slot).ok()))
}

/// Gives the node `id` its predecessor's slot, or else the lowest slot no live node holds,
/// taking it from a silent one.
async fn take_free_slot(
    conn: &mut impl Sql,
    id: &str,
    bounds: &HeartbeatBounds,
) -> Result<u32, StoreError> {
    let predecessors = match &bounds.predecessor {
        Some(predecessor) => own_slot(&mut *conn, predecessor).await?,
        None => None,
    };
    let slot = match predecessors {
        Some(slot) => slot,
        None => {
            let held = query(HELD_SLOTS)
                .bind(bounds.live_since_us)
                .bind(id)
                .fetch_all(&mut *conn, "reading the live nodes' slots")
                .await?
                .iter()
                .map(|row| rows::column::<i64>(row, 0))
                .collect::<Result<Vec<_>, _>>()?;
            lowest_missing(&held)
        }
    };
    query(RELEASE_SLOT)
        .bind(i64::from(slot))
        .bind(id)
        .execute(&mut *conn, "releasing a silent node's slot")
        .await?;
    query(TAKE_SLOT)
        .bind(i64::from(slot))
        .bind(id)
        .execute(&mut *conn, "taking a slot")
        .await?;
    Ok(slot)
}

/// The lowest number not in `held` (sorted).
fn lowest_missing(held: &[i64]) -> u32 {
    let mut slot = 0u32;
    for &taken in held {
        match i64::from(slot).cmp(&taken) {
            std::cmp::Ordering::Equal => slot += 1,
            std::cmp::Ordering::Less => break,
            std::cmp::Ordering::Greater => {}
        }
    }
    slot
}

#[cfg(test)]
mod tests {
    use super::lowest_missing;

    #[test]
    fn the_lowest_free_slot_fills_gaps_first() {
        assert_eq!(lowest_missing(&[]), 0);
        assert_eq!(lowest_missing(&[0, 1, 2]), 3);
        assert_eq!(lowest_missing(&[0, 2, 3]), 1);
        assert_eq!(lowest_missing(&[1, 2]), 0);
    }
}
