//! The access record: who read a family's personal data, when, and what they read (never the
//! data itself). Append-only: the trait has no call that changes or removes an entry, and each
//! backend refuses `UPDATE` and `DELETE` on its table.

use crate::Role;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use registry_domain::FamilyId;
use uuid::Uuid;

/// What was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// The family view (`GET /api/v1/families/{id}`, the console's family page).
    FamilyView,
    /// The family view at an earlier instant (`?as_of=`).
    FamilyAsOf,
    /// The timeline (`…/history`, the console's history and its exports).
    History,
    /// The certificate PDF an official downloaded.
    Pdf,
    /// The family appeared, named, in a search result.
    SearchResult,
}

impl AccessKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            AccessKind::FamilyView => "family_view",
            AccessKind::FamilyAsOf => "family_as_of",
            AccessKind::History => "history",
            AccessKind::Pdf => "pdf",
            AccessKind::SearchResult => "search_result",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            AccessKind::FamilyView,
            AccessKind::FamilyAsOf,
            AccessKind::History,
            AccessKind::Pdf,
            AccessKind::SearchResult,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }

    /// In Russian, for the family's page.
    pub fn russian(&self) -> &'static str {
        match self {
            AccessKind::FamilyView => "сведения о семье",
            AccessKind::FamilyAsOf => "сведения о семье на прошлую дату",
            AccessKind::History => "история изменений",
            AccessKind::Pdf => "удостоверение (PDF)",
            AccessKind::SearchResult => "результат поиска",
        }
    }
}

/// One read of one family's personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessEntry {
    pub at: DateTime<Utc>,
    pub family_id: FamilyId,
    /// The access token (or the token behind a console session) that read.
    pub actor_id: Uuid,
    pub actor_name: String,
    pub actor_role: Role,
    pub office: Option<String>,
    pub kind: AccessKind,
}

#[derive(Debug, thiserror::Error)]
#[error("access record: {0}")]
pub struct AccessRecordError(pub String);

/// Entries one answer lists at most, newest first.
pub const ACCESS_PAGE: usize = 200;

/// The access record. Backends: the read stores (SQLite, PostgreSQL), each durable on commit.
#[async_trait]
pub trait AccessRecord: Send + Sync + std::fmt::Debug + 'static {
    /// Records entries, durably, before the read they describe is answered.
    async fn record(&self, entries: Vec<AccessEntry>) -> Result<(), AccessRecordError>;
    /// A family's entries, newest first, at most `limit`.
    async fn by_family(
        &self,
        family: FamilyId,
        limit: usize,
    ) -> Result<Vec<AccessEntry>, AccessRecordError>;
    /// One actor's entries, newest first, at most `limit`.
    async fn by_actor(
        &self,
        actor: Uuid,
        limit: usize,
    ) -> Result<Vec<AccessEntry>, AccessRecordError>;
}

/// An entry from its stored columns (`at` RFC 3339, ids as text), as both backends store it.
#[allow(clippy::too_many_arguments)]
pub fn parse_entry_row(
    at: &str,
    family_id: &str,
    actor_id: &str,
    actor_name: String,
    actor_role: &str,
    office: Option<String>,
    kind: &str,
) -> Result<AccessEntry, AccessRecordError> {
    let bad = |what: &str| AccessRecordError(format!("a stored entry has a bad {what}"));
    Ok(AccessEntry {
        at: DateTime::parse_from_rfc3339(at)
            .map_err(|_| bad("time"))?
            .with_timezone(&Utc),
        family_id: FamilyId(family_id.parse().map_err(|_| bad("family id"))?),
        actor_id: actor_id.parse().map_err(|_| bad("actor id"))?,
        actor_name,
        actor_role: match actor_role {
            "system" => Role::System,
            other => Role::parse(other).ok_or_else(|| bad("role"))?,
        },
        office,
        kind: AccessKind::parse(kind).ok_or_else(|| bad("kind"))?,
    })
}
