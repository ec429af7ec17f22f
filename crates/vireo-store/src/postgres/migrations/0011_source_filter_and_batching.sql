-- A source may invoke its function only for messages whose JSON body matches a filter (JSON),
-- and may batch several messages into one invocation, gathered for at most a window.
ALTER TABLE sources ADD COLUMN filter TEXT;
ALTER TABLE sources ADD COLUMN batch_window_ms BIGINT;
