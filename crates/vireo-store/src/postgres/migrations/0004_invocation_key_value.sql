-- Key-value operations each invocation made, metered like its bytes (attempts add up).
ALTER TABLE invocations
    ADD COLUMN kv_reads BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN kv_writes BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN kv_bytes BIGINT NOT NULL DEFAULT 0;
