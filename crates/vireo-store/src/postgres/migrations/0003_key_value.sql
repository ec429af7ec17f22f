-- Key-value stores of a namespace (see the SQLite schema): per-store counts kept by every
-- write, and a revision per write for compare-and-swap.
CREATE TABLE kv_stores (
    namespace TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    key_count BIGINT NOT NULL,
    total_bytes BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- Keys compare as their UTF-8 bytes (collation "C"), as on SQLite, so a listing's order and its
-- cursor mean the same on both backends whatever the database's own collation.
CREATE TABLE kv_entries (
    namespace TEXT NOT NULL,
    store TEXT NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    value BYTEA NOT NULL,
    revision BIGINT NOT NULL,
    PRIMARY KEY (namespace, store, key),
    FOREIGN KEY (namespace, store) REFERENCES kv_stores (namespace, name) ON DELETE CASCADE
);
