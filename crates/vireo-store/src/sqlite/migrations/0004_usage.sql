-- Metering. A record is one invocation id; an async invocation's retries add their executions,
-- billed time and bytes to it, so every attempt is billed.
ALTER TABLE invocations ADD COLUMN executions INTEGER NOT NULL DEFAULT 1;
ALTER TABLE invocations ADD COLUMN memory_mib INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invocations ADD COLUMN billed_ms INTEGER NOT NULL DEFAULT 0;
-- memory_mib × billed_ms, summed over executions: the base of GB-seconds.
ALTER TABLE invocations ADD COLUMN mib_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invocations ADD COLUMN request_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invocations ADD COLUMN response_bytes INTEGER NOT NULL DEFAULT 0;

-- Records from before metering: billed by the same rule, with their version's memory.
UPDATE invocations SET
    billed_ms = MAX(1, (duration_us + 999) / 1000),
    memory_mib = COALESCE((SELECT json_extract(v.settings, '$.memory_mib') FROM versions v
                           WHERE v.namespace = invocations.namespace
                             AND v.function = invocations.function
                             AND v.version = invocations.version), 128);
UPDATE invocations SET mib_ms = memory_mib * billed_ms;

CREATE INDEX invocations_by_start ON invocations (namespace, started_at_us);
