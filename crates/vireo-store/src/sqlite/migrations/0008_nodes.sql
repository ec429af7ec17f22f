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
