//! The access record in the read store's file (not projected: a rebuild never touches it).

use crate::rows::backend;
use crate::SqliteReadStore;
use async_trait::async_trait;
use registry_access::record::parse_entry_row;
use registry_access::{AccessEntry, AccessRecord, AccessRecordError};
use registry_domain::FamilyId;
use uuid::Uuid;

const COLUMNS: &str = "at, family_id, actor_id, actor_name, actor_role, office, kind";

fn error(e: impl std::fmt::Display) -> AccessRecordError {
    AccessRecordError(e.to_string())
}

impl SqliteReadStore {
    async fn entries(
        &self,
        column: &'static str,
        key: String,
        limit: usize,
    ) -> Result<Vec<AccessEntry>, AccessRecordError> {
        self.read(move |conn| {
            let mut q = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM access_log WHERE {column} = ?1 ORDER BY seq DESC LIMIT ?2"
                ))
                .map_err(backend)?;
            let rows = q
                .query_map(rusqlite::params![key, limit as i64], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, String>(6)?,
                    ))
                })
                .map_err(backend)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
        })
        .await
        .map_err(error)?
        .into_iter()
        .map(|(at, family, actor, name, role, office, kind)| {
            parse_entry_row(&at, &family, &actor, name, &role, office, &kind)
        })
        .collect()
    }
}

#[async_trait]
impl AccessRecord for SqliteReadStore {
    async fn record(&self, entries: Vec<AccessEntry>) -> Result<(), AccessRecordError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            // Durable on commit: the read store's other writes can be replayed from the log, an
            // access record cannot (synchronous = FULL for this transaction's commit only).
            conn.execute_batch("PRAGMA synchronous = FULL;")
                .map_err(backend)?;
            let written = (|| {
                let tx = crate::begin_now(conn)?;
                {
                    let mut insert = tx
                        .prepare_cached(&format!(
                            "INSERT INTO access_log ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                        ))
                        .map_err(backend)?;
                    for e in &entries {
                        insert
                            .execute(rusqlite::params![
                                e.at.to_rfc3339(),
                                e.family_id.to_string(),
                                e.actor_id.to_string(),
                                e.actor_name,
                                e.actor_role.as_str(),
                                e.office,
                                e.kind.as_str()
                            ])
                            .map_err(backend)?;
                    }
                }
                tx.commit().map_err(backend)
            })();
            conn.execute_batch("PRAGMA synchronous = NORMAL;")
                .map_err(backend)?;
            written
        })
        .await
        .map_err(error)
    }

    async fn by_family(
        &self,
        family: FamilyId,
        limit: usize,
    ) -> Result<Vec<AccessEntry>, AccessRecordError> {
        self.entries("family_id", family.to_string(), limit).await
    }

    async fn by_actor(
        &self,
        actor: Uuid,
        limit: usize,
    ) -> Result<Vec<AccessEntry>, AccessRecordError> {
        self.entries("actor_id", actor.to_string(), limit).await
    }
}
