//! The read store's tables. The live tables and a rebuild's shadow tables (`_rebuild`) share
//! one definition; index names carry a random suffix because an index keeps its name when its
//! table is renamed by a swap, and names are unique per database.

use registry_read_store::{ReadStoreError, CERTIFICATE_VIEW, FAMILY_HISTORY};
use rusqlite::Connection;

/// Tables that are not projections: checkpoints and access tokens. `IF NOT EXISTS`: a store
/// made by an earlier version (through sqlx) already has them.
const BASE: &str = "
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name       TEXT    PRIMARY KEY,
    position   INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TEXT    NOT NULL
);
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
-- The access record (who read a family's personal data): append-only.
CREATE TABLE IF NOT EXISTS access_log (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
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
CREATE TRIGGER IF NOT EXISTS access_log_no_update BEFORE UPDATE ON access_log
    BEGIN SELECT RAISE(ABORT, 'the access record is append-only'); END;
CREATE TRIGGER IF NOT EXISTS access_log_no_delete BEFORE DELETE ON access_log
    BEGIN SELECT RAISE(ABORT, 'the access record is append-only'); END;
-- Officials who signed in through the identity provider: the history names them by these.
CREATE TABLE IF NOT EXISTS known_people (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    role    TEXT NOT NULL,
    office  TEXT,
    seen_at TEXT NOT NULL
);
-- The transparency log's tree (registry-tlog): derived from the event log, never rebuilt with
-- the projections. Stored hashes in tlog's stored-hash numbering; one row per leaf.
CREATE TABLE IF NOT EXISTS tlog_hashes (
    idx  INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS tlog_leaves (
    leaf     INTEGER PRIMARY KEY,
    position INTEGER NOT NULL UNIQUE,
    event_id TEXT    NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS tlog_checkpoints (
    size INTEGER PRIMARY KEY,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tlog_cosignatures (
    size    INTEGER NOT NULL,
    witness TEXT    NOT NULL,
    line    TEXT    NOT NULL,
    PRIMARY KEY (size, witness)
);
";

/// Applies the base tables, and adds what later versions added to a store made earlier.
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(BASE)?;
    drop_retired_indexes(conn)?;
    let has_office: bool = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('access_tokens') WHERE name = 'office'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_office {
        conn.execute_batch("ALTER TABLE access_tokens ADD COLUMN office TEXT")?;
    }
    Ok(())
}

/// Drops the search keys' index by family (`family_search_family_*`), which replacing a family's
/// keys needed before they were replaced by primary key: every write kept it up to date for
/// nothing.
pub fn drop_retired_indexes(conn: &Connection) -> rusqlite::Result<()> {
    let retired: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' \
             AND tbl_name = 'family_search' AND name LIKE 'family\\_search\\_family\\_%' ESCAPE '\\'",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in retired {
        conn.execute_batch(&format!("DROP INDEX \"{name}\";"))?;
    }
    Ok(())
}

/// The tables of a projection, in their live names.
pub fn tables(projection: &str) -> Result<&'static [&'static str], ReadStoreError> {
    match projection {
        CERTIFICATE_VIEW => Ok(&["certificate_view", "family_search"]),
        FAMILY_HISTORY => Ok(&["family_history"]),
        other => Err(ReadStoreError::UnknownProjection(other.to_string())),
    }
}

/// `CREATE TABLE` of a projection's tables, with `suffix` (`""` live, `_rebuild` shadow).
pub fn create_tables(projection: &str, suffix: &str) -> Result<String, ReadStoreError> {
    Ok(match projection {
        CERTIFICATE_VIEW => format!(
            "CREATE TABLE IF NOT EXISTS certificate_view{suffix} (
                token_id           TEXT PRIMARY KEY,
                family_id          TEXT NOT NULL,
                is_current         INTEGER NOT NULL,
                certificate_number TEXT NOT NULL,
                serial             INTEGER NOT NULL,
                status             TEXT NOT NULL,
                valid_from         TEXT NOT NULL,
                valid_until        TEXT NOT NULL,
                family             TEXT NOT NULL,
                revision           INTEGER NOT NULL,
                position           INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS family_search{suffix} (
                kind      TEXT NOT NULL,
                value     TEXT NOT NULL,
                family_id TEXT NOT NULL,
                PRIMARY KEY (kind, value, family_id)
            ) WITHOUT ROWID;"
        ),
        FAMILY_HISTORY => format!(
            "CREATE TABLE IF NOT EXISTS family_history{suffix} (
                position       INTEGER PRIMARY KEY,
                family_id      TEXT NOT NULL,
                revision       INTEGER NOT NULL,
                event_id       TEXT NOT NULL,
                event_type     TEXT NOT NULL,
                schema_version INTEGER NOT NULL,
                recorded_at    TEXT NOT NULL,
                actor_id       TEXT NOT NULL,
                actor_role     TEXT NOT NULL,
                correlation_id TEXT,
                causation_id   TEXT,
                reason         TEXT,
                decision       TEXT
            );"
        ),
        other => return Err(ReadStoreError::UnknownProjection(other.to_string())),
    })
}

/// `CREATE INDEX` of a projection's secondary indexes, on the tables with `suffix`. Run once: with
/// a new projection's tables, or after a rebuild's rows are in (building an index from loaded rows
/// is much cheaper than keeping it up to date through a bulk load). Writes need none: a family's
/// search keys are replaced by their primary key (`KeyChange`), so the index by family that
/// versions before 2026-12-03 kept on `family_search` is dropped ([`drop_retired_indexes`]).
pub fn read_indexes(projection: &str, suffix: &str) -> Result<String, ReadStoreError> {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    Ok(match projection {
        CERTIFICATE_VIEW => format!(
            "CREATE INDEX certificate_view_family_{tag} ON certificate_view{suffix} (family_id, is_current);"
        ),
        FAMILY_HISTORY => format!(
            "CREATE INDEX family_history_family_{tag} ON family_history{suffix} (family_id, revision);"
        ),
        other => return Err(ReadStoreError::UnknownProjection(other.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_store_with_the_search_keys_index_by_family_when_migrated_then_only_that_goes() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&create_tables(CERTIFICATE_VIEW, "").unwrap())
            .unwrap();
        conn.execute_batch(&read_indexes(CERTIFICATE_VIEW, "").unwrap())
            .unwrap();
        conn.execute_batch("CREATE INDEX family_search_family_0a1b ON family_search (family_id);")
            .unwrap();
        migrate(&conn).unwrap();
        let indexes: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(indexes
            .iter()
            .all(|i| !i.starts_with("family_search_family_")));
        assert!(indexes
            .iter()
            .any(|i| i.starts_with("certificate_view_family_")));
    }

    #[test]
    fn given_a_store_made_before_tokens_named_an_office_when_migrated_then_tokens_take_one() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE access_tokens (id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,
             family_id TEXT, token_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
             revoked_at TEXT);
             INSERT INTO access_tokens VALUES ('old', 'УСЗН', 'officer', NULL, 'h', 't', NULL);",
        )
        .unwrap();
        migrate(&conn).unwrap();
        migrate(&conn).unwrap(); // a second start changes nothing
        conn.execute(
            "INSERT INTO access_tokens (id, name, role, office, token_hash, created_at) \
             VALUES ('new', 'Петрова', 'officer', 'УСЗН ЦАО', 'h2', 't')",
            [],
        )
        .unwrap();
        let offices: Vec<Option<String>> = conn
            .prepare("SELECT office FROM access_tokens ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(offices, [Some("УСЗН ЦАО".to_string()), None]);
    }
}
