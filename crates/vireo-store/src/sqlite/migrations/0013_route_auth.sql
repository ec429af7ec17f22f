-- Who may call a function through a route, as the JSON of an `invoke_auth` setting; NULL keeps
-- the version's own.
ALTER TABLE http_routes ADD COLUMN invoke_auth TEXT;
