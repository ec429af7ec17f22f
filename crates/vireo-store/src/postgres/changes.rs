//! The change feed of a PostgreSQL database, shared by every node on it. A write records its
//! change in the `changes` table in its own transaction and notifies `vireo_changes` (delivered
//! at commit); each node follows the table by id and hands what it reads to its subscribers.
//!
//! Notifications are only a wake-up: they are lost while a node's listening connection is
//! down, so the node also reads the table at least every [`POLL_INTERVAL`], and after every
//! reconnect. Writers hold a lock from their insert to their commit, so ids become visible in
//! order and a reader that saw id n will never later find a smaller one. Changes older than
//! [`RETENTION`] are pruned (the newest is always kept); a node that finds changes after the
//! last one it saw already pruned tells its subscribers they missed some.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgConnection;
use sqlx::postgres::{PgListener, PgPool};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use vireo_core::{Change, ChangeFeed, Missed, StoreError, Subscription};

use super::backend;
use crate::changes::LocalFeed;
use crate::codec;
use crate::rows::column;
use crate::sql::commit;

/// The longest a change takes to reach another node when its notification is lost.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long changes are kept: far longer than any node lags while it can reach the database.
const RETENTION: Duration = Duration::from_secs(15 * 60);
/// Pruning runs this often on each node; the deletes of several nodes do not conflict.
const PRUNE_INTERVAL: Duration = Duration::from_secs(60);
/// Changes read per query while catching up.
const CHANGES_PER_READ: i64 = 1000;
const CHANNEL: &str = "vireo_changes";
/// The advisory lock a writer of changes holds from its insert to its commit. Taken as the
/// transaction's last step, so it is never held while waiting for another lock.
const CHANGE_WRITER_LOCK: i64 = 0x7669_7265_6f43_6867; // "vireoChg"

const LOCK_CHANGE_WRITERS: &str = "SELECT pg_advisory_xact_lock($1)";
/// Stamped with the database's clock, the one every node shares.
const RECORD_CHANGE: &str = "WITH recorded AS (
        INSERT INTO changes (kind, namespace, name, at_us)
        VALUES ($1, $2, $3, (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT)
        RETURNING id)
    SELECT pg_notify($4, id::TEXT) FROM recorded";
const LAST_CHANGE: &str = "SELECT COALESCE(MAX(id), 0) FROM changes";
const CHANGES_AFTER: &str =
    "SELECT id, kind, namespace, name, (SELECT MIN(id) FROM changes) AS oldest
    FROM changes WHERE id > $1 ORDER BY id LIMIT $2";
