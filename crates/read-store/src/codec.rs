//! Rows as both databases store them: text and integers, the family as JSON. The backends bind
//! and read these columns in [`CERTIFICATE_COLUMNS`] and [`HISTORY_COLUMNS`] order; parsing and
//! encoding live here once.

use crate::{CertificateRow, HistoryRow, ReadStoreError};
use chrono::{DateTime, Utc};
use registry_domain::{CertificateId, FamilyId};
use uuid::Uuid;

pub const CERTIFICATE_COLUMNS: &str = "token_id, family_id, is_current, certificate_number, \
     serial, status, valid_from, valid_until, family, revision, position";
pub const HISTORY_COLUMNS: &str = "position, family_id, revision, event_id, event_type, \
     schema_version, recorded_at, actor_id, actor_role, correlation_id, causation_id, reason, \
     decision";

pub fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A certificate row's columns as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCertificate {
    pub token_id: String,
    pub family_id: String,
    pub is_current: i64,
    pub certificate_number: String,
    pub serial: i64,
    pub status: String,
    pub valid_from: String,
    pub valid_until: String,
    pub family: String,
    pub revision: i64,
    pub position: i64,
}

fn corrupt(table: &str, what: &str) -> ReadStoreError {
    ReadStoreError::Corrupt(format!("{table}: bad {what}"))
}

impl StoredCertificate {
    pub fn encode(row: &CertificateRow) -> Result<Self, ReadStoreError> {
        Ok(Self {
            token_id: row.token_id.to_string(),
            family_id: row.family_id.to_string(),
            is_current: i64::from(row.is_current),
            certificate_number: row.certificate_number.clone(),
            serial: i64::from(row.serial),
            status: row.status.clone(),
            valid_from: row.valid_from.to_string(),
            valid_until: row.valid_until.to_string(),
            family: serde_json::to_string(&row.family)
                .map_err(|e| ReadStoreError::Backend(e.to_string()))?,
            revision: to_i64(row.revision),
            position: to_i64(row.position),
        })
    }

    pub fn parse(self) -> Result<CertificateRow, ReadStoreError> {
        let bad = |what: &str| corrupt("certificate_view", what);
        Ok(CertificateRow {
            token_id: CertificateId(Uuid::parse_str(&self.token_id).map_err(|_| bad("token_id"))?),
            family_id: FamilyId(Uuid::parse_str(&self.family_id).map_err(|_| bad("family_id"))?),
            is_current: self.is_current != 0,
            certificate_number: self.certificate_number,
            serial: u32::try_from(self.serial).map_err(|_| bad("serial"))?,
            status: self.status,
            valid_from: self.valid_from.parse().map_err(|_| bad("valid_from"))?,
            valid_until: self.valid_until.parse().map_err(|_| bad("valid_until"))?,
            family: serde_json::from_str(&self.family).map_err(|_| bad("family"))?,
            revision: to_u64(self.revision),
            position: to_u64(self.position),
        })
    }
}

/// A history row's columns as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredHistory {
    pub position: i64,
    pub family_id: String,
    pub revision: i64,
    pub event_id: String,
    pub event_type: String,
    pub schema_version: i64,
    pub recorded_at: String,
    pub actor_id: String,
    pub actor_role: String,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub reason: Option<String>,
    pub decision: Option<String>,
}

/// A time as the history stores it.
pub fn stored_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl StoredHistory {
    pub fn encode(r: &HistoryRow) -> Self {
        Self {
            position: to_i64(r.position),
            family_id: r.family_id.to_string(),
            revision: to_i64(r.revision),
            event_id: r.event_id.clone(),
            event_type: r.event_type.clone(),
            schema_version: i64::from(r.schema_version),
            recorded_at: stored_time(&r.recorded_at),
            actor_id: r.actor_id.clone(),
            actor_role: r.actor_role.clone(),
            correlation_id: r.correlation_id.clone(),
            causation_id: r.causation_id.clone(),
            reason: r.reason.clone(),
            decision: r.decision.clone(),
        }
    }

    pub fn parse(self) -> Result<HistoryRow, ReadStoreError> {
        let bad = |what: &str| corrupt("family_history", what);
        Ok(HistoryRow {
            position: to_u64(self.position),
            family_id: FamilyId(Uuid::parse_str(&self.family_id).map_err(|_| bad("family_id"))?),
            revision: to_u64(self.revision),
            event_id: self.event_id,
            event_type: self.event_type,
            schema_version: u16::try_from(self.schema_version)
                .map_err(|_| bad("schema_version"))?,
            recorded_at: DateTime::parse_from_rfc3339(&self.recorded_at)
                .map_err(|_| bad("recorded_at"))?
                .with_timezone(&Utc),
            actor_id: self.actor_id,
            actor_role: self.actor_role,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            reason: self.reason,
            decision: self.decision,
        })
    }
}
