//! API access tokens. They live in the read store's database but are not a projection: a rebuild
//! never touches them. Only the SHA-256 of a token is stored; tokens carry 256 random bits, so a
//! plain hash is enough (no password stretching needed).

use crate::read_store::ReadStore;
use crate::ProjectionError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use registry_app::Role;
use registry_domain::FamilyId;
use sha2::{Digest, Sha256};
use sqlx::Row;
use uuid::Uuid;

/// Every token starts with this, so a leaked one is easy to recognise (and to scan for).
pub const TOKEN_PREFIX: &str = "rgt_";

/// A stored access token (without the token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub family_id: Option<FamilyId>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The SHA-256 of a token, hex.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn parse_role(s: &str) -> Option<Role> {
    match s {
        "officer" => Some(Role::Officer),
        "auditor" => Some(Role::Auditor),
        "holder" => Some(Role::Holder),
        _ => None,
    }
}

/// The columns `id, name, role, family_id, created_at, revoked_at` as stored.
type RawToken = (
    String,
    String,
    String,
    Option<String>,
    String,
    Option<String>,
);

fn parse(row: &sqlx::any::AnyRow) -> Result<AccessToken, ProjectionError> {
    parse_raw((
        row.try_get("id")?,
        row.try_get("name")?,
        row.try_get("role")?,
        row.try_get("family_id")?,
        row.try_get("created_at")?,
        row.try_get("revoked_at")?,
    ))
}

fn parse_raw(
    (id, name, role, family, created, revoked): RawToken,
) -> Result<AccessToken, ProjectionError> {
    let bad = |what: &str| ProjectionError::Store(format!("access_tokens: bad {what}"));
    let time = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| bad("time"))
    };
    Ok(AccessToken {
        id: Uuid::parse_str(&id).map_err(|_| bad("id"))?,
        name,
        role: parse_role(&role).ok_or_else(|| bad("role"))?,
        family_id: family
            .map(|f| Uuid::parse_str(&f).map(FamilyId))
            .transpose()
            .map_err(|_| bad("family_id"))?,
        created_at: time(&created)?,
        revoked_at: revoked.as_deref().map(time).transpose()?,
    })
}

impl ReadStore {
    /// Creates a token and returns it with its record. The token is not stored: show it once.
    pub async fn create_access_token(
        &self,
        name: &str,
        role: Role,
        family_id: Option<FamilyId>,
        now: DateTime<Utc>,
    ) -> Result<(String, AccessToken), ProjectionError> {
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
        let record = AccessToken {
            id: Uuid::now_v7(),
            name: name.to_string(),
            role,
            family_id,
            created_at: now,
            revoked_at: None,
        };
        sqlx::query(
            "INSERT INTO access_tokens (id, name, role, family_id, token_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(record.id.to_string())
        .bind(name)
        .bind(role.as_str())
        .bind(family_id.map(|f| f.to_string()))
        .bind(token_hash(&token))
        .bind(now.to_rfc3339())
        .execute(self.pool())
        .await?;
        Ok((token, record))
    }

    /// The live (not revoked) token with this value, if any.
    pub async fn find_access_token(
        &self,
        token: &str,
    ) -> Result<Option<AccessToken>, ProjectionError> {
        let row = sqlx::query(
            "SELECT id, name, role, family_id, created_at, revoked_at FROM access_tokens \
             WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash(token))
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(parse).transpose()
    }

    pub async fn list_access_tokens(&self) -> Result<Vec<AccessToken>, ProjectionError> {
        let rows = sqlx::query(
            "SELECT id, name, role, family_id, created_at, revoked_at FROM access_tokens ORDER BY created_at, id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(parse).collect()
    }

    /// Revokes a token by id. Returns false if there is no such live token.
    pub async fn revoke_access_token(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, ProjectionError> {
        let done = sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now.to_rfc3339())
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
