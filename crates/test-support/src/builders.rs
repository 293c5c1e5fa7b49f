//! Builders shared by the suites that need a family: dates, members, decisions, a grant.

use chrono::NaiveDate;
use registry_app::{certificate_number, new_certificate_id, new_member_id};
use registry_domain::{Care, Command, Decision, FamilyId, Member, Relation};

/// A date written `YYYY-MM-DD`.
#[allow(clippy::unwrap_used)]
pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

/// A member of the Sokolov family with a fresh id.
pub fn person(first: &str, born: &str, relation: Relation) -> Member {
    Member {
        member_id: new_member_id(),
        last_name: "Соколова".into(),
        first_name: first.into(),
        middle_name: Some("Андреевна".into()),
        birth_date: date(born),
        relation,
        student_until: None,
        care: Care::Family,
        snils: None,
    }
}

/// A decision without an office or a term.
pub fn decision(number: &str, on: &str) -> Decision {
    Decision {
        number: number.into(),
        date: date(on),
        office: None,
        term_until: None,
    }
}

/// A grant of `members` by `decision`.
pub fn grant_of(family_id: FamilyId, decision: Decision, members: Vec<Member>) -> Command {
    Command::Grant {
        decision,
        members,
        valid_from: None,
        certificate_number: certificate_number(family_id),
        certificate_id: new_certificate_id(),
    }
}

/// A grant on 2026-11-24 of a mother and three children (2009-02-10, 2013-06-20, 2018-10-01).
pub fn grant(family_id: FamilyId) -> Command {
    grant_of(
        family_id,
        decision("Р-1", "2026-11-24"),
        vec![
            person("Ирина", "1987-03-03", Relation::Parent),
            person("Максим", "2009-02-10", Relation::Child),
            person("Дарья", "2013-06-20", Relation::Child),
            person("Тимур", "2018-10-01", Relation::Child),
        ],
    )
}
