//! Realistic event payloads: real domain events serialized the way the command path does.

use chrono::{NaiveDate, Utc};
use registry_app::{
    certificate_number, new_certificate_id, new_member_id, Actor, EventMetadata, Role,
};
use registry_domain::{
    Care, Decision, FamilyEvent, FamilyId, Member, MemberAdded, Relation, StatusGranted,
};
use registry_store::NewEvent;
use uuid::Uuid;

const LAST_NAMES: [&str; 8] = [
    "Кузнецова",
    "Иванова",
    "Смирнова",
    "Попова",
    "Соколова",
    "Лебедева",
    "Новикова",
    "Морозова",
];
const FIRST_NAMES: [&str; 8] = [
    "Елена",
    "Анна",
    "Мария",
    "Ольга",
    "Татьяна",
    "Наталья",
    "Ирина",
    "Екатерина",
];
const MIDDLE_NAMES: [&str; 4] = ["Сергеевна", "Александровна", "Викторовна", "Игоревна"];
const CHILD_NAMES: [&str; 8] = [
    "Артём",
    "Софья",
    "Лев",
    "Вера",
    "Мирон",
    "Глеб",
    "Ева",
    "Ярослава",
];

pub const POLICY: &str = "federal-2024";

/// A calendar date; the inputs are constants, so the fallback is never taken.
pub fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN)
}

/// The data of a `StatusGranted` with one parent (about 400 bytes of JSON, Cyrillic names).
pub fn status_granted(family_id: FamilyId, i: usize) -> String {
    let parent = Member {
        member_id: new_member_id(),
        last_name: LAST_NAMES[i % LAST_NAMES.len()].into(),
        first_name: FIRST_NAMES[(i / 8) % FIRST_NAMES.len()].into(),
        middle_name: Some(MIDDLE_NAMES[i % MIDDLE_NAMES.len()].into()),
        birth_date: date(
            1980 + (i % 15) as i32,
            1 + (i % 12) as u32,
            1 + (i % 28) as u32,
        ),
        relation: Relation::Parent,
        student_until: None,
        care: Care::Family,
        snils: None,
    };
    FamilyEvent::StatusGranted(StatusGranted {
        family_id,
        certificate_id: new_certificate_id(),
        certificate_number: certificate_number(family_id),
        certificate_serial: 1,
        decision: Decision {
            number: format!("Р-{}/2026", 100 + i % 9000),
            date: date(2026, 11, 24),
            office: None,
            term_until: None,
        },
        policy: POLICY.into(),
        members: vec![parent],
        valid_from: date(2026, 11, 24),
        valid_until: date(2030, 1, 14),
    })
    .to_json()
    .to_string()
}

/// The data of a `MemberAdded` of a child.
pub fn member_added(i: usize) -> String {
    FamilyEvent::MemberAdded(MemberAdded {
        member: child(i),
        decision: None,
        policy: POLICY.into(),
        valid_until: Some(date(2030, 1, 14)),
    })
    .to_json()
    .to_string()
}

/// A child member, distinct (by name and birth date) for each `i` below 1,000.
pub fn child(i: usize) -> Member {
    Member {
        member_id: new_member_id(),
        last_name: LAST_NAMES[i % LAST_NAMES.len()].into(),
        first_name: CHILD_NAMES[i % CHILD_NAMES.len()].into(),
        middle_name: None,
        birth_date: date(2012, 1, 1) + chrono::Days::new(97 * i as u64),
        relation: Relation::Child,
        student_until: None,
        care: Care::Family,
        snils: None,
    }
}

/// The metadata the command path writes for an officer's command.
pub fn metadata() -> String {
    serde_json::to_string(&EventMetadata {
        actor: Actor {
            id: "token-officer-1".into(),
            role: Role::Officer,
        },
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        idempotency_key: None,
    })
    .unwrap_or_default()
}

pub fn new_event(event_type: &str, data: String) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.into(),
        schema_version: FamilyEvent::SCHEMA_VERSION,
        data,
        metadata: metadata(),
        recorded_at: Utc::now(),
    }
}

/// One command's append to a new family stream: `(stream, event)`.
pub fn grant_append(i: usize) -> (String, NewEvent) {
    let family_id = FamilyId(Uuid::now_v7());
    let event = new_event("StatusGranted", status_granted(family_id, i));
    (family_id.stream_name(), event)
}
