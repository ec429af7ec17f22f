-- A JetStream source may read only the subjects of its stream matching a filter.
ALTER TABLE sources ADD COLUMN subject TEXT;
