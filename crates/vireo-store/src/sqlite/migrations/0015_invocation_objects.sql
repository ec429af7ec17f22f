-- Bucket operations each invocation made through wasi:blobstore, metered like its key-value
-- operations (attempts add up).
ALTER TABLE invocations ADD COLUMN object_reads INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invocations ADD COLUMN object_writes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invocations ADD COLUMN object_bytes INTEGER NOT NULL DEFAULT 0;
