//! Realistic families and their commands, decided by the domain itself (`decide` + `evolve`), so
//! the events a benchmark writes are exactly what the command path would write: grants of two
//! parents and three children, then added children, corrected names and renewals.

use crate::payload::date;
use anyhow::{Context, Result};
use chrono::{Days, NaiveDate, TimeZone, Utc};
use registry_app::{
    certificate_number, new_certificate_id, new_member_id, Actor, EventMetadata, Role,
};
use registry_domain::{
    decide, evolve, Care, Command, DecideContext, Decision, Family, FamilyId, Member,
    MemberChanges, Policy, Relation, StudentConfirmation,
};
use registry_store::NewEvent;
use uuid::Uuid;

const SURNAMES: [(&str, &str); 12] = [
    ("Кузнецов", "Кузнецова"),
    ("Иванов", "Иванова"),
    ("Смирнов", "Смирнова"),
    ("Попов", "Попова"),
    ("Соколов", "Соколова"),
    ("Лебедев", "Лебедева"),
    ("Новиков", "Новикова"),
    ("Морозов", "Морозова"),
    ("Волков", "Волкова"),
    ("Фёдоров", "Фёдорова"),
    ("Михайлов", "Михайлова"),
    ("Егоров", "Егорова"),
];
const MOTHERS: [&str; 8] = [
    "Елена",
    "Анна",
    "Мария",
    "Ольга",
    "Татьяна",
    "Наталья",
    "Ирина",
    "Екатерина",
];
const FATHERS: [(&str, &str, &str); 8] = [
    ("Дмитрий", "Дмитриевич", "Дмитриевна"),
    ("Алексей", "Алексеевич", "Алексеевна"),
    ("Сергей", "Сергеевич", "Сергеевна"),
    ("Андрей", "Андреевич", "Андреевна"),
    ("Михаил", "Михайлович", "Михайловна"),
    ("Игорь", "Игоревич", "Игоревна"),
    ("Олег", "Олегович", "Олеговна"),
    ("Владимир", "Владимирович", "Владимировна"),
];
const BOYS: [&str; 8] = [
    "Артём",
    "Лев",
    "Мирон",
    "Глеб",
    "Марк",
    "Тимофей",
    "Матвей",
    "Иван",
];
const GIRLS: [&str; 8] = [
    "Софья",
    "Вера",
    "Ева",
    "Ярослава",
    "Алиса",
    "Полина",
    "Василиса",
    "Милана",
];
const PATRONYMICS: [&str; 4] = ["Сергеевна", "Александровна", "Викторовна", "Игоревна"];
const OFFICES: [&str; 4] = [
    "УСЗН района Марьино",
    "УСЗН района Хамовники",
    "УСЗН района Митино",
    "УСЗН Басманного района",
];

/// The day the benchmarks decide on (Moscow date), and the instant recorded in their events.
pub fn today() -> NaiveDate {
    date(2026, 11, 25)
}

pub fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

fn surname(i: usize, female: bool) -> String {
    let (m, f) = SURNAMES[i % SURNAMES.len()];
    if female { f } else { m }.to_string()
}

fn days_after(d: NaiveDate, days: usize) -> NaiveDate {
    d + Days::new(days as u64)
}

/// The five members of family `i`: mother, father and three children born 2010–2020.
pub fn members(i: usize) -> Vec<Member> {
    let (father, boy_patronymic, girl_patronymic) = FATHERS[(i / 12) % FATHERS.len()];
    let mut out = vec![
        Member {
            member_id: new_member_id(),
            last_name: surname(i, true),
            first_name: MOTHERS[(i / 7) % MOTHERS.len()].into(),
            middle_name: Some(PATRONYMICS[i % PATRONYMICS.len()].into()),
            birth_date: days_after(date(1982, 1, 1), (i * 37) % 3650),
            relation: Relation::Parent,
            student_until: None,
            care: Care::Family,
            snils: None,
        },
        Member {
            member_id: new_member_id(),
            last_name: surname(i, false),
            first_name: father.into(),
            middle_name: Some(["Петрович", "Иванович", "Павлович"][i % 3].into()),
            birth_date: days_after(date(1980, 1, 1), (i * 53) % 3650),
            relation: Relation::Parent,
            student_until: None,
            care: Care::Family,
            snils: None,
        },
    ];
    for k in 0..3 {
        let girl = (i + k) & 1 == 0;
        out.push(Member {
            member_id: new_member_id(),
            last_name: surname(i, girl),
            first_name: if girl {
                GIRLS[(i + 3 * k) % GIRLS.len()]
            } else {
                BOYS[(i + 3 * k) % BOYS.len()]
            }
            .into(),
            middle_name: Some(
                if girl {
                    girl_patronymic
                } else {
                    boy_patronymic
                }
                .into(),
            ),
            birth_date: days_after(date(2010 + 4 * k as i32, 1, 1), (i * 29 + k * 101) % 1200),
            relation: Relation::Child,
            student_until: None,
            care: Care::Family,
            snils: None,
        });
    }
    out
}

