-- The durable async queue, idempotency keys, retry policies and cron schedules.

-- RetryPolicy as JSON; NULL means the defaults.
ALTER TABLE functions ADD COLUMN retry_policy TEXT;

CREATE TABLE async_invocations (
    id TEXT PRIMARY KEY NOT NULL,
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    selector TEXT NOT NULL,
    "trigger" TEXT NOT NULL,
    source TEXT NOT NULL,
    method TEXT NOT NULL,
    uri TEXT NOT NULL,
    -- One `name: value` line per header.
    headers BLOB NOT NULL,
    body BLOB NOT NULL,
    idempotency_key TEXT,
    -- queued | running | succeeded | failed | dead
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Event age counts from here; a redrive resets it.
    accepted_at_us INTEGER NOT NULL,
    -- When the event happened (the CloudEvents time): its acceptance, or a schedule's slot.
    event_time_us INTEGER NOT NULL,
    updated_at_us INTEGER NOT NULL,
    next_attempt_at_us INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until_us INTEGER,
    response_status INTEGER,
    response_headers BLOB,
    response_body BLOB,
    response_truncated INTEGER,
    error TEXT,
    FOREIGN KEY (namespace, function) REFERENCES functions (namespace, name) ON DELETE CASCADE
) STRICT;

-- Claims take the oldest due queued rows; the partial index holds only those. Status changes
-- touch only these small partial indexes: indexing status in a per-function index too would
-- rewrite its entry on every claim and settlement.
CREATE INDEX async_due ON async_invocations (next_attempt_at_us) WHERE status = 'queued';
CREATE INDEX async_leases ON async_invocations (lease_owner, lease_until_us) WHERE status = 'running';
CREATE INDEX async_dead ON async_invocations (namespace, function, id) WHERE status = 'dead';
-- Counting per function and deleting with a function.
CREATE INDEX async_by_function ON async_invocations (namespace, function);

-- Queued + running per namespace, kept by triggers so the quota check is one row read.
CREATE TABLE async_pending (
    namespace TEXT PRIMARY KEY NOT NULL,
    pending INTEGER NOT NULL
) STRICT;

CREATE TRIGGER async_pending_insert AFTER INSERT ON async_invocations
WHEN new.status IN ('queued', 'running')
BEGIN
    INSERT INTO async_pending (namespace, pending) VALUES (new.namespace, 1)
    ON CONFLICT (namespace) DO UPDATE SET pending = pending + 1;
END;

CREATE TRIGGER async_pending_finish AFTER UPDATE OF status ON async_invocations
WHEN old.status IN ('queued', 'running') AND new.status NOT IN ('queued', 'running')
BEGIN
    UPDATE async_pending SET pending = pending - 1 WHERE namespace = new.namespace;
END;

CREATE TRIGGER async_pending_reopen AFTER UPDATE OF status ON async_invocations
WHEN old.status NOT IN ('queued', 'running') AND new.status IN ('queued', 'running')
BEGIN
    INSERT INTO async_pending (namespace, pending) VALUES (new.namespace, 1)
    ON CONFLICT (namespace) DO UPDATE SET pending = pending + 1;
END;

CREATE TRIGGER async_pending_delete AFTER DELETE ON async_invocations
WHEN old.status IN ('queued', 'running')
BEGIN
    UPDATE async_pending SET pending = pending - 1 WHERE namespace = old.namespace;
END;

CREATE TABLE idempotency_keys (
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    key TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    PRIMARY KEY (namespace, function, key),
    FOREIGN KEY (namespace, function) REFERENCES functions (namespace, name) ON DELETE CASCADE
) STRICT;

CREATE INDEX idempotency_by_age ON idempotency_keys (created_at_us);

CREATE TABLE schedules (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    function TEXT NOT NULL,
    selector TEXT NOT NULL,
    expression TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    payload TEXT NOT NULL,
    missed TEXT NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    next_fire_at_us INTEGER,
    created_at_us INTEGER NOT NULL,
    last_slot_us INTEGER,
    last_invocation_id TEXT,
    PRIMARY KEY (namespace, name),
    FOREIGN KEY (namespace, function) REFERENCES functions (namespace, name) ON DELETE CASCADE
) STRICT;

CREATE INDEX schedules_due ON schedules (next_fire_at_us) WHERE paused = 0;
