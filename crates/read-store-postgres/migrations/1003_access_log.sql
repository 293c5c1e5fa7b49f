-- The access record (who read a family's personal data): append-only.
CREATE TABLE IF NOT EXISTS access_log (
    seq        BIGSERIAL PRIMARY KEY,
    at         TEXT NOT NULL,
    family_id  TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    actor_name TEXT NOT NULL,
    actor_role TEXT NOT NULL,
    office     TEXT,
    kind       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS access_log_family ON access_log (family_id, seq);
CREATE INDEX IF NOT EXISTS access_log_actor ON access_log (actor_id, seq);

CREATE OR REPLACE FUNCTION access_log_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the access record is append-only';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS access_log_append_only ON access_log;
CREATE TRIGGER access_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON access_log
    FOR EACH STATEMENT EXECUTE FUNCTION access_log_append_only();