pub fn decision(i: usize, suffix: &str) -> Decision {
    Decision {
        number: format!("Р-{}/2026{suffix}", 100 + i % 90_000),
        date: date(2026, 11, 20),
        office: Some(OFFICES[i % OFFICES.len()].into()),
        term_until: None,
    }
}

/// The grant of family `i`.
pub fn grant(i: usize, family_id: FamilyId) -> Command {
    Command::Grant {
        decision: decision(i, ""),
        members: members(i),
        valid_from: None,
        certificate_number: certificate_number(family_id),
        certificate_id: new_certificate_id(),
    }
}

/// A child born after the grant: distinct (by name and birth date) for every `k` of one family.
pub fn newborn(i: usize, k: usize) -> Member {
    let girl = (i + k) & 1 == 1;
    Member {
        member_id: new_member_id(),
        last_name: surname(i, girl),
        first_name: if girl {
            GIRLS[(i + k) % GIRLS.len()]
        } else {
            BOYS[(i + k) % BOYS.len()]
        }
        .into(),
        middle_name: None,
        birth_date: days_after(date(2021, 1, 1), (k * 211 + i) % 2000),
        relation: Relation::Child,
        student_until: None,
        care: Care::Family,
        snils: None,
    }
}

/// The `round`-th command after the grant of family `i` (round ≥ 1): half of them add a child,
/// three in ten correct a name, two in ten renew with a student confirmation.
pub fn follow_up(i: usize, round: usize, family: &Family) -> Command {
    match (i * 7 + round * 3) % 10 {
        0..=4 => Command::AddMember {
            member: newborn(i, round),
            decision: Some(decision(i, &format!("-Д{round}"))),
        },
        5..=7 => {
            // A surname change of the mother, or a fixed patronymic of a child.
            let member = &family.members[round % family.members.len()];
            let changes = if member.relation == Relation::Parent {
                let female = member.last_name.ends_with('а');
                MemberChanges {
                    last_name: Some(format!(
                        "{}-{}",
                        member.last_name,
                        surname(i + round, female)
                    )),
                    ..MemberChanges::default()
                }
            } else {
                MemberChanges {
                    middle_name: Some(Some(PATRONYMICS[round % PATRONYMICS.len()].into())),
                    ..MemberChanges::default()
                }
            };
            Command::CorrectMember {
                member_id: member.member_id,
                changes,
            }
        }
        _ => {
            let eldest = family
                .members
                .iter()
                .filter(|m| m.relation == Relation::Child)
                .min_by_key(|m| m.birth_date);
            Command::Renew {
                decision: decision(i, &format!("-П{round}")),
                student_confirmations: eldest
                    .map(|m| StudentConfirmation {
                        member_id: m.member_id,
                        student_until: date(2032, 6, 30),
                    })
                    .into_iter()
                    .collect(),
            }
        }
    }
}

/// The officer every benchmark command is made by.
pub fn officer() -> Actor {
    Actor {
        id: "token-officer-bench".into(),
        role: Role::Officer,
    }
}

/// The metadata the command path writes for a benchmark officer's command.
pub fn metadata() -> String {
    serde_json::to_string(&EventMetadata {
        actor: officer(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        idempotency_key: None,
    })
    .unwrap_or_default()
}

/// Decides `command` on `state` (today, federal policy) and returns the events as the command
/// path would append them, with the state after them.
pub fn decide_events(
    policy: &Policy,
    family_id: FamilyId,
    state: Option<Family>,
    command: &Command,
) -> Result<(Vec<NewEvent>, Option<Family>)> {
    let ctx = DecideContext {
        today: today(),
        policy,
        family_id,
    };
    let events = decide(state.as_ref(), command, &ctx)
        .with_context(|| format!("the domain refused a benchmark {}", command.name()))?;
    let new_events = registry_app::to_new_events(&events, &metadata(), now());
    let state = events.iter().fold(state, evolve);
    Ok((new_events, state))
}
