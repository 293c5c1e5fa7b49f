//! Access tokens in the read store's database (they are not projected: a rebuild never touches
//! them).

use crate::PostgresReadStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use registry_access::{
    parse_person_row, parse_token_row, AccessToken, KnownPerson, TokenStore, TokenStoreError,
};
use sqlx::Row;
use uuid::Uuid;

fn error(e: sqlx::Error) -> TokenStoreError {
    TokenStoreError(e.to_string())
}

fn parse(row: &sqlx::postgres::PgRow) -> Result<AccessToken, TokenStoreError> {
    let id: String = row.try_get(0).map_err(error)?;
    let name: String = row.try_get(1).map_err(error)?;
    let role: String = row.try_get(2).map_err(error)?;
    let family: Option<String> = row.try_get(3).map_err(error)?;
    let office: Option<String> = row.try_get(4).map_err(error)?;
    let created: String = row.try_get(5).map_err(error)?;
    let revoked: Option<String> = row.try_get(6).map_err(error)?;
    parse_token_row(
        &id,
        name,
        &role,
        family.as_deref(),
        office,
        &created,
        revoked.as_deref(),
    )
}

const COLUMNS: &str = "id, name, role, family_id, office, created_at, revoked_at";

#[async_trait]
impl TokenStore for PostgresReadStore {
    async fn insert_token(&self, hash: &str, r: &AccessToken) -> Result<(), TokenStoreError> {
        sqlx::query(
            "INSERT INTO access_tokens (id, name, role, family_id, office, token_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.id.to_string())
        .bind(&r.name)
        .bind(r.role.as_str())
        .bind(r.family_id.map(|f| f.to_string()))
        .bind(&r.office)
        .bind(hash)
        .bind(r.created_at.to_rfc3339())
        .execute(self.pool())
        .await
        .map_err(error)?;
        Ok(())
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<AccessToken>, TokenStoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM access_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(hash)
        .fetch_optional(self.pool())
        .await
        .map_err(error)?;
        row.as_ref().map(parse).transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<AccessToken>, TokenStoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM access_tokens ORDER BY created_at, id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(error)?;
        rows.iter().map(parse).collect()
    }

    async fn tokens_by_id(&self, ids: &[Uuid]) -> Result<Vec<AccessToken>, TokenStoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM access_tokens WHERE id = ANY($1)"
        ))
        .bind(&ids)
        .fetch_all(self.pool())
        .await
        .map_err(error)?;
        rows.iter().map(parse).collect()
    }

    async fn revoke_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, TokenStoreError> {
        let done = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(at.to_rfc3339())
        .bind(id.to_string())
        .execute(self.pool())
        .await
        .map_err(error)?;
        Ok(done.rows_affected() == 1)
    }

    async fn remember_person(&self, person: &KnownPerson) -> Result<(), TokenStoreError> {
        sqlx::query(
            "INSERT INTO known_people (id, name, role, office, seen_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, role = excluded.role, \
             office = excluded.office, seen_at = excluded.seen_at",
        )
        .bind(person.id.to_string())
        .bind(&person.name)
        .bind(person.role.as_str())
        .bind(&person.office)
        .bind(person.seen_at.to_rfc3339())
        .execute(self.pool())
        .await
        .map_err(error)?;
        Ok(())
    }

    async fn people_by_id(&self, ids: &[Uuid]) -> Result<Vec<KnownPerson>, TokenStoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let rows = sqlx::query(
            "SELECT id, name, role, office, seen_at FROM known_people WHERE id = ANY($1)",
        )
        .bind(&ids)
        .fetch_all(self.pool())
        .await
        .map_err(error)?;
        rows.iter()
            .map(|r| {
                parse_person_row(
                    &r.try_get::<String, _>(0).map_err(error)?,
                    r.try_get(1).map_err(error)?,
                    &r.try_get::<String, _>(2).map_err(error)?,
                    r.try_get(3).map_err(error)?,
                    &r.try_get::<String, _>(4).map_err(error)?,
                )
            })
            .collect()
    }
}
