-- Object buckets and their objects' descriptions (see the SQLite schema).
CREATE TABLE buckets (
    namespace TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    object_count BIGINT NOT NULL,
    total_bytes BIGINT NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- Keys compare as their UTF-8 bytes (collation "C"), as on SQLite.
CREATE TABLE objects (
    namespace TEXT NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT COLLATE "C" NOT NULL,
    blob TEXT NOT NULL UNIQUE,
    size BIGINT NOT NULL,
    etag TEXT NOT NULL,
    content_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (namespace, bucket, key),
    FOREIGN KEY (namespace, bucket) REFERENCES buckets (namespace, name) ON DELETE CASCADE
);

-- What a bucket's changes invoke (see the SQLite schema).
CREATE TABLE bucket_notifications (
    namespace TEXT NOT NULL,
    bucket TEXT NOT NULL,
    function TEXT NOT NULL,
    events TEXT NOT NULL,
    prefix TEXT NOT NULL,
    suffix TEXT NOT NULL,
    PRIMARY KEY (namespace, bucket, function),
    FOREIGN KEY (namespace, bucket) REFERENCES buckets (namespace, name) ON DELETE CASCADE
);

-- An object's bytes, in chunks every node reads, written in the transaction that writes the
-- object's row: the chunks come first, so the reference is checked at commit, and a replaced
-- or deleted object takes its chunks with it.
CREATE TABLE object_chunks (
    blob TEXT NOT NULL REFERENCES objects (blob) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    seq BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (blob, seq)
);
