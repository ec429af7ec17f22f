-- Bucket operations each invocation made through wasi:blobstore, metered like its key-value
-- operations (attempts add up).
ALTER TABLE invocations
    ADD COLUMN object_reads BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN object_writes BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN object_bytes BIGINT NOT NULL DEFAULT 0;
