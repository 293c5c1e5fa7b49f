//! The decider, as given / when / then: history, a command, and the events (or the refusal).

mod support;

use chrono::NaiveDate;
use registry_domain::*;
use support::*;

#[test]
fn granting_with_three_counted_children_grants_until_the_third_child_ages_out() {
    let members = three_children();
    given(vec![])
        .when(grant_command(members.clone()))
        .then(vec![FamilyEvent::StatusGranted(StatusGranted {
            family_id: family_id(),
            certificate_id: cert(1),
            certificate_number: "77-TEST-0001".into(),
            certificate_serial: 1,
            decision: decision("Р-1", "2026-11-20"),
            policy: "federal-2024".into(),
            members,
            valid_from: date("2026-11-20"),
            // The youngest three are 2010, 2014, 2019: the 2010 child turns 18 on 2028-05-01.
            valid_until: date("2028-04-30"),
        })]);
}

#[test]
fn granting_with_two_counted_children_is_not_eligible() {
    let mut members = three_children();
    members.pop();
    given(vec![])
        .when(grant_command(members))
        .then_error(DomainError::NotEligible {
            counted: 2,
            required: 3,
        });
}

#[test]
fn an_eighteen_year_old_counts_only_with_a_student_confirmation() {
    let mut members = three_children();
    members[1] = child(2, "Пётр", "2008-01-10"); // 18 since 2026-01-10
    given(vec![])
        .when(grant_command(members.clone()))
        .then_error(DomainError::NotEligible {
            counted: 2,
            required: 3,
        });

    members[1].student_until = Some(date("2029-06-30"));
    let family = given(vec![]).when(grant_command(members)).state();
    assert_eq!(family.valid_until, date("2029-06-30"));
}

#[test]
fn a_student_never_counts_past_the_day_before_turning_23() {
    let mut members = three_children();
    members[1] = child(2, "Пётр", "2008-01-10");
    members[1].student_until = Some(date("2035-06-30"));
    let family = given(vec![]).when(grant_command(members)).state();
    assert_eq!(family.valid_until, date("2031-01-09"));
}

#[test]
fn a_student_confirmation_that_already_ended_does_not_count() {
    let mut members = three_children();
    members[1] = child(2, "Пётр", "2007-01-10");
    members[1].student_until = Some(date("2026-06-30"));
    given(vec![])
        .when(grant_command(members))
        .then_error(DomainError::NotEligible {
            counted: 2,
            required: 3,
        });
}

#[test]
fn children_in_state_care_or_whose_parents_lost_rights_do_not_count() {
    for care in [Care::StateCare, Care::ParentalRightsLost] {
        let mut members = three_children();
        members[3].care = care;
        given(vec![])
            .when(grant_command(members))
            .then_error(DomainError::NotEligible {
                counted: 2,
                required: 3,
            });
    }
    let mut members = three_children();
    let mut fourth = child(5, "Ира", "2021-01-01");
    fourth.care = Care::StateCare;
    members.push(fourth);
    let family = given(vec![]).when(grant_command(members)).state();
    assert_eq!(family.valid_until, date("2028-04-30"));
}

#[test]
fn valid_until_is_exact_for_a_mix_of_ages_and_a_29_february_birthday() {
    let members = vec![
        parent(1, "Мария", "1985-02-03"),
        child(2, "Пётр", "2012-02-29"),
        child(3, "Анна", "2015-06-10"),
        child(4, "Олег", "2020-01-01"),
        child(5, "Ира", "2004-07-07"), // 22, no longer counted
    ];
    // Federal: 18 in 2030, a common year, so the birthday falls on 28 February.
    let family = given(vec![]).when(grant_command(members.clone())).state();
    assert_eq!(family.valid_until, date("2030-02-27"));
    // Moscow 2005: 16 in 2028, a leap year, so the birthday is 29 February itself.
    let family = given(vec![])
        .policy(Policy::moscow_2005())
        .when(grant_command(members))
        .state();
    assert_eq!(family.valid_until, date("2028-02-28"));
    assert_eq!(family.policy, "moscow-2005");
}

#[test]
fn the_29_february_child_still_counts_on_27_february_and_not_on_28() {
    let members = vec![
        parent(1, "Мария", "1985-02-03"),
        child(2, "Пётр", "2008-02-29"),
        child(3, "Анна", "2015-06-10"),
        child(4, "Олег", "2020-01-01"),
    ];
    let family = given(vec![])
        .today("2026-02-27")
        .when(Command::Grant {
            decision: decision("Р-1", "2026-02-27"),
            members: members.clone(),
            valid_from: None,
            certificate_number: "77-TEST-0001".into(),
            certificate_id: cert(1),
        })
        .state();
    assert_eq!(family.valid_until, date("2026-02-27"));
    given(vec![])
        .today("2026-02-28")
        .when(grant_command_on(members, "2026-02-28"))
        .then_error(DomainError::NotEligible {
            counted: 2,
            required: 3,
        });
}

