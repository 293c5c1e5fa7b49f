//! Access tokens in the read store's file (they are not projected: a rebuild never touches them).

use crate::rows::backend;
use crate::SqliteReadStore;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use registry_access::{
    parse_person_row, parse_token_row, AccessToken, KnownPerson, TokenStore, TokenStoreError,
};
use registry_read_store::ReadStoreError;
use uuid::Uuid;

fn token_error(e: ReadStoreError) -> TokenStoreError {
    TokenStoreError(e.to_string())
}

fn parse(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<AccessToken, TokenStoreError>> {
    let (id, name, role, family, office, created, revoked): (
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        String,
        Option<String>,
    ) = (
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    );
    Ok(parse_token_row(
        &id,
        name,
        &role,
        family.as_deref(),
        office,
        &created,
        revoked.as_deref(),
    ))
}

const COLUMNS: &str = "id, name, role, family_id, office, created_at, revoked_at";

#[async_trait]
impl TokenStore for SqliteReadStore {
    async fn insert_token(&self, hash: &str, record: &AccessToken) -> Result<(), TokenStoreError> {
        let (hash, r) = (hash.to_string(), record.clone());
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO access_tokens (id, name, role, family_id, office, token_hash, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    r.id.to_string(),
                    r.name,
                    r.role.as_str(),
                    r.family_id.map(|f| f.to_string()),
                    r.office,
                    hash,
                    r.created_at.to_rfc3339()
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
        .map_err(token_error)
    }

    async fn token_by_hash(&self, hash: &str) -> Result<Option<AccessToken>, TokenStoreError> {
        // Every authenticated request asks: on this thread.
        self.read_now(|conn| {
            let mut q = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM access_tokens WHERE token_hash = ?1 AND revoked_at IS NULL"
                ))
                .map_err(backend)?;
            let mut rows = q.query([hash]).map_err(backend)?;
            match rows.next().map_err(backend)? {
                Some(row) => Ok(Some(parse(row).map_err(backend)?)),
                None => Ok(None),
            }
        })
        .map_err(token_error)?
        .transpose()
    }

    async fn list_tokens(&self) -> Result<Vec<AccessToken>, TokenStoreError> {
        let parsed = self
            .read(|conn| {
                let mut q = conn
                    .prepare(&format!(
                        "SELECT {COLUMNS} FROM access_tokens ORDER BY created_at, id"
                    ))
                    .map_err(backend)?;
                let rows = q.query_map([], parse).map_err(backend)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(backend)
            })
            .await
            .map_err(token_error)?;
        parsed.into_iter().collect()
    }

    async fn tokens_by_id(&self, ids: &[Uuid]) -> Result<Vec<AccessToken>, TokenStoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // Point lookups by the primary key, on this thread.
        let parsed = self
            .read_now(|conn| {
                let mut q = conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM access_tokens WHERE id = ?1"
                    ))
                    .map_err(backend)?;
                let mut out = Vec::new();
                for id in ids {
                    let mut rows = q.query_map([id.to_string()], parse).map_err(backend)?;
                    if let Some(row) = rows.next() {
                        out.push(row.map_err(backend)?);
                    }
                }
                Ok(out)
            })
            .map_err(token_error)?;
        parsed.into_iter().collect()
    }

    async fn revoke_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, TokenStoreError> {
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE access_tokens SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
                    rusqlite::params![at.to_rfc3339(), id.to_string()],
                )
                .map_err(backend)?;
            Ok(n == 1)
        })
        .await
        .map_err(token_error)
    }

    async fn remember_person(&self, person: &KnownPerson) -> Result<(), TokenStoreError> {
        let p = person.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO known_people (id, name, role, office, seen_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                 role = excluded.role, office = excluded.office, seen_at = excluded.seen_at",
                rusqlite::params![
                    p.id.to_string(),
                    p.name,
                    p.role.as_str(),
                    p.office,
                    p.seen_at.to_rfc3339()
                ],
            )
            .map_err(backend)
        })
        .await
        .map_err(token_error)?;
        Ok(())
    }

    async fn people_by_id(&self, ids: &[Uuid]) -> Result<Vec<KnownPerson>, TokenStoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = self
            .read_now(|conn| {
                let mut q = conn
                    .prepare_cached(
                        "SELECT id, name, role, office, seen_at FROM known_people WHERE id = ?1",
                    )
                    .map_err(backend)?;
                let mut out = Vec::new();
                for id in ids {
                    let mut rows = q
                        .query_map([id.to_string()], |r| {
                            Ok((
                                r.get::<_, String>(0)?,
                                r.get::<_, String>(1)?,
                                r.get::<_, String>(2)?,
                                r.get::<_, Option<String>>(3)?,
                                r.get::<_, String>(4)?,
                            ))
                        })
                        .map_err(backend)?;
                    if let Some(row) = rows.next() {
                        out.push(row.map_err(backend)?);
                    }
                }
                Ok(out)
            })
            .map_err(token_error)?;
        rows.into_iter()
            .map(|(id, name, role, office, seen)| parse_person_row(&id, name, &role, office, &seen))
            .collect()
    }
}