const PRUNE_CHANGES: &str = "DELETE FROM changes
    WHERE at_us < (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT - $1
        AND id < (SELECT MAX(id) FROM changes)";

/// Records `change` in the transaction that makes it; it reaches other nodes at commit.
pub(super) async fn record(conn: &mut PgConnection, change: &Change) -> Result<(), StoreError> {
    let (kind, namespace, name) = match change {
        Change::Routes {
            namespace,
            function,
        } => ("routes", Some(namespace.as_str()), Some(function.as_str())),
        Change::Tenants => ("tenants", None, None),
        Change::HttpRoutes => ("http_routes", None, None),
        Change::Secret { namespace, name } => {
            ("secret", Some(namespace.as_str()), Some(name.as_str()))
        }
    };
    sqlx::query(LOCK_CHANGE_WRITERS)
        .bind(CHANGE_WRITER_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(backend("waiting for other writers of changes"))?;
    sqlx::query(RECORD_CHANGE)
        .bind(kind)
        .bind(namespace)
        .bind(name)
        .bind(CHANNEL)
        .execute(&mut *conn)
        .await
        .map_err(backend("recording a change"))?;
    Ok(())
}

/// Reverses [`record`]'s columns.
fn change_of(
    kind: &str,
    namespace: Option<&str>,
    name: Option<&str>,
) -> Result<Change, StoreError> {
    let scope = || {
        namespace.zip(name).ok_or_else(|| {
            StoreError::permanent(
                "reading a change",
                format!("a {kind} change without a scope"),
            )
        })
    };
    match kind {
        "routes" => {
            let (namespace, function) = scope()?;
            Ok(Change::Routes {
                namespace: codec::name_value("namespace", namespace)?,
                function: codec::name_value("name", function)?,
            })
        }
        "tenants" => Ok(Change::Tenants),
        "http_routes" => Ok(Change::HttpRoutes),
        "secret" => {
            let (namespace, name) = scope()?;
            Ok(Change::Secret {
                namespace: codec::name_value("namespace", namespace)?,
                name: codec::parsed("name", name, |name| {
                    vireo_core::SecretName::parse(name).ok()
                })?,
            })
        }
        other => Err(StoreError::permanent(
            "reading a change",
            format!("unknown kind {other:?}"),
        )),
    }
}

/// One node's view of the change log: its subscribers, and the tasks that follow the table.
pub(super) struct PgFeed {
    pool: PgPool,
    local: Arc<LocalFeed>,
    tasks: [JoinHandle<()>; 2],
}

impl PgFeed {
    /// Follows the change log from its current end.
    pub(super) async fn follow(pool: PgPool) -> Result<PgFeed, StoreError> {
        let last: i64 = sqlx::query_scalar(LAST_CHANGE)
            .fetch_one(&pool)
            .await
            .map_err(backend("reading the change log"))?;
        let local = Arc::new(LocalFeed::new());
        let wake = Arc::new(Notify::new());
        let tasks = [
            tokio::spawn(listen(pool.clone(), wake.clone())),
            tokio::spawn(poll(pool.clone(), local.clone(), wake, last)),
        ];
        Ok(PgFeed { pool, local, tasks })
    }
}

impl Drop for PgFeed {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

#[async_trait::async_trait]
impl ChangeFeed for PgFeed {
    async fn publish(&self, change: Change) -> Result<(), StoreError> {
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(backend("starting a transaction"))?;
        record(&mut tx, &change).await?;
        commit(tx).await
    }

    fn subscribe(&self) -> Subscription {
        self.local.subscribe()
    }
}

/// Wakes the poller on every notification, and after every reconnect (notifications sent
/// meanwhile are lost). Ends when the pool closes.
async fn listen(pool: PgPool, wake: Arc<Notify>) {
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(CHANNEL).await?;
            wake.notify_one();
            loop {
                // `None`: the connection was lost; the next call reconnects and listens again.
                listener.try_recv().await?;
                wake.notify_one();
            }
        };
        let error: sqlx::Error = match listening.await {
            Ok(()) => return,
            Err(error) => error,
        };
        if pool.is_closed() {
            return;
        }
        tracing::warn!(%error, "listening for changes failed; reading the change log meanwhile");
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Reads the change log after `seen` when woken and at least every [`POLL_INTERVAL`], hands
/// what it reads to this node's subscribers, and prunes old changes now and then. Ends when the
/// pool closes.
async fn poll(pool: PgPool, local: Arc<LocalFeed>, wake: Arc<Notify>, mut seen: i64) {
    let mut next_prune = tokio::time::Instant::now();
    while !pool.is_closed() {
        match read_after(&pool, &local, seen).await {
            Ok((last, full)) => {
                seen = last;
                if full {
                    // There may be more right away.
                    continue;
                }
            }
            Err(error) => tracing::warn!(%error, "reading the change log failed"),
        }
        if tokio::time::Instant::now() >= next_prune {
            next_prune += PRUNE_INTERVAL;
            if let Err(error) = prune(&pool, RETENTION).await {
                tracing::warn!(%error, "pruning the change log failed");
            }
        }
        let _ = tokio::time::timeout(POLL_INTERVAL, wake.notified()).await;
    }
}

/// Announces the changes after id `seen`; the last id read, and whether the read was full.
async fn read_after(
    pool: &PgPool,
    local: &LocalFeed,
    seen: i64,
) -> Result<(i64, bool), StoreError> {
    let rows = sqlx::query(CHANGES_AFTER)
        .bind(seen)
        .bind(CHANGES_PER_READ)
        .fetch_all(pool)
        .await
        .map_err(backend("reading the change log"))?;
    let Some(first) = rows.first() else {
        return Ok((seen, false));
    };
    let oldest: i64 = column(first, "oldest")?;
    if oldest > seen + 1 {
        local.announce_missed(Missed(codec::unsigned(oldest - seen - 1)));
    }
    let mut last = seen;
    for row in &rows {
        last = column(row, "id")?;
        let kind: String = column(row, "kind")?;
        let namespace: Option<String> = column(row, "namespace")?;
        let name: Option<String> = column(row, "name")?;
        match change_of(&kind, namespace.as_deref(), name.as_deref()) {
            Ok(change) => local.announce(change),
            // Written by a newer build: whatever it changed, the copies must reload.
            Err(error) => {
                tracing::warn!(%error, id = last, "a change this build cannot read");
                local.announce_missed(Missed(1));
            }
        }
    }
    let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= CHANGES_PER_READ;
    Ok((last, full))
}

/// Deletes changes older than `retention` by the database's clock, except the newest.
async fn prune(pool: &PgPool, retention: Duration) -> Result<u64, StoreError> {
    let done = sqlx::query(PRUNE_CHANGES)
        .bind(i64::try_from(retention.as_micros()).unwrap_or(i64::MAX))
        .execute(pool)
        .await
        .map_err(backend("pruning the change log"))?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::test_store;

    /// A change stored without its notification, as when the listening connection was down.
    const UNANNOUNCED: &str = "INSERT INTO changes (kind, at_us) VALUES ('tenants', $1)";

    #[tokio::test]
    async fn a_change_whose_notification_was_lost_arrives_by_polling() {
        let store = test_store(Duration::from_secs(30)).await;
        let feed = PgFeed::follow(store.pool.clone()).await.unwrap();
        let mut subscriber = feed.subscribe();
        sqlx::query(UNANNOUNCED)
            .bind(0_i64)
            .execute(&store.pool)
            .await
            .unwrap();
        let arrived = tokio::time::timeout(POLL_INTERVAL * 3, subscriber.next()).await;
        assert_eq!(arrived, Ok(Some(Ok(Change::Tenants))));
    }

    #[tokio::test]
    async fn old_changes_are_pruned_but_the_newest_and_a_follower_past_them_is_told() {
        let store = test_store(Duration::from_secs(30)).await;
        for _ in 0..3 {
            sqlx::query(UNANNOUNCED)
                .bind(0_i64)
                .execute(&store.pool)
                .await
                .unwrap();
        }
        assert_eq!(
            prune(&store.pool, RETENTION).await.unwrap(),
            2,
            "the newest stays"
        );
        assert_eq!(prune(&store.pool, RETENTION).await.unwrap(), 0);
        let recent = sqlx::query(RECORD_CHANGE)
            .bind("tenants")
            .bind(None::<&str>)
            .bind(None::<&str>)
            .bind(CHANNEL)
            .execute(&store.pool)
            .await;
        recent.unwrap();
        assert_eq!(
            prune(&store.pool, RETENTION).await.unwrap(),
            1,
            "the old one goes once a newer one exists, the recent one stays"
        );

        // A node that last saw nothing finds the first changes gone.
        let local = LocalFeed::new();
        let mut subscriber = local.subscribe();
        let (last, full) = read_after(&store.pool, &local, 0).await.unwrap();
        assert_eq!((last, full), (4, false));
        assert_eq!(subscriber.next().await, Some(Err(Missed(3))));
        assert_eq!(subscriber.next().await, Some(Ok(Change::Tenants)));
        // One that saw the pruned ones' last misses nothing.
        let (last, _) = read_after(&store.pool, &local, 3).await.unwrap();
        assert_eq!(last, 4);
        assert_eq!(subscriber.next().await, Some(Ok(Change::Tenants)));
    }
}
