-- Key-value stores of a namespace. `default` gets its row on its first write (it exists in
-- every namespace without being created). Each row counts its keys and their bytes (keys plus
-- values), updated in the transaction of every write, so listing stores and checking the
-- namespace's max_kv_bytes quota never scan the keys. `revision` numbers the store's writes:
-- each takes the next one and stamps the entries it writes, for compare-and-swap.
CREATE TABLE kv_stores (
    namespace TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    key_count INTEGER NOT NULL,
    total_bytes INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
) STRICT;

-- Keys compare as their UTF-8 bytes (SQLite's BINARY collation), the order listings page in.
CREATE TABLE kv_entries (
    namespace TEXT NOT NULL,
    store TEXT NOT NULL,
    key TEXT NOT NULL,
    value BLOB NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (namespace, store, key),
    FOREIGN KEY (namespace, store) REFERENCES kv_stores (namespace, name) ON DELETE CASCADE
) STRICT;
