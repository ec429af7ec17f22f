-- Key-value operations each invocation made, metered like its bytes (attempts add up).
ALTER TABLE invocations ADD COLUMN kv_reads INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invocations ADD COLUMN kv_writes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invocations ADD COLUMN kv_bytes INTEGER NOT NULL DEFAULT 0;
