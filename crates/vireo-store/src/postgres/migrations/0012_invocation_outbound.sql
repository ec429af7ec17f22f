-- Calls each invocation made over database and broker connections and the bytes they moved,
-- metered like its key-value and bucket operations (attempts add up).
ALTER TABLE invocations
    ADD COLUMN outbound_calls BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN outbound_bytes BIGINT NOT NULL DEFAULT 0;
