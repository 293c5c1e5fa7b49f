//! Given / when / then for the decider, and builders for members and decisions.
#![allow(dead_code, clippy::unwrap_used)]

use chrono::NaiveDate;
use registry_domain::*;
use uuid::Uuid;

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
}

pub const TODAY: &str = "2026-11-25";

pub fn family_id() -> FamilyId {
    FamilyId(Uuid::from_u128(0xF))
}

/// Deterministic member ids, so expected events can be written out in full.
pub fn mid(n: u128) -> MemberId {
    MemberId(Uuid::from_u128(0x1000 + n))
}

pub fn cert(n: u128) -> CertificateId {
    CertificateId(Uuid::from_u128(0xC000 + n))
}

pub fn parent(n: u128, first: &str, born: &str) -> Member {
    Member {
        member_id: mid(n),
        last_name: "Иванова".into(),
        first_name: first.into(),
        middle_name: Some("Петровна".into()),
        birth_date: date(born),
        relation: Relation::Parent,
        student_until: None,
        care: Care::Family,
        snils: None,
    }
}

pub fn child(n: u128, first: &str, born: &str) -> Member {
    Member {
        member_id: mid(n),
        last_name: "Иванов".into(),
        first_name: first.into(),
        middle_name: Some("Сергеевич".into()),
        birth_date: date(born),
        relation: Relation::Child,
        student_until: None,
        care: Care::Family,
        snils: None,
    }
}

pub fn decision(number: &str, on: &str) -> Decision {
    Decision {
        number: number.into(),
        date: date(on),
        office: Some("УСЗН ЦАО".into()),
        term_until: None,
    }
}

/// A mother and three children born 2010-05-01, 2014-09-15 and 2019-03-10.
pub fn three_children() -> Vec<Member> {
    vec![
        parent(1, "Мария", "1985-02-03"),
        child(2, "Пётр", "2010-05-01"),
        child(3, "Анна", "2014-09-15"),
        child(4, "Олег", "2019-03-10"),
    ]
}

pub fn grant_command(members: Vec<Member>) -> Command {
    Command::Grant {
        decision: decision("Р-1", "2026-11-20"),
        members,
        valid_from: None,
        certificate_number: "77-TEST-0001".into(),
        certificate_id: cert(1),
    }
}

/// The `StatusGranted` the decider produced for `members`, as history for later scenarios.
pub fn granted(members: Vec<Member>) -> FamilyEvent {
    given(vec![])
        .when(grant_command(members))
        .events()
        .remove(0)
}

pub struct Spec {
    history: Vec<FamilyEvent>,
    today: NaiveDate,
    policies: PolicyBook,
}

pub fn given(history: Vec<FamilyEvent>) -> Spec {
    Spec {
        history,
        today: date(TODAY),
        policies: Policy::federal_2024().into(),
    }
}

impl Spec {
    pub fn today(mut self, day: &str) -> Self {
        self.today = date(day);
        self
    }

    /// One preset for every decision.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policies = policy.into();
        self
    }

    /// Presets over time: each decision by the one in force on its date.
    pub fn book(mut self, book: PolicyBook) -> Self {
        self.policies = book;
        self
    }

    pub fn when(self, command: Command) -> Then {
        let state = fold(&self.history);
        let result = policy_for(&self.policies, &command, self.today).and_then(|policy| {
            let ctx = DecideContext {
                today: self.today,
                policy,
                family_id: family_id(),
            };
            decide(state.as_ref(), &command, &ctx)
        });
        Then { state, result }
    }
}

pub struct Then {
    state: Option<Family>,
    result: Result<Vec<FamilyEvent>, DomainError>,
}

impl Then {
    #[track_caller]
    pub fn then(self, expected: Vec<FamilyEvent>) -> Family {
        let events = self.result.clone().expect("command accepted");
        assert_eq!(events, expected);
        self.state_after(&events)
    }

    /// The events, for assertions on parts of them.
    #[track_caller]
    pub fn events(self) -> Vec<FamilyEvent> {
        self.result.expect("command accepted")
    }

    /// The state after folding the produced events.
    #[track_caller]
    pub fn state(self) -> Family {
        let events = self.result.clone().expect("command accepted");
        self.state_after(&events)
    }

    fn state_after(&self, events: &[FamilyEvent]) -> Family {
        events
            .iter()
            .fold(self.state.clone(), evolve)
            .expect("a family after the events")
    }

    #[track_caller]
    pub fn then_error(self, expected: DomainError) {
        assert_eq!(self.result, Err(expected));
    }

    #[track_caller]
    pub fn then_conflict(self) {
        match self.result {
            Err(DomainError::Conflict(_)) => {}
            other => panic!("expected a conflict, got {other:?}"),
        }
    }

    /// The names of the invalid fields.
    #[track_caller]
    pub fn then_invalid_fields(self) -> Vec<String> {
        match self.result {
            Err(DomainError::Validation(errors)) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected validation errors, got {other:?}"),
        }
    }
}
