//! Who may do what: the roles, and the API access tokens that carry one.
//!
//! Why a crate of its own: access tokens are configuration of who may act, not data derived from
//! events, so they live apart from the projections (a rebuild never touches them). The tokens'
//! store is a small trait; each read-store backend implements it in the same database, and only
//! the binary picks one. Only a SHA-256 of a token is stored: tokens carry 256 random bits, so a
//! plain hash is enough (no password stretching needed).

pub mod record;
pub mod session;

pub use record::{AccessEntry, AccessKind, AccessRecord, AccessRecordError, ACCESS_PAGE};
pub use session::{MemorySessions, ProviderSignIn, Session, SessionStore};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use registry_domain::FamilyId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The role a caller acts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Officer,
    Auditor,
    Holder,
    /// The registry itself (the demo data at first start, migrations).
    System,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Auditor => "auditor",
            Role::Holder => "holder",
            Role::System => "system",
        }
    }

    /// The roles a token can carry, by name.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "officer" => Some(Role::Officer),
            "auditor" => Some(Role::Auditor),
            "holder" => Some(Role::Holder),
            _ => None,
        }
    }
}

/// Every token starts with this, so a leaked one is easy to recognise (and to scan for).
pub const TOKEN_PREFIX: &str = "rgt_";

/// A stored access token (without the token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessToken {
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub family_id: Option<FamilyId>,
    /// The office an officer or auditor works in, when the token names one: the access record
    /// shows it.
    pub office: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// The SHA-256 of a token, hex: what the store keeps.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A new token (shown once) and its record.
pub fn new_token(
    name: &str,
    role: Role,
    family_id: Option<FamilyId>,
    office: Option<&str>,
    now: DateTime<Utc>,
) -> (String, AccessToken) {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret));
    let record = AccessToken {
        id: Uuid::now_v7(),
        name: name.to_string(),
        role,
        family_id,
        office: office.map(str::to_string),
        created_at: now,
        revoked_at: None,
    };
    (token, record)
}

/// An official who signed in through the identity provider, as the history names them (a token's
/// holder is named by the token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownPerson {
    /// The actor id their commands carry (derived from the provider's issuer and subject).
    pub id: Uuid,
    pub name: String,
    pub role: Role,
    pub office: Option<String>,
    /// Their latest sign-in.
    pub seen_at: DateTime<Utc>,
}

/// The token store failed.
#[derive(Debug, thiserror::Error)]
#[error("access tokens: {0}")]
pub struct TokenStoreError(pub String);

/// Where access tokens are kept (hashed).
#[async_trait]
pub trait TokenStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a token's hash and record.
    async fn insert_token(&self, hash: &str, record: &AccessToken) -> Result<(), TokenStoreError>;

    /// The live (not revoked) token with this hash, if any.
    async fn token_by_hash(&self, hash: &str) -> Result<Option<AccessToken>, TokenStoreError>;

    /// Every token, oldest first.
    async fn list_tokens(&self) -> Result<Vec<AccessToken>, TokenStoreError>;

    /// The tokens with these ids, revoked ones included (a history names every actor), in no
    /// particular order; unknown ids are left out.
    async fn tokens_by_id(&self, ids: &[Uuid]) -> Result<Vec<AccessToken>, TokenStoreError>;

    /// Revokes a live token; `false` when there is no such live token.
    async fn revoke_token(&self, id: Uuid, at: DateTime<Utc>) -> Result<bool, TokenStoreError>;

    /// Keeps (or updates, on a later sign-in) who an official signed in through the provider is.
    async fn remember_person(&self, person: &KnownPerson) -> Result<(), TokenStoreError>;

    /// The people with these ids, in no particular order; unknown ids are left out.
    async fn people_by_id(&self, ids: &[Uuid]) -> Result<Vec<KnownPerson>, TokenStoreError>;
}

/// A stored person's row back into a [`KnownPerson`].
pub fn parse_person_row(
    id: &str,
    name: String,
    role: &str,
    office: Option<String>,
    seen_at: &str,
) -> Result<KnownPerson, TokenStoreError> {
    let bad = |what: &str| TokenStoreError(format!("a stored person has a bad {what}"));
    Ok(KnownPerson {
        id: Uuid::parse_str(id).map_err(|_| bad("id"))?,
        name,
        role: Role::parse(role).ok_or_else(|| bad("role"))?,
        office,
        seen_at: DateTime::parse_from_rfc3339(seen_at)
            .map_err(|_| bad("time"))?
            .with_timezone(&Utc),
    })
}

/// The calls every caller makes, over any [`TokenStore`].
#[async_trait]
pub trait TokenStoreExt: TokenStore {
    /// Creates a token and returns it with its record. The token is not stored: show it once.
    async fn create_access_token(
        &self,
        name: &str,
        role: Role,
        family_id: Option<FamilyId>,
        office: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(String, AccessToken), TokenStoreError> {
        let (token, record) = new_token(name, role, family_id, office, now);
        self.insert_token(&token_hash(&token), &record).await?;
        Ok((token, record))
    }

    /// The live token with this value, if any.
    async fn find_access_token(&self, token: &str) -> Result<Option<AccessToken>, TokenStoreError> {
        self.token_by_hash(&token_hash(token)).await
    }
}

impl<T: TokenStore + ?Sized> TokenStoreExt for T {}

/// Parses a stored row `(id, name, role, family_id, office, created_at, revoked_at)`.
pub fn parse_token_row(
    id: &str,
    name: String,
    role: &str,
    family: Option<&str>,
    office: Option<String>,
    created: &str,
    revoked: Option<&str>,
) -> Result<AccessToken, TokenStoreError> {
    let bad = |what: &str| TokenStoreError(format!("bad {what} in a stored token"));
    let time = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| bad("time"))
    };
    Ok(AccessToken {
        id: Uuid::parse_str(id).map_err(|_| bad("id"))?,
        name,
        role: Role::parse(role).ok_or_else(|| bad("role"))?,
        family_id: family
            .map(|f| Uuid::parse_str(f).map(FamilyId))
            .transpose()
            .map_err(|_| bad("family_id"))?,
        office,
        created_at: time(created)?,
        revoked_at: revoked.map(time).transpose()?,
    })
}
