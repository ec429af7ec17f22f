-- Event sources: a broker's messages become async invocations of the source's function.
-- The broker password is never here: `password_secret` names a namespace secret.
CREATE TABLE sources (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    function TEXT NOT NULL,
    selector TEXT NOT NULL,
    kind TEXT NOT NULL,
    url TEXT NOT NULL,
    stream TEXT NOT NULL,
    password_secret TEXT,
    batch_size INTEGER NOT NULL,
    paused INTEGER NOT NULL DEFAULT 0,
    created_at_us INTEGER NOT NULL,
    PRIMARY KEY (namespace, name),
    FOREIGN KEY (namespace, function) REFERENCES functions (namespace, name) ON DELETE CASCADE
);
