//! Which fields of the events are personal data, and what an erased one reads as.
//!
//! One list, used by the store that seals these fields at rest (`registry-personal-data`), by
//! the projections that redact what they hold when a family is erased, and by the pages that
//! show «сведения удалены». A personal field added to an event later goes into this list.

use chrono::NaiveDate;
use serde_json::{Map, Value};

/// The personal fields of any event object (a member, a member's changes).
pub const PERSONAL_FIELDS: [&str; 5] = [
    "last_name",
    "first_name",
    "middle_name",
    "birth_date",
    "snils",
];

/// What an erased text field reads as.
pub const ERASED_TEXT: &str = "сведения удалены";

/// What an erased date reads as (`0001-01-01`): a date no one living was born on, so the types
/// still hold.
pub fn erased_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// The erased value of one personal field.
pub fn erased_value(field: &str) -> Value {
    if field == "birth_date" {
        Value::String(erased_date().to_string())
    } else {
        Value::String(ERASED_TEXT.to_string())
    }
}

/// Replaces every personal field of every object in `value` by its erased value (a field that
/// is present stays present, so the shape and the types still hold).
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            redact_object(map);
            for v in map.values_mut() {
                redact(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

fn redact_object(map: &mut Map<String, Value>) {
    for field in PERSONAL_FIELDS {
        if let Some(v) = map.get_mut(field) {
            *v = erased_value(field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn given_nested_members_when_redacted_then_each_personal_field_reads_erased_and_the_rest_stays()
    {
        let mut v = json!({
            "decision": {"number": "Р-1", "date": "2026-01-10"},
            "members": [
                {"member_id": "m1", "last_name": "Иванова", "first_name": "Ольга",
                 "birth_date": "1986-04-12", "relation": "parent"},
                {"member_id": "m2", "changes": {"middle_name": null}}
            ]
        });
        redact(&mut v);
        assert_eq!(
            v,
            json!({
                "decision": {"number": "Р-1", "date": "2026-01-10"},
                "members": [
                    {"member_id": "m1", "last_name": ERASED_TEXT, "first_name": ERASED_TEXT,
                     "birth_date": "0001-01-01", "relation": "parent"},
                    {"member_id": "m2", "changes": {"middle_name": ERASED_TEXT}}
                ]
            })
        );
    }
}
