//! The event catalogue, schema version 1. Events are past-tense facts and carry every derived value
//! (such as the resulting `valid_until`) as it was decided, so replay never re-applies a policy.

use crate::command::{MemberChanges, StudentConfirmation};
use crate::ids::{CertificateId, FamilyId, MemberId};
use crate::member::{Decision, Member, RemovalReason};
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// First grant of the status after a positive decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusGranted {
    pub family_id: FamilyId,
    pub certificate_id: CertificateId,
    pub certificate_number: String,
    pub certificate_serial: u32,
    pub decision: Decision,
    pub policy: String,
    pub members: Vec<Member>,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
}

/// Renewal (продление): a new decision, new student confirmations, a new `valid_until`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRenewed {
    pub decision: Decision,
    #[serde(default)]
    pub student_confirmations: Vec<StudentConfirmation>,
    pub policy: String,
    pub valid_until: NaiveDate,
}

/// A child born or adopted, a new guardian. `valid_until` is the resulting validity, absent when
/// the status is terminated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberAdded {
    pub member: Member,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
}

/// A member left the certificate. `valid_until` is the resulting validity, absent when the status
/// is (or becomes, with a `StatusTerminated` in the same append) terminated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRemoved {
    pub member_id: MemberId,
    pub reason: RemovalReason,
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
}

/// A typo fixed, a changed surname: only the changed fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberDetailsCorrected {
    pub member_id: MemberId,
    pub changes: MemberChanges,
    pub policy: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub valid_until: Option<NaiveDate>,
}

/// Why a status ended on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TerminationReason {
    /// Fewer than the policy's minimum of counted children.
    NotEnoughChildren,
}

/// The family no longer qualifies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusTerminated {
    pub reason: TerminationReason,
    pub effective_date: NaiveDate,
    pub counted_children: u32,
    pub policy: String,
}

/// An officer revoked the status (wrong data, fraud, moved away).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRevoked {
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    pub effective_date: NaiveDate,
}

/// A new certificate (new QR token id, next serial) replaces the old one, whose QR then shows
/// "replaced".
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertificateReissued {
    pub certificate_id: CertificateId,
    pub certificate_serial: u32,
    pub previous_certificate_id: CertificateId,
    pub reason: String,
    /// The issue date printed on the new certificate.
    pub issued_on: NaiveDate,
}

/// Every event of a family stream.
/// The family's personal data was erased (152-ФЗ, art. 21): its data key is destroyed, and
/// every personal field of its events reads as erased from now on. Nothing personal is in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonalDataErased {
    pub reason: String,
    pub decision: Decision,
    pub erased_on: NaiveDate,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FamilyEvent {
    StatusGranted(StatusGranted),
    StatusRenewed(StatusRenewed),
    MemberAdded(MemberAdded),
    MemberRemoved(MemberRemoved),
    MemberDetailsCorrected(MemberDetailsCorrected),
    StatusTerminated(StatusTerminated),
    StatusRevoked(StatusRevoked),
    CertificateReissued(CertificateReissued),
    PersonalDataErased(PersonalDataErased),
}

/// Every event type name, in catalogue order.
pub const EVENT_TYPES: [&str; 9] = [
    "StatusGranted",
    "StatusRenewed",
    "MemberAdded",
    "MemberRemoved",
    "MemberDetailsCorrected",
    "StatusTerminated",
    "StatusRevoked",
    "CertificateReissued",
    "PersonalDataErased",
];

/// A stored event could not be read as a domain event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    #[error("unsupported schema version {version} of {event_type}")]
    UnsupportedVersion { event_type: String, version: u16 },
    #[error("malformed {event_type} data: {source}")]
    Malformed {
        event_type: String,
        #[source]
        source: serde_json::Error,
    },
}

impl FamilyEvent {
    /// The schema version written for new events (2: personal fields sealed at rest).
    pub const SCHEMA_VERSION: u16 = 2;

