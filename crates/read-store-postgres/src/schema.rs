//! The read store's projection tables on PostgreSQL (the base tables are sqlx migrations,
//! versions 1001 and up; ADR 13). Live and shadow (`_rebuild`) tables share one definition;
//! index names carry a random suffix (an index keeps its name through a swap's rename).

use registry_read_store::{ReadStoreError, CERTIFICATE_VIEW, FAMILY_HISTORY};

pub fn tables(projection: &str) -> Result<&'static [&'static str], ReadStoreError> {
    match projection {
        CERTIFICATE_VIEW => Ok(&["certificate_view", "family_search"]),
        FAMILY_HISTORY => Ok(&["family_history"]),
        other => Err(ReadStoreError::UnknownProjection(other.to_string())),
    }
}

/// `CREATE TABLE` of a projection's tables, with `suffix` (`""` live, `_rebuild` shadow), with
/// their primary keys if `keyed`: a rebuild's shadow tables get theirs from [`primary_keys`] once
/// their bulk load is in (one sort instead of a B-tree insert per row).
pub fn create_tables(
    projection: &str,
    suffix: &str,
    keyed: bool,
) -> Result<Vec<String>, ReadStoreError> {
    let key = |columns: &str| {
        if keyed {
            format!(",\n PRIMARY KEY ({columns})")
        } else {
            String::new()
        }
    };
    tables(projection)?;
    Ok(columns(projection, suffix)
        .into_iter()
        .zip(KEYS.iter().filter(|(p, _, _)| *p == projection))
        .map(|(create, (_, _, columns))| format!("{create}{}\n)", key(columns)))
        .collect())
}

/// Each projection table's primary key: projection, table, columns.
const KEYS: &[(&str, &str, &str)] = &[
    (CERTIFICATE_VIEW, "certificate_view", "token_id"),
    (CERTIFICATE_VIEW, "family_search", "kind, value, family_id"),
    (FAMILY_HISTORY, "family_history", "position"),
];

/// `ALTER TABLE … ADD PRIMARY KEY` of a rebuild's shadow tables, named with a random suffix like
/// the indexes (a constraint keeps its name through a swap's rename).
pub fn primary_keys(projection: &str, suffix: &str) -> Result<Vec<String>, ReadStoreError> {
    tables(projection)?;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    Ok(KEYS
        .iter()
        .filter(|(p, _, _)| *p == projection)
        .map(|(_, table, columns)| {
            format!(
                "ALTER TABLE {table}{suffix} ADD CONSTRAINT {table}_{tag}_pkey PRIMARY KEY ({columns})"
            )
        })
        .collect())
}

/// The tables' columns, each `CREATE TABLE` left open for its key.
fn columns(projection: &str, suffix: &str) -> Vec<String> {
    match projection {
        CERTIFICATE_VIEW => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS certificate_view{suffix} (
                    token_id           TEXT NOT NULL,
                    family_id          TEXT NOT NULL,
                    is_current         BIGINT NOT NULL,
                    certificate_number TEXT NOT NULL,
                    serial             BIGINT NOT NULL,
                    status             TEXT NOT NULL,
                    valid_from         TEXT NOT NULL,
                    valid_until        TEXT NOT NULL,
                    family             TEXT NOT NULL,
                    revision           BIGINT NOT NULL,
                    position           BIGINT NOT NULL"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS family_search{suffix} (
                    kind      TEXT NOT NULL,
                    value     TEXT NOT NULL,
                    family_id TEXT NOT NULL"
            ),
        ],
        FAMILY_HISTORY => vec![format!(
            "CREATE TABLE IF NOT EXISTS family_history{suffix} (
                position       BIGINT NOT NULL,
                family_id      TEXT NOT NULL,
                revision       BIGINT NOT NULL,
                event_id       TEXT NOT NULL,
                event_type     TEXT NOT NULL,
                schema_version BIGINT NOT NULL,
                recorded_at    TEXT NOT NULL,
                actor_id       TEXT NOT NULL,
                actor_role     TEXT NOT NULL,
                correlation_id TEXT,
                causation_id   TEXT,
                reason         TEXT,
                decision       TEXT"
        )],
        _ => Vec::new(),
    }
}

/// Drops the search keys' index by family (`family_search_family_*`), which replacing a family's
/// keys needed before they were replaced by primary key (`KeyChange`): every write kept it up to
/// date for nothing. Idempotent; a role that does not own the index leaves it, with a warning in
/// the server's log, rather than fail the start.
pub const DROP_RETIRED_INDEXES: &str = r"DO $$
DECLARE retired record;
BEGIN
    FOR retired IN SELECT indexname FROM pg_indexes
        WHERE schemaname = current_schema() AND tablename = 'family_search'
        AND indexname LIKE 'family\_search\_family\_%'
    LOOP
        BEGIN
            EXECUTE format('DROP INDEX %I', retired.indexname);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'index % is no longer used; its owner may drop it', retired.indexname;
        END;
    END LOOP;
END $$";

/// A projection's secondary indexes (writes need none): with a new projection's tables, or after
/// a rebuild's rows.
pub fn read_indexes(projection: &str, suffix: &str) -> Result<Vec<String>, ReadStoreError> {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    Ok(match projection {
        CERTIFICATE_VIEW => vec![format!(
            "CREATE INDEX certificate_view_family_{tag} ON certificate_view{suffix} (family_id, is_current)"
        )],
        FAMILY_HISTORY => vec![format!(
            "CREATE INDEX family_history_family_{tag} ON family_history{suffix} (family_id, revision)"
        )],
        other => return Err(ReadStoreError::UnknownProjection(other.to_string())),
    })
}

/// Whether the server compresses TOAST values with LZ4 (PostgreSQL 14 and later, built with it).
pub async fn has_lz4(conn: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
    let found: Option<bool> = sqlx::query_scalar(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
    )
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    Ok(found.unwrap_or(false))
}

/// `ALTER TABLE` statements that store a projection's large values (the certificate view's
/// family JSON, about 2 KiB, just over the TOAST threshold) compressed with LZ4 instead of
/// `pglz`: a rebuild of 1,000,000 events wrote its certificates in 4.7–5.0 s instead of
/// 7.0–7.5 s (BENCHMARKS.md, 2026-12-03). Reads decompress either.
pub fn lz4_columns(projection: &str, suffix: &str) -> Vec<String> {
    match projection {
        CERTIFICATE_VIEW => vec![format!(
            "ALTER TABLE certificate_view{suffix} ALTER COLUMN family SET COMPRESSION lz4"
        )],
        _ => Vec::new(),
    }
}
