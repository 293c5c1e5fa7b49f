-- API access tokens. Only a SHA-256 hash of each token is kept; the token itself is shown once.
CREATE TABLE access_tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('officer', 'auditor', 'holder')),
    family_id  TEXT,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    CHECK ((role = 'holder') = (family_id IS NOT NULL))
);
