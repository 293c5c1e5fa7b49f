//! The erasure rule, given/when/then: personal data is erased only after the status ended and
//! the retention period passed; an erased family reads as erased and takes no more commands.

mod support;

use registry_domain::personal::ERASED_TEXT;
use registry_domain::*;
use support::*;

fn erase(retention_days: u32) -> Command {
    Command::ErasePersonalData {
        reason: "истёк срок хранения".into(),
        decision: decision("Р-9", TODAY),
        retention_days,
    }
}

fn revoked_on_today() -> Vec<FamilyEvent> {
    vec![
        granted(three_children()),
        FamilyEvent::StatusRevoked(StatusRevoked {
            reason: "переезд".into(),
            decision: None,
            effective_date: date(TODAY),
        }),
    ]
}

#[test]
fn given_a_status_in_force_when_erased_then_it_is_refused() {
    given(vec![granted(three_children())])
        .when(erase(0))
        .then_conflict();
}

#[test]
fn given_a_revoked_status_when_erased_before_the_retention_ends_then_it_says_from_when() {
    given(revoked_on_today())
        .today("2026-12-24")
        .when(erase(30))
        .then_error(DomainError::Conflict(
            "the retention period has not passed: erasure is allowed from 2026-12-25".into(),
        ));
}

#[test]
fn given_a_revoked_status_when_erased_on_the_first_allowed_day_then_the_erasure_is_recorded() {
    let events = given(revoked_on_today())
        .today("2026-12-25")
        .when(erase(30))
        .events();
    assert_eq!(
        events,
        vec![FamilyEvent::PersonalDataErased(PersonalDataErased {
            reason: "истёк срок хранения".into(),
            decision: decision("Р-9", TODAY),
            erased_on: date("2026-12-25"),
        })]
    );
}

#[test]
fn given_a_certificate_that_ran_out_when_erased_then_the_retention_counts_from_the_day_after() {
    let family = fold(&[granted(three_children())]).expect("family");
    let ended = family.valid_until.succ_opt().expect("a later day");
    assert_eq!(
        erasable_from(&family, ended, 10),
        ended.checked_add_days(chrono::Days::new(10))
    );
    assert_eq!(
        erasable_from(&family, family.valid_until, 10),
        None,
        "still in force"
    );
}

#[test]
fn given_an_erased_family_then_its_members_read_as_erased_and_it_takes_no_more_commands() {
    let mut history = revoked_on_today();
    history.extend(given(history.clone()).when(erase(0)).events());
    let family = fold(&history).expect("family");
    assert_eq!(family.erased_on, Some(date(TODAY)));
    for m in &family.members {
        assert!(m.is_erased());
        assert_eq!(m.last_name, ERASED_TEXT);
        assert_eq!(m.first_name, ERASED_TEXT);
    }
    given(history.clone()).when(erase(0)).then_conflict();
    given(history)
        .when(Command::ReissueCertificate {
            reason: "утерян".into(),
            certificate_id: cert(7),
        })
        .then_conflict();
}
