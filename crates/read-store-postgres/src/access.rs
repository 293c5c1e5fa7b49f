//! The access record in the read store's database (not projected: a rebuild never touches it).

use crate::PostgresReadStore;
use async_trait::async_trait;
use registry_access::record::parse_entry_row;
use registry_access::{AccessEntry, AccessRecord, AccessRecordError};
use registry_domain::FamilyId;
use sqlx::Row;
use uuid::Uuid;

const COLUMNS: &str = "at, family_id, actor_id, actor_name, actor_role, office, kind";

fn error(e: sqlx::Error) -> AccessRecordError {
    AccessRecordError(e.to_string())
}

impl PostgresReadStore {
    async fn entries(
        &self,
        column: &str,
        key: String,
        limit: usize,
    ) -> Result<Vec<AccessEntry>, AccessRecordError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM access_log WHERE {column} = $1 ORDER BY seq DESC LIMIT $2"
        ))
        .bind(key)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(error)?;
        rows.iter()
            .map(|r| {
                parse_entry_row(
                    &r.try_get::<String, _>(0).map_err(error)?,
                    &r.try_get::<String, _>(1).map_err(error)?,
                    &r.try_get::<String, _>(2).map_err(error)?,
                    r.try_get(3).map_err(error)?,
                    &r.try_get::<String, _>(4).map_err(error)?,
                    r.try_get(5).map_err(error)?,
                    &r.try_get::<String, _>(6).map_err(error)?,
                )
            })
            .collect()
    }
}

#[async_trait]
impl AccessRecord for PostgresReadStore {
    async fn record(&self, entries: Vec<AccessEntry>) -> Result<(), AccessRecordError> {
        if entries.is_empty() {
            return Ok(());
        }
        // One transaction; PostgreSQL's commit is durable (synchronous_commit on by default).
        let mut q = sqlx::QueryBuilder::new(format!("INSERT INTO access_log ({COLUMNS}) "));
        q.push_values(&entries, |mut b, e| {
            b.push_bind(e.at.to_rfc3339())
                .push_bind(e.family_id.to_string())
                .push_bind(e.actor_id.to_string())
                .push_bind(&e.actor_name)
                .push_bind(e.actor_role.as_str())
                .push_bind(&e.office)
                .push_bind(e.kind.as_str());
        });
        q.build().execute(&self.pool).await.map_err(error)?;
        Ok(())
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
