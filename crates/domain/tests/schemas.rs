//! `schemas/events/*.schema.json` are generated from the event types and checked in. This test
//! fails when they drift (regenerate with `UPDATE_SCHEMAS=1 cargo test -p registry-domain --test
//! schemas`), when a file is not a valid JSON Schema 2020-12, or when a sample of any event type
//! does not validate against its file.

mod support;

use registry_domain::*;
use std::path::PathBuf;
use support::*;

fn schema_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/events")
}

fn schema_path(event_type: &str) -> PathBuf {
    // Version 1 is the events' shape; version 2, the same shape with its personal fields sealed
    // at rest, is generated from it and checked by `registry-personal-data`'s schema test.
    schema_dir().join(format!("{event_type}.v1.schema.json"))
}

fn read_schema(event_type: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(schema_path(event_type))
        .unwrap_or_else(|e| panic!("schema file for {event_type}: {e}"));
    serde_json::from_str(&text).expect("schema file is JSON")
}

/// One sample of every event type, produced by the decider itself.
fn samples() -> Vec<FamilyEvent> {
    let mut history = vec![granted(three_children())];
    let mut run = |command: Command| {
        let events = given(history.clone()).when(command).events();
        history.extend(events);
    };
    run(Command::Renew {
        decision: decision("Р-2", TODAY),
        student_confirmations: vec![StudentConfirmation {
            member_id: mid(2),
            student_until: date("2030-06-30"),
        }],
    });
    run(Command::AddMember {
        member: child(9, "Вера", "2026-11-01"),
        decision: Some(decision("Р-3", TODAY)),
    });
    run(Command::CorrectMember {
        member_id: mid(1),
        changes: MemberChanges {
            last_name: Some("Петрова".into()),
            middle_name: Some(None),
            ..MemberChanges::default()
        },
    });
    run(Command::ReissueCertificate {
        reason: "утерян телефон".into(),
        certificate_id: cert(2),
    });
    run(Command::RemoveMember {
        member_id: mid(9),
        reason: RemovalReason::Deceased,
    });
    run(Command::RemoveMember {
        member_id: mid(3),
        reason: RemovalReason::MovedOut,
    });
    run(Command::Revoke {
        reason: "недостоверные сведения".into(),
        decision: Some(decision("Р-4", TODAY)),
    });
    run(Command::ErasePersonalData {
        reason: "срок хранения истёк".into(),
        decision: decision("Р-5", TODAY),
        retention_days: 0,
    });
    history
}

#[test]
fn checked_in_schemas_match_the_event_types() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    for event_type in EVENT_TYPES {
        let generated = FamilyEvent::json_schema(event_type).expect("known type");
        let text = serde_json::to_string_pretty(&generated).expect("schema serializes") + "\n";
        if update {
            std::fs::create_dir_all(schema_dir()).expect("schema dir");
            std::fs::write(schema_path(event_type), &text).expect("write schema");
        }
        assert_eq!(
            read_schema(event_type),
            generated,
            "schemas/events/{event_type} is stale: run UPDATE_SCHEMAS=1 cargo test -p registry-domain --test schemas"
        );
    }
}

#[test]
fn every_schema_file_is_a_valid_json_schema_2020_12() {
    for event_type in EVENT_TYPES {
        let schema = read_schema(event_type);
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{event_type}"
        );
        jsonschema::draft202012::meta::validate(&schema)
            .unwrap_or_else(|e| panic!("{event_type} is not a valid schema: {e}"));
    }
}

#[test]
fn a_sample_of_every_event_type_validates_against_its_schema_file() {
    let samples = samples();
    for event_type in EVENT_TYPES {
        let sample = samples
            .iter()
            .find(|e| e.event_type() == event_type)
            .unwrap_or_else(|| panic!("no sample of {event_type}"));
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(&read_schema(event_type))
            .expect("schema compiles");
        let instance = sample.to_json();
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{event_type}: {errors:?}");
    }
}

#[test]
fn a_schema_rejects_data_the_type_would_reject() {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&read_schema("StatusRevoked"))
        .expect("schema compiles");
    let bad = serde_json::json!({"reason": "x", "effective_date": "2026-02-30", "extra": 1});
    assert!(!validator.is_valid(&bad));
}
