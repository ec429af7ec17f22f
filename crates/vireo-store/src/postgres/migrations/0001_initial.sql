-- Vireo's schema on PostgreSQL: the SQLite schema as of its seventh migration, in one step.
-- Times are microseconds since the Unix epoch and every integer is BIGINT (one reading of
-- integer columns serves both backends); bytes are BYTEA; JSON values (settings, retry
-- policies, quotas, key scopes) are TEXT written by the shared codec and cast to JSONB only
-- where a query looks inside them.

CREATE TABLE namespaces (
    name TEXT PRIMARY KEY,
    created_at_us BIGINT NOT NULL,
    -- NamespaceQuotas as JSON; NULL means none beyond the server's limits.
    quotas TEXT
);

INSERT INTO namespaces (name, created_at_us)
VALUES ('default', (extract(epoch FROM now()) * 1000000)::BIGINT);

CREATE TABLE functions (
    namespace TEXT NOT NULL REFERENCES namespaces (name),
    name TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    -- RetryPolicy as JSON; NULL means the defaults.
    retry_policy TEXT,
    PRIMARY KEY (namespace, name)
);

-- `latest` is not stored anywhere: it is always the highest version number.
CREATE TABLE versions (
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    version BIGINT NOT NULL CHECK (version >= 1),
    component_sha256 TEXT NOT NULL,
    component_size BIGINT NOT NULL,
    -- VersionSettings as JSON, so new settings need no migration.
    settings TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (namespace, function, version),
    FOREIGN KEY (namespace, function) REFERENCES functions (namespace, name) ON DELETE CASCADE
);

CREATE TABLE aliases (
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    alias TEXT NOT NULL,
    version BIGINT NOT NULL,
    PRIMARY KEY (namespace, function, alias),
    FOREIGN KEY (namespace, function, version)
        REFERENCES versions (namespace, function, version) ON DELETE CASCADE
);

-- No foreign keys on records and logs: they are written in large batches after the fact and
-- deleted explicitly with their function.
CREATE TABLE invocations (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    version BIGINT NOT NULL,
    "trigger" TEXT NOT NULL,
    started_at_us BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    status TEXT NOT NULL,
    http_status BIGINT,
    cold BOOLEAN NOT NULL,
    error TEXT,
    -- Time spent getting an instance ready (loading the version when cold, plus instantiation).
    init_us BIGINT NOT NULL DEFAULT 0,
    -- Metering: a retried async invocation's attempts add up under its id.
    executions BIGINT NOT NULL DEFAULT 1,
    memory_mib BIGINT NOT NULL DEFAULT 0,
    billed_ms BIGINT NOT NULL DEFAULT 0,
    -- memory_mib × billed_ms, summed over executions: the base of GB-seconds.
    mib_ms BIGINT NOT NULL DEFAULT 0,
    request_bytes BIGINT NOT NULL DEFAULT 0,
    response_bytes BIGINT NOT NULL DEFAULT 0,
    -- CPU time the invocation used on the server's threads.
    cpu_us BIGINT NOT NULL DEFAULT 0
);

-- Ids are UUIDv7, so this index also orders a function's invocations by start time.
CREATE INDEX invocations_by_function ON invocations (namespace, function, id);
CREATE INDEX invocations_by_start ON invocations (namespace, started_at_us);

-- An identity, never reused after deletes: followers resume by seq. Writers of log lines take
-- a lock for the insert (see postgres/records.rs) so numbers become visible in order.
CREATE TABLE logs (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invocation_id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    version BIGINT NOT NULL,
    at_us BIGINT NOT NULL,
    stream TEXT NOT NULL,
    line TEXT NOT NULL
);

CREATE INDEX logs_by_function ON logs (namespace, function, seq);
CREATE INDEX logs_by_invocation ON logs (invocation_id);
CREATE INDEX logs_by_time ON logs (at_us);

CREATE TABLE async_invocations (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    selector TEXT NOT NULL,
    "trigger" TEXT NOT NULL,
    source TEXT NOT NULL,
    method TEXT NOT NULL,
    uri TEXT NOT NULL,
    -- One `name: value` line per header.
    headers BYTEA NOT NULL,
    body BYTEA NOT NULL,
    idempotency_key TEXT,
    -- queued | running | succeeded | failed | dead
    status TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    -- Event age counts from here; a redrive resets it.
    accepted_at_us BIGINT NOT NULL,
    -- When the event happened (the CloudEvents time): its acceptance, or a schedule's slot.
    event_time_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    next_attempt_at_us BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until_us BIGINT,
    response_status BIGINT,
    response_headers BYTEA,
    response_body BYTEA,
    response_truncated BOOLEAN,
    error TEXT,
    FOREIGN KEY (namespace, function) REFERENCES functions (namespace, name) ON DELETE CASCADE
);

-- Claims take the oldest due queued rows; the partial indexes hold only rows of one state.
CREATE INDEX async_due ON async_invocations (next_attempt_at_us) WHERE status = 'queued';
CREATE INDEX async_leases ON async_invocations (lease_owner, lease_until_us) WHERE status = 'running';
CREATE INDEX async_dead ON async_invocations (namespace, function, id) WHERE status = 'dead';
-- A namespace's queued and running invocations are counted from this index when accepting,
-- instead of a counter row every node's accepts and settlements would contend for.
CREATE INDEX async_pending ON async_invocations (namespace) WHERE status IN ('queued', 'running');
CREATE INDEX async_finished ON async_invocations (updated_at_us) WHERE status IN ('succeeded', 'failed');
-- Counting per function and deleting with a function.
CREATE INDEX async_by_function ON async_invocations (namespace, function);

CREATE TABLE idempotency_keys (
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    key TEXT NOT NULL,
    invocation_id TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (namespace, function, key),
    FOREIGN KEY (namespace, function) REFERENCES functions (namespace, name) ON DELETE CASCADE
);

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
    paused BOOLEAN NOT NULL DEFAULT FALSE,
    next_fire_at_us BIGINT,
    created_at_us BIGINT NOT NULL,
    last_slot_us BIGINT,
    last_invocation_id TEXT,
    PRIMARY KEY (namespace, name),
    FOREIGN KEY (namespace, function) REFERENCES functions (namespace, name) ON DELETE CASCADE
);

CREATE INDEX schedules_due ON schedules (next_fire_at_us) WHERE NOT paused;

-- Only the SHA-256 of a key's secret is kept; the key itself is shown once.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('admin', 'developer', 'invoker', 'viewer')),
    -- JSON array of namespace names; empty for admin keys.
    namespaces TEXT NOT NULL,
    description TEXT,
    secret_sha256 TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    expires_at_us BIGINT,
    revoked_at_us BIGINT
);

-- Secrets of a namespace, sealed by the server before they get here (see the SQLite schema).
CREATE TABLE secrets (
    namespace TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    nonce BYTEA NOT NULL,
    ciphertext BYTEA NOT NULL,
    created_at_us BIGINT NOT NULL,
    updated_at_us BIGINT NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- The change log the nodes follow: each write to what nodes copy into memory adds a row in its
-- own transaction and notifies `vireo_changes`; a node reads rows after the last id it saw.
-- Writers take a lock for the insert (see postgres/changes.rs) so ids become visible in order.
CREATE TABLE changes (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- routes | tenants | secret
    kind TEXT NOT NULL,
    -- The scope: the function's or secret's namespace and name; NULL for tenants.
    namespace TEXT,
    name TEXT,
    -- The database's clock, the same for every node, so pruning by age needs no agreement.
    at_us BIGINT NOT NULL
);

CREATE INDEX changes_by_age ON changes (at_us);
