-- Versions 1001 and up: the read store's migrations may share one database (and sqlx's one
-- `_sqlx_migrations` table) with the event store's (versions 1 and up). Before, this was version
-- 1 without IF NOT EXISTS; on a read store that applied it, this one changes nothing.
-- One row per projection: the last applied global position, written in the same transaction as
-- the projection's rows. `version` is the projection's code version: a mismatch means rebuild.
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name       TEXT   PRIMARY KEY,
    position   BIGINT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TEXT   NOT NULL
);
