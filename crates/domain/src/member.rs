use crate::ids::MemberId;
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A member's place in the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    Parent,
    Child,
}

/// Whether a child lives in the family's care. Children in full state care and children whose
/// parents lost (or, under Moscow's law, are restricted in) parental rights stay on record; the
/// policy's `not_counted` says which of these it never counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Care {
    #[default]
    Family,
    StateCare,
    ParentalRightsLost,
    ParentalRightsRestricted,
}

impl Care {
    pub fn is_family(&self) -> bool {
        *self == Care::Family
    }
}

/// A member of a family as recorded in events.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub member_id: MemberId,
    pub last_name: String,
    pub first_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    pub birth_date: NaiveDate,
    pub relation: Relation,
    /// Last day of confirmed full-time study (children only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student_until: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Care::is_family")]
    pub care: Care,
    /// СНИЛС, printed form `XXX-XXX-XXX YY` (personal data: sealed at rest, erased with the
    /// family's key). How a member signed in through the city's identity provider is found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snils: Option<String>,
}

impl Member {
    /// This member's personal data was erased (the family's key is destroyed).
    pub fn is_erased(&self) -> bool {
        self.birth_date == crate::personal::erased_date()
    }

    /// The member with each personal field erased.
    pub fn erased(&self) -> Member {
        let text = crate::personal::ERASED_TEXT.to_string();
        Member {
            last_name: text.clone(),
            first_name: text.clone(),
            // Always present: whether there was one is personal too (and a rebuild cannot know).
            middle_name: Some(text.clone()),
            birth_date: crate::personal::erased_date(),
            // Absent stays absent: a rebuild from sealed events cannot tell the two apart either
            // (the sealed field is there or not), so this is not a new disclosure.
            snils: self.snils.as_ref().map(|_| text),
            ..self.clone()
        }
    }

    /// "Фамилия Имя Отчество", as on documents.
    pub fn full_name(&self) -> String {
        match &self.middle_name {
            Some(middle) => format!("{} {} {middle}", self.last_name, self.first_name),
            None => format!("{} {}", self.last_name, self.first_name),
        }
    }
}

/// The officer's decision behind a change: its number, date, issuing office and, optionally, the
/// term it grants (the status never runs past `term_until`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub number: String,
    pub date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub office: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term_until: Option<NaiveDate>,
}

/// Why a member left the certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    MovedOut,
    ParentalRightsLost,
    StateCare,
    Deceased,
    Other,
}
