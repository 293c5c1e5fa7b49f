-- The transparency log's tree (registry-tlog): derived from the event log, never rebuilt with the
-- projections. Stored hashes in tlog's stored-hash numbering; one row per leaf.
CREATE TABLE IF NOT EXISTS tlog_hashes (
    idx  BIGINT PRIMARY KEY,
    hash BYTEA  NOT NULL
);
CREATE TABLE IF NOT EXISTS tlog_leaves (
    leaf     BIGINT PRIMARY KEY,
    position BIGINT NOT NULL UNIQUE,
    event_id TEXT   NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS tlog_checkpoints (
    size BIGINT PRIMARY KEY,
    note TEXT   NOT NULL
);
CREATE TABLE IF NOT EXISTS tlog_cosignatures (
    size    BIGINT NOT NULL,
    witness TEXT   NOT NULL,
    line    TEXT   NOT NULL,
    PRIMARY KEY (size, witness)
);
