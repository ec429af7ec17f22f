//! SQL that reads the same on every backend (numbered parameters read alike on SQLite and
//! PostgreSQL): the node registry's and the master key record's.

/// The first heartbeat inserts the node; later ones keep its id and start time.
pub(crate) const HEARTBEAT: &str = "INSERT INTO nodes
        (id, address, version, started_at_us, heartbeat_at_us, in_flight, draining)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (id) DO UPDATE SET address = excluded.address, version = excluded.version,
        heartbeat_at_us = excluded.heartbeat_at_us, in_flight = excluded.in_flight,
        draining = excluded.draining";
pub(crate) const FORGET_SILENT: &str = "DELETE FROM nodes WHERE heartbeat_at_us < $1";
pub(crate) const LIVE_NODES: &str = "SELECT id, address, version, started_at_us,
        heartbeat_at_us, in_flight, draining
    FROM nodes WHERE heartbeat_at_us >= $1 ORDER BY started_at_us, id";
pub(crate) const LEAVE: &str = "DELETE FROM nodes WHERE id = $1";

/// The first fingerprint recorded stays.
pub(crate) const RECORD_MASTER_KEY: &str =
    "INSERT INTO master_key (id, fingerprint) VALUES (1, $1) ON CONFLICT (id) DO NOTHING";
pub(crate) const MASTER_KEY: &str = "SELECT fingerprint FROM master_key WHERE id = 1";
