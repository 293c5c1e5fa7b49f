//! Property tests: random command sequences never make the decider panic, every accepted event
//! survives a JSON round trip, and every recorded `valid_until` is exactly what the policy computes
//! from the members it leaves.

mod support;

use chrono::{Days, NaiveDate};
use proptest::prelude::*;
use registry_domain::*;
use support::{date, family_id};
use uuid::Uuid;

#[derive(Clone, Debug)]
struct MemberSpec {
    relation: Relation,
    born_days_ago: u64,
    student_for_days: Option<i64>,
    care: Care,
    name: &'static str,
}

#[derive(Clone, Debug)]
enum Step {
    Grant(Vec<MemberSpec>, Option<u64>),
    Renew(Vec<(usize, i64)>, Option<u64>),
    Add(MemberSpec),
    Remove(usize, RemovalReason),
    Correct(usize, Option<u64>, Option<&'static str>, Option<Care>),
    Revoke,
    Reissue,
    Wait(u64),
}

fn member_spec() -> impl Strategy<Value = MemberSpec> {
    (
        prop_oneof![
            3 => (Just(Relation::Child), 0u64..(24 * 365)),
            1 => (Just(Relation::Parent), (18 * 365)..(60 * 365u64)),
        ],
        prop::option::weighted(0.3, -2000i64..3000),
        prop_oneof![12 => Just(Care::Family), 1 => Just(Care::StateCare), 1 => Just(Care::ParentalRightsLost)],
        prop_oneof![8 => Just("Анна"), 8 => Just("Иван"), 8 => Just("Ольга"), 1 => Just(""), 8 => Just("Пётр")],
    )
        .prop_map(|((relation, born_days_ago), student_for_days, care, name)| MemberSpec {
            relation,
            born_days_ago,
            student_for_days,
            care,
            name,
        })
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (prop::collection::vec(member_spec(), 0..9), prop::option::weighted(0.2, 0u64..4000))
            .prop_map(|(m, t)| Step::Grant(m, t)),
        2 => (prop::collection::vec((0usize..10, -500i64..3000), 0..3), prop::option::of(0u64..4000))
            .prop_map(|(c, t)| Step::Renew(c, t)),
        3 => member_spec().prop_map(Step::Add),
        3 => (0usize..10, prop_oneof![Just(RemovalReason::MovedOut), Just(RemovalReason::Deceased), Just(RemovalReason::StateCare)])
            .prop_map(|(i, r)| Step::Remove(i, r)),
        2 => (0usize..10, prop::option::of(0u64..(30 * 365)), prop::option::of(prop_oneof![Just("Мария"), Just(" ")]), prop::option::of(prop_oneof![Just(Care::Family), Just(Care::StateCare)]))
            .prop_map(|(i, b, n, c)| Step::Correct(i, b, n, c)),
        1 => Just(Step::Revoke),
        1 => Just(Step::Reissue),
        3 => (0u64..800).prop_map(Step::Wait),
    ]
}

struct World {
    today: NaiveDate,
    counter: u128,
    history: Vec<FamilyEvent>,
}

impl World {
    fn id(&mut self) -> Uuid {
        self.counter += 1;
        Uuid::from_u128(self.counter)
    }

    fn member(&mut self, spec: &MemberSpec) -> Member {
        let birth_date = self
            .today
            .checked_sub_days(Days::new(spec.born_days_ago))
            .unwrap_or(self.today);
        Member {
            member_id: MemberId(self.id()),
            last_name: "Смирнов".into(),
            first_name: spec.name.into(),
            middle_name: None,
            birth_date,
            relation: spec.relation,
            student_until: spec.student_for_days.map(|d| shift(self.today, d)),
            care: spec.care,
            snils: None,
        }
    }

    fn decision(&self, term: Option<u64>) -> Decision {
        Decision {
            number: "Р-1".into(),
            date: self.today,
            office: None,
            term_until: term.map(|t| shift(self.today, i64::try_from(t).unwrap_or(0))),
        }
    }

