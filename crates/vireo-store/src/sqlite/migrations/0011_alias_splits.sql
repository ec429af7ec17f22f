-- A weighted alias: its versions, weights and sticky key as JSON; NULL when it names one
-- version (then `version` says which). `version` always holds the primary version.
ALTER TABLE aliases ADD COLUMN split TEXT;
