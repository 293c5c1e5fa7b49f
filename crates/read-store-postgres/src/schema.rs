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

pub fn create_tables(projection: &str, suffix: &str) -> Result<Vec<String>, ReadStoreError> {
    Ok(match projection {
        CERTIFICATE_VIEW => vec![
            format!(
                "CREATE TABLE IF NOT EXISTS certificate_view{suffix} (
                    token_id           TEXT PRIMARY KEY,
                    family_id          TEXT NOT NULL,
                    is_current         BIGINT NOT NULL,
                    certificate_number TEXT NOT NULL,
                    serial             BIGINT NOT NULL,
                    status             TEXT NOT NULL,
                    valid_from         TEXT NOT NULL,
                    valid_until        TEXT NOT NULL,
                    family             TEXT NOT NULL,
                    revision           BIGINT NOT NULL,
                    position           BIGINT NOT NULL
                )"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS family_search{suffix} (
                    kind      TEXT NOT NULL,
                    value     TEXT NOT NULL,
                    family_id TEXT NOT NULL,
                    PRIMARY KEY (kind, value, family_id)
                )"
            ),
        ],
        FAMILY_HISTORY => vec![format!(
            "CREATE TABLE IF NOT EXISTS family_history{suffix} (
                position       BIGINT PRIMARY KEY,
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
                decision       TEXT,
                data           TEXT NOT NULL
            )"
        )],
        other => return Err(ReadStoreError::UnknownProjection(other.to_string())),
    })
}

/// The indexes a projection's writes need (a family's search keys are replaced by family): made
/// with the tables, on empty tables.
pub fn write_indexes(projection: &str, suffix: &str) -> Result<Vec<String>, ReadStoreError> {
    let tag = uuid::Uuid::new_v4().simple().to_string();
    Ok(match projection {
        CERTIFICATE_VIEW => vec![format!(
            "CREATE INDEX family_search_family_{tag} ON family_search{suffix} (family_id)"
        )],
        FAMILY_HISTORY => vec![],
        other => return Err(ReadStoreError::UnknownProjection(other.to_string())),
    })
}

/// The indexes only reads need: with a new projection's tables, or after a rebuild's rows.
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