    fn command(&mut self, step: &Step, state: Option<&Family>) -> Option<Command> {
        let member_at = |i: usize| state.and_then(|f| f.members.get(i % f.members.len().max(1)));
        Some(match step {
            Step::Grant(specs, term) => Command::Grant {
                decision: self.decision(*term),
                members: specs.iter().map(|s| self.member(s)).collect(),
                valid_from: None,
                certificate_number: "77-P".into(),
                certificate_id: CertificateId(self.id()),
            },
            Step::Renew(confirmations, term) => Command::Renew {
                decision: self.decision(*term),
                student_confirmations: confirmations
                    .iter()
                    .filter_map(|(i, d)| {
                        member_at(*i).map(|m| StudentConfirmation {
                            member_id: m.member_id,
                            student_until: shift(self.today, *d),
                        })
                    })
                    .collect(),
            },
            Step::Add(spec) => Command::AddMember {
                member: self.member(spec),
                decision: None,
            },
            Step::Remove(i, reason) => Command::RemoveMember {
                member_id: member_at(*i)?.member_id,
                reason: *reason,
            },
            Step::Correct(i, born, name, care) => Command::CorrectMember {
                member_id: member_at(*i)?.member_id,
                changes: MemberChanges {
                    birth_date: born.map(|d| {
                        self.today
                            .checked_sub_days(Days::new(d))
                            .unwrap_or(self.today)
                    }),
                    first_name: name.map(str::to_string),
                    care: *care,
                    ..MemberChanges::default()
                },
            },
            Step::Revoke => Command::Revoke {
                reason: "проверка".into(),
                decision: None,
            },
            Step::Reissue => Command::ReissueCertificate {
                reason: "утерян".into(),
                certificate_id: CertificateId(self.id()),
            },
            Step::Wait(_) => return None,
        })
    }
}

