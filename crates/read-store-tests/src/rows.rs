//! Sample rows for the contract checks.

use chrono::{NaiveDate, TimeZone, Utc};
use registry_domain::{
    CertificateId, Decision, Family, FamilyId, Member, MemberId, Relation, Status,
};
use registry_read_store::{CertificateRow, HistoryRow, SearchKey};
use uuid::Uuid;

pub fn mother_born() -> NaiveDate {
    NaiveDate::from_ymd_opt(1986, 4, 12).unwrap()
}

/// A family numbered `n` whose mother has this surname.
pub fn family(n: u64, surname: &str, number: &str, decision: &str) -> Family {
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let child = |i: u128, born| Member {
        member_id: MemberId(Uuid::from_u128(u128::from(n) * 100 + i)),
        last_name: "Иванов".into(),
        first_name: "Пётр".into(),
        middle_name: None,
        birth_date: born,
        relation: Relation::Child,
        student_until: None,
        care: registry_domain::Care::Family,
        snils: None,
    };
    Family {
        family_id: FamilyId(Uuid::from_u128(u128::from(n))),
        status: Status::Active,
        certificate_id: CertificateId(Uuid::from_u128(0xCE00_0000 + u128::from(n))),
        certificate_number: number.into(),
        certificate_serial: 1,
        previous_certificate_ids: vec![],
        members: vec![
            Member {
                member_id: MemberId(Uuid::from_u128(u128::from(n) * 100)),
                last_name: surname.into(),
                first_name: "Ольга".into(),
                middle_name: Some("Игоревна".into()),
                birth_date: mother_born(),
                relation: Relation::Parent,
                student_until: None,
                care: registry_domain::Care::Family,
                snils: None,
            },
            child(1, day(2012, 1, 1)),
            child(2, day(2015, 1, 1)),
            child(3, day(2019, 1, 1)),
        ],
        valid_from: day(2026, 11, 20),
        valid_until: day(2030, 12, 31),
        term_until: None,
        policy: "moscow-2008".into(),
        decision: Decision {
            number: decision.into(),
            date: day(2026, 11, 20),
            office: Some("УСЗН ЦАО".into()),
            term_until: None,
        },
        issued_on: day(2026, 11, 20),
        ended_on: None,
        end_reason: None,
        decision_numbers: vec![decision.into()],
        erased_on: None,
    }
}

pub fn keys(f: &Family) -> Vec<SearchKey> {
    let mut keys = vec![
        SearchKey::CertificateNumber(f.certificate_number.clone()),
        SearchKey::DecisionNumber(f.decision.number.clone()),
    ];
    for m in &f.members {
        keys.push(SearchKey::Member {
            last_name: m.last_name.clone(),
            birth_date: m.birth_date,
        });
    }
    keys
}

pub fn certificate(f: &Family, position: u64, is_current: bool) -> CertificateRow {
    let mut family = f.clone();
    if !is_current {
        family.members.clear();
    }
    CertificateRow {
        token_id: f.certificate_id,
        family_id: f.family_id,
        is_current,
        certificate_number: f.certificate_number.clone(),
        serial: f.certificate_serial,
        status: if is_current { "active" } else { "replaced" }.into(),
        valid_from: f.valid_from,
        valid_until: f.valid_until,
        family,
        revision: position - 1,
        position,
    }
}

pub fn history(f: &Family, position: u64, revision: u64) -> HistoryRow {
    HistoryRow {
        position,
        family_id: f.family_id,
        revision,
        event_id: Uuid::from_u128(u128::from(position)).to_string(),
        event_type: "StatusGranted".into(),
        schema_version: 1,
        recorded_at: Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
        actor_id: "officer-1".into(),
        actor_role: "officer".into(),
        correlation_id: Some(Uuid::from_u128(1).to_string()),
        causation_id: None,
        reason: None,
        decision: Some("{\"number\":\"Р-1\"}".into()),
    }
}
