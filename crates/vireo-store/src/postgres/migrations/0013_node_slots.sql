-- Each live node's slot: a small number no other live node holds, kept across restarts of a
-- cluster, so what a broker keeps per consumer (an MQTT session) is found again.
ALTER TABLE nodes ADD COLUMN slot BIGINT;
CREATE UNIQUE INDEX nodes_slot ON nodes (slot);