fn shift(day: NaiveDate, days: i64) -> NaiveDate {
    if days >= 0 {
        day.checked_add_days(Days::new(days.unsigned_abs()))
            .unwrap_or(day)
    } else {
        day.checked_sub_days(Days::new(days.unsigned_abs()))
            .unwrap_or(day)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn random_command_sequences_keep_every_recorded_validity_equal_to_the_policy(
        steps in prop::collection::vec(step(), 1..40),
        moscow in any::<bool>(),
    ) {
        let policy = if moscow { Policy::moscow_2005() } else { Policy::federal_2024() };
        let mut world = World { today: date("2026-11-25"), counter: 0, history: Vec::new() };
        for step in &steps {
            if let Step::Wait(days) = step {
                world.today = world.today.checked_add_days(Days::new(*days)).unwrap_or(world.today);
                continue;
            }
            let state = fold(&world.history);
            let Some(command) = world.command(step, state.as_ref()) else { continue };
            let ctx = DecideContext { today: world.today, policy: &policy, family_id: family_id() };
            let Ok(events) = decide(state.as_ref(), &command, &ctx) else { continue };
            prop_assert!(!events.is_empty());
            let mut family = state;
            for event in &events {
                let decoded = FamilyEvent::decode(
                    event.event_type(),
                    FamilyEvent::SCHEMA_VERSION,
                    &event.to_json().to_string(),
                );
                let decoded = decoded.ok();
                prop_assert_eq!(decoded.as_ref(), Some(event));
                family = evolve(family, event);
                let after = family.as_ref().expect("events only follow a grant");
                if let Some(recorded) = event.recorded_valid_until() {
                    prop_assert_eq!(
                        Some(recorded),
                        policy.valid_until(&after.members, after.term_until),
                        "{} recorded a validity the policy does not give", event.event_type()
                    );
                    prop_assert_eq!(after.valid_until, recorded);
                }
                if matches!(event, FamilyEvent::StatusGranted(_) | FamilyEvent::StatusRenewed(_)) {
                    prop_assert!(policy.counted_on(&after.members, world.today) >= 3);
                }
            }
            world.history.extend(events);
        }
    }
}

/// The law's wording evaluated day by day, independently of `Policy`'s formulas: has the child
/// reached `age` on `day` (the birthday of that age: same day and month, 29 February → 28 February
/// in a common year)?
fn reached(birth: NaiveDate, age: u32, day: NaiveDate) -> bool {
    use chrono::Datelike;
    let year = birth.year() + i32::try_from(age).unwrap_or(0);
    let birthday = NaiveDate::from_ymd_opt(year, birth.month(), birth.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
        .expect("a birthday");
    day >= birthday
}

/// Does `member` count on `day`: a child, not excluded, born, under the age limit or studying and
/// under the students' limit?
fn counts_on(policy: &Policy, member: &Member, day: NaiveDate) -> bool {
    let child = member.relation == Relation::Child && !policy.not_counted.contains(&member.care);
    let young = !reached(member.birth_date, policy.age_limit, day);
    let studying = policy.study.as_ref().is_some_and(|s| {
        member.student_until.is_some_and(|until| day <= until)
            && !reached(member.birth_date, s.age_limit, day)
    });
    child && member.birth_date <= day && (young || studying)
}

/// Is the family large on `day` by the preset's wording?
fn qualifies(policy: &Policy, members: &[Member], day: NaiveDate) -> bool {
    let children: Vec<&Member> = members
        .iter()
        .filter(|m| m.relation == Relation::Child && !policy.not_counted.contains(&m.care))
        .collect();
    let k = policy.min_children as usize;
    if children.len() < k {
        return false;
    }
    let deciding = |born: NaiveDate| {
        children
            .iter()
            .filter(|c| c.birth_date == born)
            .any(|c| counts_on(policy, c, day))
    };
    match policy.ends_with {
        EndsWith::KthYoungest => {
            children
                .iter()
                .filter(|c| counts_on(policy, c, day))
                .count()
                >= k
        }
        EndsWith::Youngest => deciding(
            children
                .iter()
                .map(|c| c.birth_date)
                .max()
                .expect("children"),
        ),
        EndsWith::Eldest => deciding(
            children
                .iter()
                .map(|c| c.birth_date)
                .min()
                .expect("children"),
        ),
    }
}

/// The last day of the run of days from `today` on which the family is large, or `None`.
fn brute_valid_until(policy: &Policy, members: &[Member], today: NaiveDate) -> Option<NaiveDate> {
    if !qualifies(policy, members, today) {
        return None;
    }
    let mut day = today;
    while let Some(next) = day.checked_add_days(Days::new(1)) {
        if !qualifies(policy, members, next) {
            return Some(day);
        }
        day = next;
    }
    Some(day)
}

fn eldest_rule() -> Policy {
    Policy {
        name: "eldest-test".into(),
        ends_with: EndsWith::Eldest,
        ..Policy::federal_2024()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(600))]

    /// For every rule shape, the computed `valid_until` is the last day of the run of days, from
    /// today, on which the family qualifies by the law's wording, day by day.
    #[test]
    fn every_rule_shape_gives_the_last_day_the_wording_holds_day_by_day(
        children in prop::collection::vec(
            (0u64..(26 * 365), prop::option::weighted(0.4, -3000i64..4000), prop_oneof![
                10 => Just(Care::Family), 1 => Just(Care::StateCare),
                1 => Just(Care::ParentalRightsLost), 1 => Just(Care::ParentalRightsRestricted)]),
            0..7),
        today_offset in 0u64..3000,
        shape in 0usize..4,
    ) {
        let policy = match shape {
            0 => Policy::moscow_2008(),
            1 => Policy::federal_2024(),
            2 => Policy::moscow_2005(),
            _ => eldest_rule(),
        };
        let today = date("2024-01-01").checked_add_days(Days::new(today_offset)).expect("day");
        let mut members = vec![Member {
            member_id: MemberId(Uuid::from_u128(1)),
            last_name: "Смирнова".into(),
            first_name: "Ольга".into(),
            middle_name: None,
            birth_date: date("1985-01-01"),
            relation: Relation::Parent,
            student_until: None,
            care: Care::Family,
            snils: None,
        }];
        for (i, (born_days_ago, study, care)) in children.iter().enumerate() {
            members.push(Member {
                member_id: MemberId(Uuid::from_u128(2 + i as u128)),
                last_name: "Смирнов".into(),
                first_name: "Ребёнок".into(),
                middle_name: None,
                birth_date: today.checked_sub_days(Days::new(*born_days_ago)).expect("day"),
                relation: Relation::Child,
                student_until: study.map(|d| shift(today, d)),
                care: *care,
                snils: None,
            });
        }
        let computed = policy.valid_until(&members, None).filter(|until| *until >= today);
        prop_assert_eq!(computed, brute_valid_until(&policy, &members, today));
    }
}
