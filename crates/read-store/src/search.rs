//! Officer search: the keys a family is found by, and a page of hits.

use chrono::NaiveDate;

/// Hits per page.
pub const SEARCH_PAGE: usize = 20;

/// A key a family is found by. Values are normalized ([`SearchKey::value`]), so the search
/// compares them as stored.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SearchKey {
    CertificateNumber(String),
    /// A member (any member) by surname and birth date.
    Member {
        last_name: String,
        birth_date: NaiveDate,
    },
    /// Any decision recorded for the family.
    DecisionNumber(String),
    /// A member's СНИЛС in its printed form: how a person signed in through the city's identity
    /// provider finds their family. Never offered to officers' search (it would travel in URLs).
    Snils(String),
}

/// A surname as the search compares it: trimmed, lower case, `ё` as `е`.
pub fn normalize_name(name: &str) -> String {
    name.trim().to_lowercase().replace('ё', "е")
}

impl SearchKey {
    /// `certificate_number`, `member` or `decision_number`.
    pub fn kind(&self) -> &'static str {
        match self {
            SearchKey::CertificateNumber(_) => "certificate_number",
            SearchKey::Member { .. } => "member",
            SearchKey::DecisionNumber(_) => "decision_number",
            SearchKey::Snils(_) => "snils",
        }
    }

    /// The normalized value, as stored and looked up.
    pub fn value(&self) -> String {
        match self {
            SearchKey::CertificateNumber(n) => n.trim().to_uppercase(),
            SearchKey::Member {
                last_name,
                birth_date,
            } => format!("{}|{birth_date}", normalize_name(last_name)),
            SearchKey::DecisionNumber(n) => n.trim().to_lowercase(),
            SearchKey::Snils(n) => n.trim().to_string(),
        }
    }
}

/// A search: one key, and the page after `after` (the `position` of the last hit of the page
/// before).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Search {
    pub key: SearchKey,
    pub after: Option<u64>,
    pub limit: usize,
}

/// A page of hits, newest first; `next` when there may be more.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SearchPage {
    pub hits: Vec<crate::CertificateRow>,
    pub next: Option<u64>,
}

impl SearchPage {
    /// A page of at most `limit` hits out of `limit + 1` fetched; `next` when there were more.
    pub fn of_fetched(mut hits: Vec<crate::CertificateRow>, limit: usize) -> Self {
        let more = hits.len() > limit;
        hits.truncate(limit);
        let next = if more {
            hits.last().map(|h| h.position)
        } else {
            None
        };
        Self { hits, next }
    }
}
