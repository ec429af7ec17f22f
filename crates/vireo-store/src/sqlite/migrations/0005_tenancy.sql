-- Namespace quotas and API keys.

-- NamespaceQuotas as JSON; NULL means none beyond the server's limits.
ALTER TABLE namespaces ADD COLUMN quotas TEXT;

-- Only the SHA-256 of a key's secret is kept; the key itself is shown once.
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'developer', 'invoker', 'viewer')),
    -- JSON array of namespace names; empty for admin keys.
    namespaces TEXT NOT NULL,
    description TEXT,
    secret_sha256 TEXT NOT NULL,
    created_at_us INTEGER NOT NULL,
    expires_at_us INTEGER,
    revoked_at_us INTEGER
) STRICT;
