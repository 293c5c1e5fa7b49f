//! Sealing the personal fields of one event's JSON, and opening them.
//!
//! Every object of the event data that has personal fields loses them and gains
//! `"personal": {"fields": [names], "sealed": base64(nonce ‖ ciphertext)}`, where the plaintext is
//! the JSON object of those fields and the AEAD's associated data is `event_id/n` (the n-th
//! sealed object of the event, depth first), so a sealed value cannot be moved to another event
//! or member. The field names stay in the clear: they say which fields read as erased once the
//! key is gone, so the shape and the types still hold. `docs/DESIGN.md` §9.

use crate::kek::DataKey;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use registry_domain::personal::{erased_value, PERSONAL_FIELDS};
use serde_json::{Map, Value};
use uuid::Uuid;

/// The property that holds an object's sealed personal fields.
pub const SEALED: &str = "personal";

/// Whether event data may hold sealed fields: the property's name, quoted, appears in it (a
/// cheap test before parsing).
pub fn has_sealed(data: &str) -> bool {
    data.contains("\"personal\"")
}

#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("event data is not JSON")]
    NotJson,
    #[error("sealed personal data of event {0} does not open with its family's key")]
    Tampered(Uuid),
}

fn aad(event_id: Uuid, n: usize) -> Vec<u8> {
    format!("{event_id}/{n}").into_bytes()
}

/// `data` with every object's personal fields sealed with `key`.
pub fn seal_event(data: &str, event_id: Uuid, key: &DataKey) -> Result<String, SealError> {
    let mut value: Value = serde_json::from_str(data).map_err(|_| SealError::NotJson)?;
    let mut n = 0;
    seal_value(&mut value, &mut |plain| {
        let sealed = key.seal(plain, &aad(event_id, n));
        n += 1;
        STANDARD.encode(sealed)
    });
    Ok(value.to_string())
}

fn seal_value(value: &mut Value, seal: &mut impl FnMut(&[u8]) -> String) {
    match value {
        Value::Object(map) => {
            let mut personal = Map::new();
            for field in PERSONAL_FIELDS {
                if let Some(v) = map.remove(field) {
                    personal.insert(field.to_string(), v);
                }
            }
            for v in map.values_mut() {
                seal_value(v, seal);
            }
            if !personal.is_empty() {
                let fields: Vec<Value> = personal.keys().cloned().map(Value::String).collect();
                let plain = Value::Object(personal).to_string();
                let mut sealed = Map::new();
                sealed.insert("fields".into(), Value::Array(fields));
                sealed.insert("sealed".into(), Value::String(seal(plain.as_bytes())));
                map.insert(SEALED.into(), Value::Object(sealed));
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| seal_value(v, seal)),
        _ => {}
    }
}

/// `data` with its sealed fields opened with `key`, or, without a key (destroyed), each sealed
/// field as erased. Data with nothing sealed is returned as it is.
pub fn open_event(data: &str, event_id: Uuid, key: Option<&DataKey>) -> Result<String, SealError> {
    if !has_sealed(data) {
        return Ok(data.to_string());
    }
    let mut value: Value = serde_json::from_str(data).map_err(|_| SealError::NotJson)?;
    let mut n = 0;
    let mut failed = false;
    open_value(&mut value, &mut |sealed| {
        let this = n;
        n += 1;
        let key = key?;
        let plain = STANDARD
            .decode(sealed)
            .ok()
            .and_then(|bytes| key.open(&bytes, &aad(event_id, this)));
        match plain.and_then(|p| serde_json::from_slice::<Map<String, Value>>(&p).ok()) {
            Some(fields) => Some(fields),
            None => {
                failed = true;
                None
            }
        }
    });
    if failed {
        return Err(SealError::Tampered(event_id));
    }
    Ok(value.to_string())
}

fn open_value(value: &mut Value, open: &mut impl FnMut(&str) -> Option<Map<String, Value>>) {
    match value {
        Value::Object(map) => {
            let sealed = match map.get(SEALED) {
                Some(Value::Object(s)) if s.contains_key("sealed") => map.remove(SEALED),
                _ => None,
            };
            for v in map.values_mut() {
                open_value(v, open);
            }
            if let Some(Value::Object(s)) = sealed {
                let text = s.get("sealed").and_then(Value::as_str).unwrap_or_default();
                match open(text) {
                    Some(fields) => map.extend(fields),
                    None => {
                        let names = s.get("fields").and_then(Value::as_array);
                        for name in names.into_iter().flatten().filter_map(Value::as_str) {
                            if PERSONAL_FIELDS.contains(&name) {
                                map.insert(name.to_string(), erased_value(name));
                            }
                        }
                    }
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| open_value(v, open)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use registry_domain::personal::{redact, ERASED_TEXT};
    use serde_json::json;

    fn granted() -> Value {
        json!({
            "family_id": "f",
            "decision": {"number": "Р-1", "date": "2026-01-10"},
            "members": [
                {"member_id": "m1", "last_name": "Иванова", "first_name": "Ольга",
                 "middle_name": "Игоревна", "birth_date": "1986-04-12", "relation": "parent"},
                {"member_id": "m2", "last_name": "Иванов", "first_name": "Пётр",
                 "birth_date": "2015-03-01", "relation": "child"}
            ]
        })
    }

    #[test]
    fn given_an_event_when_sealed_then_no_personal_value_is_in_the_clear_and_it_opens_back() {
        let key = DataKey::generate();
        let id = Uuid::now_v7();
        let plain = granted().to_string();
        let sealed = seal_event(&plain, id, &key).unwrap();
        for secret in [
            "Иванова",
            "Ольга",
            "Игоревна",
            "1986-04-12",
            "2015-03-01",
            "Пётр",
        ] {
            assert!(!sealed.contains(secret), "{secret} in {sealed}");
        }
        assert!(sealed.contains("Р-1"), "the rest stays readable");
        let opened: Value =
            serde_json::from_str(&open_event(&sealed, id, Some(&key)).unwrap()).unwrap();
        assert_eq!(opened, granted());
    }

    #[test]
    fn given_a_destroyed_key_when_opened_then_each_sealed_field_reads_as_the_redaction_of_the_plain(
    ) {
        let key = DataKey::generate();
        let id = Uuid::now_v7();
        let sealed = seal_event(&granted().to_string(), id, &key).unwrap();
        let erased: Value = serde_json::from_str(&open_event(&sealed, id, None).unwrap()).unwrap();
        let mut redacted = granted();
        redact(&mut redacted);
        assert_eq!(erased, redacted);
        assert_eq!(erased["members"][0]["last_name"], ERASED_TEXT);
    }

    #[test]
    fn given_a_sealed_value_moved_to_another_event_when_opened_then_it_is_refused() {
        let key = DataKey::generate();
        let sealed = seal_event(&granted().to_string(), Uuid::now_v7(), &key).unwrap();
        assert!(matches!(
            open_event(&sealed, Uuid::now_v7(), Some(&key)),
            Err(SealError::Tampered(_))
        ));
        assert!(open_event(&sealed, Uuid::now_v7(), Some(&DataKey::generate())).is_err());
    }

    #[test]
    fn given_data_without_personal_fields_when_sealed_and_opened_then_it_is_unchanged() {
        let key = DataKey::generate();
        let id = Uuid::now_v7();
        let plain = json!({"reason": "утерян", "effective_date": "2026-01-01"});
        let sealed = seal_event(&plain.to_string(), id, &key).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&sealed).unwrap(), plain);
        assert_eq!(open_event(&sealed, id, None).unwrap(), sealed);
    }
}
