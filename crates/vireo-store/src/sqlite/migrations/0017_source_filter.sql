-- A source may invoke its function only for messages whose JSON body matches a filter (JSON).
ALTER TABLE sources ADD COLUMN filter TEXT;
