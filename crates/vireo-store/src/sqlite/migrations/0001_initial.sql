-- Vireo's initial schema. Times are microseconds since the Unix epoch. STRICT tables so a
-- mistyped bind fails loudly instead of being stored as the wrong type.

CREATE TABLE namespaces (
    name TEXT PRIMARY KEY NOT NULL,
    created_at_us INTEGER NOT NULL
) STRICT;

INSERT INTO namespaces (name, created_at_us) VALUES ('default', unixepoch() * 1000000);

CREATE TABLE functions (
    namespace TEXT NOT NULL REFERENCES namespaces (name),
    name TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
) STRICT;

-- `latest` is not stored anywhere: it is always the highest version number.
CREATE TABLE versions (
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    version INTEGER NOT NULL CHECK (version >= 1),
    component_sha256 TEXT NOT NULL,
    component_size INTEGER NOT NULL,
    -- VersionSettings as JSON, so new settings need no migration.
    settings TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    PRIMARY KEY (namespace, function, version),
    FOREIGN KEY (namespace, function) REFERENCES functions (namespace, name) ON DELETE CASCADE
) STRICT;

CREATE TABLE aliases (
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    alias TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (namespace, function, alias),
    FOREIGN KEY (namespace, function, version)
        REFERENCES versions (namespace, function, version) ON DELETE CASCADE
) STRICT;

-- No foreign keys on records and logs: they are written in large batches after the fact and
-- deleted explicitly with their function.
CREATE TABLE invocations (
    id TEXT PRIMARY KEY NOT NULL,
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    version INTEGER NOT NULL,
    "trigger" TEXT NOT NULL,
    started_at_us INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    status TEXT NOT NULL,
    http_status INTEGER,
    cold INTEGER NOT NULL,
    error TEXT
) STRICT;

-- Ids are UUIDv7, so this index also orders a function's invocations by start time.
CREATE INDEX invocations_by_function ON invocations (namespace, function, id);

-- AUTOINCREMENT so a sequence number is never reused after deletes: followers resume by seq.
CREATE TABLE logs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    invocation_id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    version INTEGER NOT NULL,
    at_us INTEGER NOT NULL,
    stream TEXT NOT NULL,
    line TEXT NOT NULL
) STRICT;

CREATE INDEX logs_by_function ON logs (namespace, function, seq);
CREATE INDEX logs_by_invocation ON logs (invocation_id);
