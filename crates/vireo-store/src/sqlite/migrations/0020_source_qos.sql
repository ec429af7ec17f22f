-- An MQTT source's subscription QoS (0 or 1); NULL is the default, 1, and every other kind's.
ALTER TABLE sources ADD COLUMN qos INTEGER;
