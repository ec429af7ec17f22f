-- Component bytes, named by their sha256, so every node runs what any node deployed. Each node
-- compiles them into its own artifact cache on local disk.
CREATE TABLE components (
    sha256 TEXT PRIMARY KEY,
    bytes BYTEA NOT NULL,
    stored_at_us BIGINT NOT NULL
);

-- The nodes using this database, each as its last heartbeat described it.
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    address TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at_us BIGINT NOT NULL,
    heartbeat_at_us BIGINT NOT NULL,
    in_flight BIGINT NOT NULL,
    draining BOOLEAN NOT NULL
);

-- The fingerprint of the master key that seals this database's secrets: one row, recorded by
-- the first node, so a node started with another key refuses to start.
CREATE TABLE master_key (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    fingerprint BYTEA NOT NULL
);
