-- The nodes using this store, each as its last heartbeat described it.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at_us INTEGER NOT NULL,
    heartbeat_at_us INTEGER NOT NULL,
    in_flight INTEGER NOT NULL,
    draining INTEGER NOT NULL
) STRICT;

-- The fingerprint of the master key that seals this store's secrets: one row, recorded by
-- the first server, so a server started with another key refuses to start.
CREATE TABLE master_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint BLOB NOT NULL
) STRICT;