fn grant_command_on(members: Vec<Member>, day: &str) -> Command {
    Command::Grant {
        decision: decision("Р-1", day),
        members,
        valid_from: None,
        certificate_number: "77-TEST-0001".into(),
        certificate_id: cert(1),
    }
}

#[test]
fn moscow_2005_counts_pupils_until_18_and_children_until_16() {
    let mut members = three_children();
    members[1] = child(2, "Пётр", "2010-01-10"); // 16 on 2026-01-10
    given(vec![])
        .policy(Policy::moscow_2005())
        .when(grant_command(members.clone()))
        .then_error(DomainError::NotEligible {
            counted: 2,
            required: 3,
        });
    members[1].student_until = Some(date("2030-06-30"));
    let family = given(vec![])
        .policy(Policy::moscow_2005())
        .when(grant_command(members))
        .state();
    assert_eq!(family.valid_until, date("2028-01-09"));
}

#[test]
fn a_decision_term_caps_valid_until() {
    let family = given(vec![])
        .when(Command::Grant {
            decision: Decision {
                term_until: Some(date("2027-12-31")),
                ..decision("Р-1", "2026-11-20")
            },
            members: three_children(),
            valid_from: None,
            certificate_number: "77-TEST-0001".into(),
            certificate_id: cert(1),
        })
        .state();
    assert_eq!(family.valid_until, date("2027-12-31"));
}

#[test]
fn adding_a_newborn_extends_valid_until() {
    let newborn = child(9, "Вера", "2026-11-01");
    let events = given(vec![granted(three_children())])
        .when(Command::AddMember {
            member: newborn.clone(),
            decision: None,
        })
        .events();
    assert_eq!(
        events,
        vec![FamilyEvent::MemberAdded(MemberAdded {
            member: newborn,
            decision: None,
            policy: "federal-2024".into(),
            // Now the 2014 child is the third youngest: 18 on 2032-09-15.
            valid_until: Some(date("2032-09-14")),
        })]
    );
}

#[test]
fn removing_a_child_that_leaves_two_emits_member_removed_and_status_terminated_together() {
    let family = given(vec![granted(three_children())])
        .when(Command::RemoveMember {
            member_id: mid(3),
            reason: RemovalReason::MovedOut,
        })
        .then(vec![
            FamilyEvent::MemberRemoved(MemberRemoved {
                member_id: mid(3),
                reason: RemovalReason::MovedOut,
                policy: "federal-2024".into(),
                valid_until: None,
            }),
            FamilyEvent::StatusTerminated(StatusTerminated {
                reason: TerminationReason::NotEnoughChildren,
                effective_date: date(TODAY),
                counted_children: 2,
                policy: "federal-2024".into(),
            }),
        ]);
    assert_eq!(family.status, Status::Terminated);
    assert_eq!(family.state_on(date(TODAY)), CertificateState::Terminated);
    assert_eq!(family.valid_until, date("2026-11-24"));
}

#[test]
fn removing_a_child_from_a_larger_family_shortens_valid_until() {
    let mut members = three_children();
    members.push(child(5, "Ира", "2021-01-01"));
    let events = given(vec![granted(members)])
        .when(Command::RemoveMember {
            member_id: mid(5),
            reason: RemovalReason::StateCare,
        })
        .events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].recorded_valid_until(), Some(date("2028-04-30")));
}

fn revoked_family() -> Vec<FamilyEvent> {
    vec![
        granted(three_children()),
        FamilyEvent::StatusRevoked(StatusRevoked {
            reason: "fraud".into(),
            decision: None,
            effective_date: date(TODAY),
        }),
    ]
}

#[test]
fn renewing_a_revoked_status_is_a_conflict() {
    given(revoked_family())
        .when(Command::Renew {
            decision: decision("Р-2", TODAY),
            student_confirmations: vec![],
        })
        .then_conflict();
}

#[test]
fn adding_a_member_to_a_revoked_status_is_a_conflict() {
    given(revoked_family())
        .when(Command::AddMember {
            member: child(9, "Вера", "2026-11-01"),
            decision: None,
        })
        .then_conflict();
}

#[test]
fn removing_a_member_from_a_revoked_status_is_a_conflict() {
    given(revoked_family())
        .when(Command::RemoveMember {
            member_id: mid(2),
            reason: RemovalReason::MovedOut,
        })
        .then_conflict();
}