    pub fn event_type(&self) -> &'static str {
        match self {
            FamilyEvent::StatusGranted(_) => "StatusGranted",
            FamilyEvent::StatusRenewed(_) => "StatusRenewed",
            FamilyEvent::MemberAdded(_) => "MemberAdded",
            FamilyEvent::MemberRemoved(_) => "MemberRemoved",
            FamilyEvent::MemberDetailsCorrected(_) => "MemberDetailsCorrected",
            FamilyEvent::StatusTerminated(_) => "StatusTerminated",
            FamilyEvent::StatusRevoked(_) => "StatusRevoked",
            FamilyEvent::CertificateReissued(_) => "CertificateReissued",
            FamilyEvent::PersonalDataErased(_) => "PersonalDataErased",
        }
    }

    /// The event's data as JSON (the envelope is the store's business).
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            FamilyEvent::StatusGranted(e) => serde_json::to_value(e),
            FamilyEvent::StatusRenewed(e) => serde_json::to_value(e),
            FamilyEvent::MemberAdded(e) => serde_json::to_value(e),
            FamilyEvent::MemberRemoved(e) => serde_json::to_value(e),
            FamilyEvent::MemberDetailsCorrected(e) => serde_json::to_value(e),
            FamilyEvent::StatusTerminated(e) => serde_json::to_value(e),
            FamilyEvent::StatusRevoked(e) => serde_json::to_value(e),
            FamilyEvent::CertificateReissued(e) => serde_json::to_value(e),
            FamilyEvent::PersonalDataErased(e) => serde_json::to_value(e),
        };
        // Plain structs of strings, dates and ids always serialize.
        value.unwrap_or(serde_json::Value::Null)
    }

    /// Reads a stored event. This is the one place where older schema versions are upcast to the
    /// current shape. Version 2 has the shape of version 1 (`schemas/events/*.v1.schema.json`);
    /// at rest its personal fields are sealed with the family's key (`*.v2.schema.json`), and
    /// the store opens them before anything decodes the event (`registry-personal-data`,
    /// docs/DESIGN.md §9). Version 1 events were written before that, in the clear, and are read
    /// as they are.
    pub fn decode(
        event_type: &str,
        schema_version: u16,
        data: &str,
    ) -> Result<FamilyEvent, DecodeError> {
        if !EVENT_TYPES.contains(&event_type) {
            return Err(DecodeError::UnknownType(event_type.to_string()));
        }
        if !(1..=Self::SCHEMA_VERSION).contains(&schema_version) {
            return Err(DecodeError::UnsupportedVersion {
                event_type: event_type.to_string(),
                version: schema_version,
            });
        }
        fn parse<T: serde::de::DeserializeOwned>(
            event_type: &str,
            data: &str,
        ) -> Result<T, DecodeError> {
            serde_json::from_str(data).map_err(|source| DecodeError::Malformed {
                event_type: event_type.to_string(),
                source,
            })
        }
        Ok(match event_type {
            "StatusGranted" => FamilyEvent::StatusGranted(parse(event_type, data)?),
            "StatusRenewed" => FamilyEvent::StatusRenewed(parse(event_type, data)?),
            "MemberAdded" => FamilyEvent::MemberAdded(parse(event_type, data)?),
            "MemberRemoved" => FamilyEvent::MemberRemoved(parse(event_type, data)?),
            "MemberDetailsCorrected" => {
                FamilyEvent::MemberDetailsCorrected(parse(event_type, data)?)
            }
            "StatusTerminated" => FamilyEvent::StatusTerminated(parse(event_type, data)?),
            "StatusRevoked" => FamilyEvent::StatusRevoked(parse(event_type, data)?),
            "PersonalDataErased" => FamilyEvent::PersonalDataErased(parse(event_type, data)?),
            _ => FamilyEvent::CertificateReissued(parse(event_type, data)?),
        })
    }

    /// The JSON Schema (2020-12) of one event type's data, as checked in under `schemas/events/`.
    pub fn json_schema(event_type: &str) -> Option<serde_json::Value> {
        let schema = match event_type {
            "StatusGranted" => schemars::schema_for!(StatusGranted),
            "StatusRenewed" => schemars::schema_for!(StatusRenewed),
            "MemberAdded" => schemars::schema_for!(MemberAdded),
            "MemberRemoved" => schemars::schema_for!(MemberRemoved),
            "MemberDetailsCorrected" => schemars::schema_for!(MemberDetailsCorrected),
            "StatusTerminated" => schemars::schema_for!(StatusTerminated),
            "StatusRevoked" => schemars::schema_for!(StatusRevoked),
            "CertificateReissued" => schemars::schema_for!(CertificateReissued),
            "PersonalDataErased" => schemars::schema_for!(PersonalDataErased),
            _ => return None,
        };
        Some(schema.to_value())
    }

    /// The resulting validity this event records, if it records one.
    pub fn recorded_valid_until(&self) -> Option<NaiveDate> {
        match self {
            FamilyEvent::StatusGranted(e) => Some(e.valid_until),
            FamilyEvent::StatusRenewed(e) => Some(e.valid_until),
            FamilyEvent::MemberAdded(e) => e.valid_until,
            FamilyEvent::MemberRemoved(e) => e.valid_until,
            FamilyEvent::MemberDetailsCorrected(e) => e.valid_until,
            _ => None,
        }
    }

    /// The family id, when the event carries it (only the grant does; the stream name carries it
    /// for the rest).
    pub fn family_id(&self) -> Option<FamilyId> {
        match self {
            FamilyEvent::StatusGranted(e) => Some(e.family_id),
            _ => None,
        }
    }
}
