-- Secrets of a namespace, sealed by the server before they get here: XChaCha20-Poly1305 under
-- the master key (which is not in the database), a fresh nonce per write, and the namespace and
-- name bound in as associated data so a ciphertext opens only under its own (namespace, name).
CREATE TABLE secrets (
    namespace TEXT NOT NULL REFERENCES namespaces (name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    nonce BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    created_at_us INTEGER NOT NULL,
    updated_at_us INTEGER NOT NULL,
    PRIMARY KEY (namespace, name)
) STRICT;
