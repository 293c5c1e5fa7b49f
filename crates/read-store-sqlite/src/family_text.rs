//! A family id as the search table stores it: hyphenated lower-case text.

use registry_domain::FamilyId;
use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};

/// The text of a family id, kept beside the id it spells. It orders as the text does (SQLite
/// compares it byte by byte): fixed-width lower-case hex orders as the number it spells, so a
/// sort compares two integers, not two strings whose first bytes agree (ids are UUIDv7, made in
/// time order). A rebuild sorts its 2.4 million search keys by (kind, value, family) before the
/// load; comparing the families' text was a fifth of its write phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FamilyText {
    id: u128,
    text: [u8; 36],
}

impl From<FamilyId> for FamilyText {
    fn from(family: FamilyId) -> Self {
        let mut text = [0; 36];
        family.0.as_hyphenated().encode_lower(&mut text);
        Self {
            id: family.0.as_u128(),
            text,
        }
    }
}

impl ToSql for FamilyText {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(&self.text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn given_family_ids_when_sorted_then_they_are_in_the_order_of_their_stored_text() {
        let ids: Vec<FamilyId> = [
            u128::MAX,
            0,
            0x0192_0000_0000_7000_8000_0000_0000_00ff,
            0x0192_0000_0000_7000_8000_0000_0000_0a00,
            0x0192_0000_0000_7000_9000_0000_0000_0000,
            0xf000_0000_0000_0000_0000_0000_0000_0000,
        ]
        .into_iter()
        .chain((0..50).map(|_| Uuid::now_v7().as_u128()))
        .chain((0..50).map(|_| Uuid::new_v4().as_u128()))
        .map(|n| FamilyId(Uuid::from_u128(n)))
        .collect();
        let mut by_value: Vec<FamilyText> = ids.iter().map(|&f| FamilyText::from(f)).collect();
        by_value.sort();
        let mut by_text: Vec<String> = ids.iter().map(ToString::to_string).collect();
        by_text.sort();
        let stored: Vec<String> = by_value
            .iter()
            .map(|f| String::from_utf8(f.text.to_vec()).unwrap())
            .collect();
        assert_eq!(stored, by_text);
    }
}
