use crate::event::FamilyEvent;
use crate::ids::{CertificateId, FamilyId};
use crate::member::{Decision, Member};
use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// The lifecycle of a family's status as recorded. Expiry is not a recorded status: it is computed
/// from `valid_until` and today's date when someone looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Terminated,
    Revoked,
}

/// What a certificate shows when looked at on a given day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateState {
    Active,
    Expired,
    Terminated,
    Revoked,
    /// The QR of a certificate that was reissued.
    Replaced,
    /// An active status whose first day (`valid_from`) is still to come.
    NotYetValid,
}

impl CertificateState {
    pub fn as_str(&self) -> &'static str {
        match self {
            CertificateState::Active => "active",
            CertificateState::Expired => "expired",
            CertificateState::Terminated => "terminated",
            CertificateState::Revoked => "revoked",
            CertificateState::Replaced => "replaced",
            CertificateState::NotYetValid => "not_yet_valid",
        }
    }

    pub fn is_valid(&self) -> bool {
        *self == CertificateState::Active
    }
}

/// A family's current state, folded from its events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Family {
    pub family_id: FamilyId,
    pub status: Status,
    pub certificate_id: CertificateId,
    pub certificate_number: String,
    pub certificate_serial: u32,
    #[serde(default)]
    pub previous_certificate_ids: Vec<CertificateId>,
    pub members: Vec<Member>,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    /// The current decision's term cap, if it set one.
    #[serde(default)]
    pub term_until: Option<NaiveDate>,
    /// The policy of the latest derivation.
    pub policy: String,
    pub decision: Decision,
    /// The issue date of the current certificate (the grant's decision date, or the reissue).
    pub issued_on: NaiveDate,
    #[serde(default)]
    pub ended_on: Option<NaiveDate>,
    #[serde(default)]
    pub end_reason: Option<String>,
    /// The numbers of every decision recorded for the family, oldest first (officers search by
    /// them).
    #[serde(default)]
    pub decision_numbers: Vec<String>,
    /// The day its personal data was erased: every member's personal fields read as erased, and
    /// its QR codes are no longer in the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_on: Option<NaiveDate>,
}

impl Family {
    /// What the current certificate shows on `today` (Moscow date).
    pub fn state_on(&self, today: NaiveDate) -> CertificateState {
        match self.status {
            Status::Revoked => CertificateState::Revoked,
            Status::Terminated => CertificateState::Terminated,
            Status::Active if today > self.valid_until => CertificateState::Expired,
            Status::Active if today < self.valid_from => CertificateState::NotYetValid,
            Status::Active => CertificateState::Active,
        }
    }

    pub fn member(&self, id: crate::ids::MemberId) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == id)
    }
}

/// Applies one event. Never fails and never panics: an event that does not fit the state (which
/// `decide` never produces) leaves the state unchanged.
pub fn evolve(state: Option<Family>, event: &FamilyEvent) -> Option<Family> {
    let Some(mut family) = state else {
        return match event {
            FamilyEvent::StatusGranted(e) => Some(Family {
                family_id: e.family_id,
                status: Status::Active,
                certificate_id: e.certificate_id,
                certificate_number: e.certificate_number.clone(),
                certificate_serial: e.certificate_serial,
                previous_certificate_ids: Vec::new(),
                members: e.members.clone(),
                valid_from: e.valid_from,
                valid_until: e.valid_until,
                term_until: e.decision.term_until,
                policy: e.policy.clone(),
                decision: e.decision.clone(),
                issued_on: e.decision.date,
                ended_on: None,
                end_reason: None,
                decision_numbers: vec![e.decision.number.clone()],
                erased_on: None,
            }),
            _ => None,
        };
    };
    match event {
        FamilyEvent::StatusGranted(_) => {}
        FamilyEvent::StatusRenewed(e) => {
            for c in &e.student_confirmations {
                if let Some(m) = family
                    .members
                    .iter_mut()
                    .find(|m| m.member_id == c.member_id)
                {
                    m.student_until = Some(c.student_until);
                }
            }
            family.status = Status::Active;
            family.valid_until = e.valid_until;
            family.term_until = e.decision.term_until;
            family.decision_numbers.push(e.decision.number.clone());
            family.decision = e.decision.clone();
            family.policy.clone_from(&e.policy);
            family.ended_on = None;
            family.end_reason = None;
        }
        FamilyEvent::MemberAdded(e) => {
            family.members.push(e.member.clone());
            if let Some(d) = &e.decision {
                family.decision_numbers.push(d.number.clone());
            }
            set_valid_until(&mut family, e.valid_until, &e.policy);
        }
        FamilyEvent::MemberRemoved(e) => {
            family.members.retain(|m| m.member_id != e.member_id);
            set_valid_until(&mut family, e.valid_until, &e.policy);
        }
        FamilyEvent::MemberDetailsCorrected(e) => {
            if let Some(m) = family
                .members
                .iter_mut()
                .find(|m| m.member_id == e.member_id)
            {
                *m = e.changes.apply_to(m);
            }
            set_valid_until(&mut family, e.valid_until, &e.policy);
        }
        FamilyEvent::StatusTerminated(e) => {
            family.status = Status::Terminated;
            let last_day = e
                .effective_date
                .checked_sub_days(Days::new(1))
                .unwrap_or(e.effective_date);
            family.valid_until = family.valid_until.min(last_day);
            family.ended_on = Some(e.effective_date);
            family.end_reason = Some("not_enough_children".into());
        }
        FamilyEvent::StatusRevoked(e) => {
            if let Some(d) = &e.decision {
                family.decision_numbers.push(d.number.clone());
            }
            family.status = Status::Revoked;
            family.ended_on = Some(e.effective_date);
            family.end_reason = Some(e.reason.clone());
        }
        FamilyEvent::CertificateReissued(e) => {
            let old = std::mem::replace(&mut family.certificate_id, e.certificate_id);
            family.previous_certificate_ids.push(old);
            family.certificate_serial = e.certificate_serial;
            family.issued_on = e.issued_on;
        }
        FamilyEvent::PersonalDataErased(e) => {
            family.erased_on = Some(e.erased_on);
            family.members = family.members.iter().map(Member::erased).collect();
            family.decision_numbers.push(e.decision.number.clone());
        }
    }
    Some(family)
}

fn set_valid_until(family: &mut Family, valid_until: Option<NaiveDate>, policy: &str) {
    if let Some(v) = valid_until {
        family.valid_until = v;
        if family.policy != policy {
            family.policy = policy.to_string();
        }
    }
}

/// Folds a sequence of events from the empty state.
pub fn fold<'a>(events: impl IntoIterator<Item = &'a FamilyEvent>) -> Option<Family> {
    events.into_iter().fold(None, evolve)
}
