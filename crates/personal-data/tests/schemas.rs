//! `schemas/events/*.v2.schema.json`: each event type as stored from schema version 2 on, its
//! personal fields sealed (`"personal": {"fields", "sealed"}`). Generated from the version 1
//! schema (the events' shape) by one rule, checked in, and checked here against sealed events.
//! Regenerate with `UPDATE_SCHEMAS=1 cargo test -p registry-personal-data --test schemas`.
#![allow(clippy::unwrap_used)]

use registry_domain::personal::PERSONAL_FIELDS;
use registry_domain::{FamilyEvent, EVENT_TYPES};
use registry_personal_data::{seal_event, DataKey};
use serde_json::{json, Map, Value};
use std::path::PathBuf;

fn path(event_type: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../schemas/events")
        .join(format!("{event_type}.v2.schema.json"))
}

/// The sealed form of an object's personal fields.
fn sealed_definition() -> Value {
    json!({
        "description": "Personal fields sealed with the family's data key: `sealed` is base64 of a 24-byte XChaCha20-Poly1305 nonce followed by the ciphertext of the JSON object of the fields named in `fields`; the associated data is `{event_id}/{n}`, n counting the sealed objects of the event depth first (docs/DESIGN.md §9). Once the key is destroyed each named field reads as erased.",
        "type": "object",
        "additionalProperties": false,
        "required": ["fields", "sealed"],
        "properties": {
            "fields": {
                "type": "array",
                "items": {"enum": PERSONAL_FIELDS},
                "minItems": 1,
                "uniqueItems": true
            },
            "sealed": {"type": "string", "contentEncoding": "base64"}
        }
    })
}

/// Every object schema with personal properties loses them and gains `personal`.
fn seal_schema(node: &mut Value) {
    match node {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get_mut("properties") {
                let removed: Vec<String> = PERSONAL_FIELDS
                    .iter()
                    .filter(|f| props.remove(**f).is_some())
                    .map(|f| f.to_string())
                    .collect();
                if !removed.is_empty() {
                    props.insert(
                        "personal".into(),
                        json!({"$ref": "#/$defs/SealedPersonalData"}),
                    );
                    if let Some(Value::Array(required)) = map.get_mut("required") {
                        let had = required
                            .iter()
                            .any(|r| removed.iter().any(|f| r.as_str() == Some(f)));
                        required.retain(|r| !removed.iter().any(|f| r.as_str() == Some(f)));
                        if had {
                            required.push(Value::String("personal".into()));
                        }
                    }
                }
            }
            for v in map.values_mut() {
                seal_schema(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(seal_schema),
        _ => {}
    }
}

fn generated(event_type: &str) -> Value {
    let mut schema = FamilyEvent::json_schema(event_type).unwrap();
    seal_schema(&mut schema);
    let text = schema.to_string();
    if text.contains("SealedPersonalData") {
        let defs = schema
            .as_object_mut()
            .unwrap()
            .entry("$defs")
            .or_insert_with(|| Value::Object(Map::new()));
        defs.as_object_mut()
            .unwrap()
            .insert("SealedPersonalData".into(), sealed_definition());
    }
    schema
}

#[test]
fn checked_in_v2_schemas_match_the_sealing_rule() {
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    for event_type in EVENT_TYPES {
        let schema = generated(event_type);
        if update {
            let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            std::fs::write(path(event_type), text).unwrap();
        }
        let stored: Value =
            serde_json::from_str(&std::fs::read_to_string(path(event_type)).unwrap()).unwrap();
        assert_eq!(
            stored, schema,
            "schemas/events/{event_type}.v2 is stale: run UPDATE_SCHEMAS=1 cargo test -p registry-personal-data --test schemas"
        );
        jsonschema::draft202012::meta::validate(&stored).unwrap();
    }
}

#[test]
fn sealed_events_validate_against_v2_and_their_plain_form_does_not() {
    let member = json!({"member_id": "0193a1c2-0000-7000-8000-000000000001", "last_name": "Иванова",
        "first_name": "Ольга", "birth_date": "1986-04-12", "relation": "parent"});
    let decision = json!({"number": "Р-1", "date": "2026-11-20"});
    let samples = [
        (
            "StatusGranted",
            json!({
            "family_id": "0193a1c2-0000-7000-8000-0000000000f1",
            "certificate_id": "0193a1c2-0000-7000-8000-0000000000c1",
            "certificate_number": "77-0001", "certificate_serial": 1,
            "decision": decision, "policy": "moscow-2008", "members": [member],
            "valid_from": "2026-11-20", "valid_until": "2030-12-31"}),
        ),
        (
            "MemberAdded",
            json!({"member": member, "policy": "moscow-2008"}),
        ),
        (
            "MemberDetailsCorrected",
            json!({"member_id": "0193a1c2-0000-7000-8000-000000000001",
            "changes": {"last_name": "Петрова", "middle_name": null}, "policy": "moscow-2008"}),
        ),
        (
            "StatusRevoked",
            json!({"reason": "переезд", "effective_date": "2026-11-25"}),
        ),
    ];
    let key = DataKey::generate();
    for (event_type, plain) in samples {
        let schema: Value =
            serde_json::from_str(&std::fs::read_to_string(path(event_type)).unwrap()).unwrap();
        let validator = jsonschema::draft202012::new(&schema).unwrap();
        let sealed: Value = serde_json::from_str(
            &seal_event(&plain.to_string(), uuid::Uuid::now_v7(), &key).unwrap(),
        )
        .unwrap();
        assert!(validator.is_valid(&sealed), "{event_type}: {sealed}");
        if sealed != plain {
            assert!(
                !validator.is_valid(&plain),
                "{event_type}: plain data is not the stored form"
            );
        }
    }
}
