-- Officials who signed in through the identity provider: the history names them by these.
CREATE TABLE IF NOT EXISTS known_people (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    role    TEXT NOT NULL,
    office  TEXT,
    seen_at TEXT NOT NULL
);
