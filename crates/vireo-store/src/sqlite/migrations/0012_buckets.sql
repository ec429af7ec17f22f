-- Object buckets of a namespace. Each row counts its objects and their bytes, updated in the
-- transaction of every write, so listing buckets and checking the namespace's max_object_bytes
-- quota never scan the objects.
CREATE TABLE buckets (
    namespace TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    object_count INTEGER NOT NULL,
    total_bytes INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
) STRICT;

-- An object's description; its bytes are the file `objects/<blob>` in the data directory,
-- renamed into place whole before this row is written. `blob` changes with every write, so a
-- reader that holds the old row never reads the new bytes as the old object's. Keys compare as
-- their UTF-8 bytes (SQLite's BINARY collation), the order listings page in. `metadata` is a
-- JSON object of strings.
CREATE TABLE objects (
    namespace TEXT NOT NULL,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    blob TEXT NOT NULL UNIQUE,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    content_type TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    PRIMARY KEY (namespace, bucket, key),
    FOREIGN KEY (namespace, bucket) REFERENCES buckets (namespace, name) ON DELETE CASCADE
) STRICT;

-- What a bucket's changes invoke: each function at most once per bucket, for the events listed
-- (a JSON array of "created" and "deleted") on keys with the prefix and suffix.
CREATE TABLE bucket_notifications (
    namespace TEXT NOT NULL,
    bucket TEXT NOT NULL,
    function TEXT NOT NULL,
    events TEXT NOT NULL,
    prefix TEXT NOT NULL,
    suffix TEXT NOT NULL,
    PRIMARY KEY (namespace, bucket, function),
    FOREIGN KEY (namespace, bucket) REFERENCES buckets (namespace, name) ON DELETE CASCADE
) STRICT;