#[test]
fn revoking_twice_is_a_conflict() {
    let revoke = Command::Revoke {
        reason: "fraud".into(),
        decision: None,
    };
    let family = given(vec![granted(three_children())])
        .when(revoke.clone())
        .state();
    assert_eq!(family.state_on(date(TODAY)), CertificateState::Revoked);
    given(revoked_family()).when(revoke).then_conflict();
}

#[test]
fn reissuing_increments_the_serial_and_changes_the_token_id() {
    let family = given(vec![granted(three_children())])
        .when(Command::ReissueCertificate {
            reason: "lost phone".into(),
            certificate_id: cert(2),
        })
        .then(vec![FamilyEvent::CertificateReissued(
            CertificateReissued {
                certificate_id: cert(2),
                certificate_serial: 2,
                previous_certificate_id: cert(1),
                reason: "lost phone".into(),
                issued_on: date(TODAY),
            },
        )]);
    assert_eq!(family.certificate_serial, 2);
    assert_eq!(family.previous_certificate_ids, vec![cert(1)]);
    assert_eq!(family.issued_on, date(TODAY));
}

#[test]
fn reissuing_with_a_token_id_already_used_is_invalid() {
    let fields = given(vec![granted(three_children())])
        .when(Command::ReissueCertificate {
            reason: "lost phone".into(),
            certificate_id: cert(1),
        })
        .then_invalid_fields();
    assert_eq!(fields, vec!["certificate_id"]);
}

#[test]
fn invalid_members_are_validation_errors_naming_each_field() {
    let mut members = three_children();
    members[2].first_name = "   ".into();
    members[3].birth_date = date("2026-12-01");
    let mut twin = members[1].clone();
    twin.member_id = mid(7);
    members.push(twin);
    let fields = given(vec![])
        .when(grant_command(members))
        .then_invalid_fields();
    assert_eq!(
        fields,
        vec![
            "members[2].first_name",
            "members[3].birth_date",
            "members[4]"
        ]
    );
}

#[test]
fn a_decision_dated_in_the_future_is_invalid() {
    let fields = given(vec![])
        .when(Command::Grant {
            decision: decision("Р-1", "2027-01-01"),
            members: three_children(),
            valid_from: None,
            certificate_number: "77-TEST-0001".into(),
            certificate_id: cert(1),
        })
        .then_invalid_fields();
    assert_eq!(fields, vec!["decision.date"]);
}

#[test]
fn a_family_without_a_parent_is_invalid() {
    let members: Vec<Member> = three_children().into_iter().skip(1).collect();
    let fields = given(vec![])
        .when(grant_command(members))
        .then_invalid_fields();
    assert_eq!(fields, vec!["members"]);
}

#[test]
fn granting_twice_is_a_conflict() {
    given(vec![granted(three_children())])
        .when(grant_command(three_children()))
        .then_conflict();
}

#[test]
fn commands_on_a_family_that_does_not_exist_are_not_found() {
    let result = given(vec![]).when(Command::Revoke {
        reason: "x".into(),
        decision: None,
    });
    result.then_error(DomainError::NotFound("no such family".into()));
}

#[test]
fn renewal_with_a_student_confirmation_extends_an_expired_status() {
    // Granted in 2026 with a child who turns 18 in 2028; on 2028-09-01 the status has expired.
    let history = vec![granted(three_children())];
    let expired = fold(&history).expect("family");
    assert_eq!(
        expired.state_on(date("2028-09-01")),
        CertificateState::Expired
    );
    let family = given(history)
        .today("2028-09-01")
        .when(Command::Renew {
            decision: decision("Р-2", "2028-09-01"),
            student_confirmations: vec![StudentConfirmation {
                member_id: mid(2),
                student_until: date("2032-06-30"),
            }],
        })
        .state();
    assert_eq!(family.valid_until, date("2032-06-30"));
    assert_eq!(
        family.state_on(date("2028-09-01")),
        CertificateState::Active
    );
    assert_eq!(
        family.member(mid(2)).and_then(|m| m.student_until),
        Some(date("2032-06-30"))
    );
}

#[test]
fn renewal_that_confirms_a_parent_as_student_is_invalid() {
    let fields = given(vec![granted(three_children())])
        .when(Command::Renew {
            decision: decision("Р-2", TODAY),
            student_confirmations: vec![StudentConfirmation {
                member_id: mid(1),
                student_until: date("2030-01-01"),
            }],
        })
        .then_invalid_fields();
    assert_eq!(fields, vec!["student_confirmations[0].member_id"]);
}

