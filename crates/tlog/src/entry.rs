//! The bytes of a log entry: how a stored event becomes a leaf of the tree.
//!
//! An entry is the RFC 8785 (JCS) canonical JSON of the event's envelope and payload *as stored*:
//! an object with exactly these members, sorted by name, no insignificant whitespace, strings
//! escaped minimally (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control characters as
//! `\u00xx`), non-ASCII characters as UTF-8:
//!
//! | member | value |
//! |---|---|
//! | `data` | the stored payload's JSON text, as a string (sealed fields stay ciphertext) |
//! | `event_id` | the event id, lower-case hyphenated UUID |
//! | `event_type` | the event type name |
//! | `metadata` | the stored metadata's JSON text, as a string |
//! | `recorded_at` | RFC 3339 UTC with exactly six fractional digits, `Z` |
//! | `revision` | the event's revision in its stream (from 0) |
//! | `schema_version` | the payload's schema version |
//! | `stream` | the stream name |
//!
//! The global position is not in the entry: it is the leaf's place in the tree (leaf `i` is the
//! `i`-th event in position order), and positions are the backend's business (byte offsets on
//! KurrentDB). Payload and metadata are kept as the text the store returns, not re-encoded, so
//! the hash is of exactly what is stored. `docs/transparency-log.md` states the same for third
//! parties.

use registry_store::RecordedEvent;
use serde::Serialize;

/// The members of an entry, declared in sorted order: serde_json writes them in declaration
/// order and escapes strings as RFC 8785 does, so its output is the canonical form.
#[derive(Serialize)]
struct Entry<'a> {
    data: &'a str,
    event_id: String,
    event_type: &'a str,
    metadata: &'a str,
    recorded_at: String,
    revision: u64,
    schema_version: u16,
    stream: &'a str,
}

/// The canonical bytes of a stored event.
pub fn entry_bytes(event: &RecordedEvent) -> Vec<u8> {
    let entry = Entry {
        data: &event.data,
        event_id: event.event_id.hyphenated().to_string(),
        event_type: &event.event_type,
        metadata: &event.metadata,
        recorded_at: event
            .recorded_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        revision: event.revision,
        schema_version: event.schema_version,
        stream: &event.stream,
    };
    // Serialising a struct of strings and integers cannot fail.
    serde_json::to_vec(&entry).unwrap_or_default()
}

/// The leaf hash of a stored event: SHA-256(0x00 ‖ entry), RFC 9162 §2.1.1.
pub fn leaf_hash(event: &RecordedEvent) -> tlog_tiles::Hash {
    tlog_tiles::record_hash(&entry_bytes(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use uuid::Uuid;

    fn event(data: &str) -> RecordedEvent {
        RecordedEvent {
            position: 7,
            event_id: Uuid::parse_str("0193a5b0-7e1f-7c3a-9b2d-4f5e6a7b8c9d").unwrap(),
            stream: "family-0193a5b0-0000-7000-8000-000000000001".into(),
            revision: 2,
            event_type: "StatusGranted".into(),
            schema_version: 1,
            data: data.into(),
            metadata: r#"{"actor":"officer"}"#.into(),
            recorded_at: Utc.with_ymd_and_hms(2026, 12, 2, 14, 30, 5).unwrap()
                + chrono::Duration::nanoseconds(120_000),
        }
    }

    #[test]
    fn given_a_stored_event_when_encoded_then_members_are_sorted_and_payload_is_a_string() {
        let bytes = entry_bytes(&event("{\"a\":\"Иванова\\n\",\"b\":1}"));
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            concat!(
                r#"{"data":"{\"a\":\"Иванова\\n\",\"b\":1}","#,
                r#""event_id":"0193a5b0-7e1f-7c3a-9b2d-4f5e6a7b8c9d","event_type":"StatusGranted","#,
                r#""metadata":"{\"actor\":\"officer\"}","recorded_at":"2026-12-02T14:30:05.000120Z","#,
                r#""revision":2,"schema_version":1,"#,
                r#""stream":"family-0193a5b0-0000-7000-8000-000000000001"}"#
            )
        );
    }

    #[test]
    fn given_a_control_character_when_encoded_then_it_is_a_lower_case_u_escape() {
        let bytes = entry_bytes(&event("\u{1f}"));
        assert!(String::from_utf8(bytes)
            .unwrap()
            .starts_with(r#"{"data":"\u001f","#));
    }

    #[test]
    fn given_one_changed_byte_when_hashed_then_the_leaf_differs() {
        assert_ne!(
            leaf_hash(&event("{\"a\":1}")),
            leaf_hash(&event("{\"a\":2}"))
        );
        assert_eq!(
            leaf_hash(&event("{\"a\":1}")),
            leaf_hash(&event("{\"a\":1}"))
        );
    }
}
