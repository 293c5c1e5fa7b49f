-- Versions 1001 and up: the read store's migrations may share one database (and sqlx's one
-- `_sqlx_migrations` table) with the event store's (versions 1 and up). Before, this was version
-- 2 without IF NOT EXISTS; on a read store that applied it, this one changes nothing.
-- API access tokens. Only a SHA-256 hash of each token is kept; the token itself is shown once.
CREATE TABLE IF NOT EXISTS access_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('officer', 'auditor', 'holder')),
    family_id  TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    CHECK ((role = 'holder') = (family_id IS NOT NULL))
);