#[test]
fn correcting_a_birth_date_that_ages_a_child_out_terminates_the_status() {
    let events = given(vec![granted(three_children())])
        .when(Command::CorrectMember {
            member_id: mid(2),
            changes: MemberChanges {
                birth_date: Some(date("2005-05-01")),
                ..MemberChanges::default()
            },
        })
        .events();
    let types: Vec<&str> = events.iter().map(FamilyEvent::event_type).collect();
    assert_eq!(types, vec!["MemberDetailsCorrected", "StatusTerminated"]);
}

#[test]
fn correcting_a_surname_keeps_the_dates_and_trims_the_name() {
    let family = given(vec![granted(three_children())])
        .when(Command::CorrectMember {
            member_id: mid(1),
            changes: MemberChanges {
                last_name: Some("  Петрова ".into()),
                middle_name: Some(None),
                ..MemberChanges::default()
            },
        })
        .state();
    let mother = family.member(mid(1)).expect("mother");
    assert_eq!(mother.last_name, "Петрова");
    assert_eq!(mother.middle_name, None);
    assert_eq!(family.valid_until, date("2028-04-30"));
}

#[test]
fn removing_an_unknown_member_is_not_found() {
    given(vec![granted(three_children())])
        .when(Command::RemoveMember {
            member_id: mid(99),
            reason: RemovalReason::Other,
        })
        .then_error(DomainError::NotFound(
            "no such member in this family".into(),
        ));
}

#[test]
fn the_last_parent_cannot_be_removed() {
    given(vec![granted(three_children())])
        .when(Command::RemoveMember {
            member_id: mid(1),
            reason: RemovalReason::Deceased,
        })
        .then_conflict();
}

#[test]
fn a_newborn_after_termination_is_recorded_and_a_renewal_reactivates() {
    let mut history = vec![granted(three_children())];
    history.extend(
        given(history.clone())
            .when(Command::RemoveMember {
                member_id: mid(3),
                reason: RemovalReason::MovedOut,
            })
            .events(),
    );
    let added = given(history.clone())
        .when(Command::AddMember {
            member: child(9, "Вера", "2026-11-01"),
            decision: None,
        })
        .events();
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].recorded_valid_until(), None);
    history.extend(added);
    let family = given(history)
        .when(Command::Renew {
            decision: decision("Р-3", TODAY),
            student_confirmations: vec![],
        })
        .state();
    assert_eq!(family.status, Status::Active);
    assert_eq!(family.valid_until, date("2028-04-30"));
}

#[test]
fn an_expired_certificate_is_valid_through_the_end_of_its_last_day() {
    let family = fold(&[granted(three_children())]).expect("family");
    assert_eq!(
        family.state_on(date("2028-04-30")),
        CertificateState::Active
    );
    assert_eq!(
        family.state_on(date("2028-05-01")),
        CertificateState::Expired
    );
}

#[test]
fn a_certificate_before_its_first_day_is_not_yet_valid_and_valid_from_that_day_on() {
    let mut granted = granted(three_children());
    if let FamilyEvent::StatusGranted(g) = &mut granted {
        g.valid_from = date("2026-12-10");
    }
    let family = fold(&[granted]).expect("family");
    assert_eq!(
        family.state_on(date("2026-12-09")),
        CertificateState::NotYetValid
    );
    assert!(!CertificateState::NotYetValid.is_valid());
    assert_eq!(
        family.state_on(date("2026-12-10")),
        CertificateState::Active
    );
}

#[test]
fn dates_outside_1900_to_2199_are_invalid_whoever_sends_them() {
    let far_past = NaiveDate::from_ymd_opt(-1, 1, 1).expect("date");
    let far_future = NaiveDate::from_ymd_opt(10000, 1, 1).expect("date");
    let mut members = three_children();
    members[1].student_until = Some(far_future);
    let fields = given(vec![])
        .when(Command::Grant {
            decision: Decision {
                term_until: Some(far_future),
                ..decision("Р-1", "2026-11-20")
            },
            members,
            valid_from: Some(far_past),
            certificate_number: "77-TEST-0001".into(),
            certificate_id: cert(1),
        })
        .then_invalid_fields();
    assert_eq!(fields, ["decision.term_until", "members[1].student_until"]);
    let fields = given(vec![])
        .when(Command::Grant {
            decision: decision("Р-1", "2026-11-20"),
            members: three_children(),
            valid_from: Some(far_past),
            certificate_number: "77-TEST-0001".into(),
            certificate_id: cert(1),
        })
        .then_invalid_fields();
    assert_eq!(fields, ["valid_from"]);
}
