-- One row per projection: the last applied global position, written in the same transaction as
-- the projection's rows. `version` is the projection's code version: a mismatch means rebuild.
CREATE TABLE projection_checkpoints (
    name       TEXT   PRIMARY KEY,
    position   BIGINT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TEXT   NOT NULL
);
