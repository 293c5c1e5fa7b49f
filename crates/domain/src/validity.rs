//! Why a certificate is valid until its date: which child, which age or study, or the decision's
//! term, in Russian for people («до 30.04.2032 — в этот день младший ребёнок, Олег, достигает
//! возраста 16 лет»). Derived from the family and the preset its events name; when that does not
//! give the recorded date (a preset this build does not know), it says the date was recorded by
//! the decision.

use crate::ids::MemberId;
use crate::member::Member;
use crate::policy::{add_years, EndsWith, Policy};
use crate::state::Family;
use chrono::{Days, NaiveDate};
use serde::Serialize;

/// Which child decides, as the preset words it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DecidingRole {
    Youngest,
    Eldest,
    /// The eldest of the `k` youngest counted children.
    EldestOfYoungest(u32),
}

/// What ends the status on its last day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ValidityBasis {
    /// The deciding child reaches the age limit on `birthday` (the day after `valid_until`).
    AgeLimit {
        role: DecidingRole,
        member_id: MemberId,
        first_name: String,
        age: u32,
        birthday: NaiveDate,
    },
    /// The deciding child's confirmed study ends on `until`.
    StudyEnds {
        role: DecidingRole,
        member_id: MemberId,
        first_name: String,
        until: NaiveDate,
    },
    /// The deciding child, still studying, reaches the age limit for students.
    StudyAgeLimit {
        role: DecidingRole,
        member_id: MemberId,
        first_name: String,
        age: u32,
        birthday: NaiveDate,
    },
    /// The decision set a shorter term.
    Term {
        decision_number: String,
        decision_date: NaiveDate,
    },
    /// The date was recorded by the decision under a rule this build cannot re-derive.
    Recorded {
        decision_number: String,
        decision_date: NaiveDate,
    },
}

/// The basis of a family's `valid_until` under `policy` (the preset its events name).
pub fn validity_basis(policy: &Policy, family: &Family) -> ValidityBasis {
    let recorded = || ValidityBasis::Recorded {
        decision_number: family.decision.number.clone(),
        decision_date: family.decision.date,
    };
    let Some((child, end)) = policy.deciding_child(&family.members) else {
        return recorded();
    };
    if let Some(term) = family.term_until {
        if term < end && term == family.valid_until {
            return ValidityBasis::Term {
                decision_number: family.decision.number.clone(),
                decision_date: family.decision.date,
            };
        }
    }
    if end != family.valid_until {
        return recorded();
    }
    let role = match policy.ends_with {
        EndsWith::Youngest => DecidingRole::Youngest,
        EndsWith::Eldest => DecidingRole::Eldest,
        EndsWith::KthYoungest => DecidingRole::EldestOfYoungest(policy.min_children),
    };
    child_basis(policy, child, end, role)
}

fn child_basis(
    policy: &Policy,
    child: &Member,
    end: NaiveDate,
    role: DecidingRole,
) -> ValidityBasis {
    let next = end.checked_add_days(Days::new(1)).unwrap_or(end);
    let member_id = child.member_id;
    let first_name = child.first_name.clone();
    if add_years(child.birth_date, policy.age_limit) == next {
        return ValidityBasis::AgeLimit {
            role,
            member_id,
            first_name,
            age: policy.age_limit,
            birthday: next,
        };
    }
    match &policy.study {
        Some(study) if add_years(child.birth_date, study.age_limit) == next => {
            ValidityBasis::StudyAgeLimit {
                role,
                member_id,
                first_name,
                age: study.age_limit,
                birthday: next,
            }
        }
        _ => ValidityBasis::StudyEnds {
            role,
            member_id,
            first_name,
            until: end,
        },
    }
}

fn ru(d: NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

fn role_ru(role: DecidingRole) -> String {
    match role {
        DecidingRole::Youngest => "младший ребёнок".into(),
        DecidingRole::Eldest => "старший ребёнок".into(),
        DecidingRole::EldestOfYoungest(k) => {
            let of = match k {
                2 => "двух".to_string(),
                3 => "трёх".to_string(),
                4 => "четырёх".to_string(),
                n => n.to_string(),
            };
            format!("старший из {of} младших детей")
        }
    }
}

fn decision_ru(number: &str, date: NaiveDate) -> String {
    format!("решением № {number} от {}", ru(date))
}

impl ValidityBasis {
    /// The basis as a person reads it, beginning with the day the status ends.
    pub fn russian(&self, valid_until: NaiveDate) -> String {
        match self {
            ValidityBasis::AgeLimit {
                role,
                first_name,
                age,
                birthday,
                ..
            } => format!(
                "до {} — в этот день {}, {first_name}, достигает возраста {age} лет",
                ru(*birthday),
                role_ru(*role)
            ),
            ValidityBasis::StudyAgeLimit {
                role,
                first_name,
                age,
                birthday,
                ..
            } => format!(
                "до {} — в этот день {}, {first_name}, достигает возраста {age} лет, \
                 предельного при обучении",
                ru(*birthday),
                role_ru(*role)
            ),
            ValidityBasis::StudyEnds {
                role,
                first_name,
                until,
                ..
            } => format!(
                "по {} включительно — {}, {first_name}: обучение подтверждено до {}",
                ru(valid_until),
                role_ru(*role),
                ru(*until)
            ),
            ValidityBasis::Term {
                decision_number,
                decision_date,
            } => format!(
                "по {} включительно — срок, установленный {}",
                ru(valid_until),
                decision_ru(decision_number, *decision_date)
            ),
            ValidityBasis::Recorded {
                decision_number,
                decision_date,
            } => format!(
                "по {} включительно — срок записан {}",
                ru(valid_until),
                decision_ru(decision_number, *decision_date)
            ),
        }
    }
}
