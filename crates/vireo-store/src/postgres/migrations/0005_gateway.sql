-- A weighted alias: its versions, weights and sticky key as JSON; NULL when it names one
-- version (then `version` says which). `version` always holds the primary version.
ALTER TABLE aliases ADD COLUMN split TEXT;

-- Hosts an admin let a namespace route; `*.example.com` claims every subdomain.
CREATE TABLE host_claims (
    host TEXT NOT NULL PRIMARY KEY,
    namespace TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    created_at_us BIGINT NOT NULL
);

-- Routes to functions: `host` is '' for any host, `path` the pattern as written (`/orders/*`).
-- One route per pattern, whichever namespace holds it.
CREATE TABLE http_routes (
    host TEXT NOT NULL,
    path TEXT NOT NULL,
    namespace TEXT NOT NULL,
    function TEXT NOT NULL,
    selector TEXT NOT NULL,
    created_at_us BIGINT NOT NULL,
    PRIMARY KEY (host, path),
    FOREIGN KEY (namespace, function) REFERENCES functions (namespace, name) ON DELETE CASCADE
);
CREATE INDEX http_routes_by_namespace ON http_routes (namespace);
