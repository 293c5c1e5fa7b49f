//! The rows of the projections, as plain values.

use chrono::{DateTime, NaiveDate, Utc};
use registry_domain::{CertificateId, CertificateState, Family, FamilyId};

/// One row of the certificate view: what a QR lookup resolves against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateRow {
    pub token_id: CertificateId,
    pub family_id: FamilyId,
    /// This token is the family's current certificate (not replaced).
    pub is_current: bool,
    pub certificate_number: String,
    pub serial: u32,
    /// `active`, `terminated`, `revoked` (as recorded) or `replaced`.
    pub status: String,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    /// The folded family (members emptied on replaced rows: an old QR discloses no one).
    pub family: Family,
    /// Revision and global position of the family's last event applied to this row.
    pub revision: u64,
    pub position: u64,
}

impl CertificateRow {
    /// The family's personal data was erased: a scan of this token finds nothing.
    pub fn is_erased(&self) -> bool {
        self.family.erased_on.is_some()
    }

    /// What the QR of this row shows on `today`.
    pub fn state_on(&self, today: NaiveDate) -> CertificateState {
        if self.is_current {
            self.family.state_on(today)
        } else {
            CertificateState::Replaced
        }
    }
}

/// A family as folded so far, with the revision and position of its last event: what a
/// projection folds the next events onto.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoldedFamily {
    pub family: Family,
    pub revision: u64,
    pub position: u64,
}

/// One event in a family's timeline: who, when and why. What the event recorded (its data, with
/// the family's personal fields) is not copied here: it is read from the event store, where it is
/// sealed at rest and reads as erased once the family's key is destroyed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryRow {
    pub position: u64,
    pub family_id: FamilyId,
    pub revision: u64,
    pub event_id: String,
    pub event_type: String,
    pub schema_version: u16,
    pub recorded_at: DateTime<Utc>,
    pub actor_id: String,
    pub actor_role: String,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    /// The reason code or text, for removals, terminations, revocations and reissues.
    pub reason: Option<String>,
    /// The decision (JSON), for events made by a decision.
    pub decision: Option<String>,
}
