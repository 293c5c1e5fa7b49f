-- The event log. `position` is assigned by the appender while it holds the append lock (a
-- transaction-scoped advisory lock), so positions are assigned and committed in the same order:
-- a reader can never see a position before a lower one has committed. See ADR 0007.
CREATE TABLE events (
    position       BIGINT      PRIMARY KEY,
    event_id       UUID        NOT NULL UNIQUE,
    stream         TEXT        NOT NULL,
    revision       BIGINT      NOT NULL,
    event_type     TEXT        NOT NULL,
    schema_version INTEGER     NOT NULL,
    data           TEXT        NOT NULL,
    metadata       TEXT        NOT NULL,
    recorded_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (stream, revision)
);

-- Nothing is ever updated in place or deleted.
CREATE FUNCTION events_are_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END
$$;
CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_append_only();

-- Command idempotency keys, written in the same transaction as the events they produced.
CREATE TABLE idempotency_keys (
    key          TEXT   PRIMARY KEY,
    request_hash TEXT   NOT NULL,
    stream       TEXT   NOT NULL,
    revision     BIGINT NOT NULL,
    position     BIGINT NOT NULL
);
