//! The JSON shapes of the API (API.md). Requests reject unknown fields; they are converted to the
//! domain's commands in one place each.

use chrono::{DateTime, NaiveDate, Utc};
use registry_domain as domain;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    Parent,
    Child,
}

/// Whether a child lives in the family's care; children in state care or whose parents lost
/// (under Moscow's law also: are restricted in) parental rights are listed but not counted.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Care {
    #[default]
    Family,
    StateCare,
    ParentalRightsLost,
    ParentalRightsRestricted,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemovalReason {
    MovedOut,
    ParentalRightsLost,
    StateCare,
    Deceased,
    Other,
}

impl From<Relation> for domain::Relation {
    fn from(r: Relation) -> Self {
        match r {
            Relation::Parent => domain::Relation::Parent,
            Relation::Child => domain::Relation::Child,
        }
    }
}

impl From<domain::Relation> for Relation {
    fn from(r: domain::Relation) -> Self {
        match r {
            domain::Relation::Parent => Relation::Parent,
            domain::Relation::Child => Relation::Child,
        }
    }
}

impl From<Care> for domain::Care {
    fn from(c: Care) -> Self {
        match c {
            Care::Family => domain::Care::Family,
            Care::StateCare => domain::Care::StateCare,
            Care::ParentalRightsLost => domain::Care::ParentalRightsLost,
            Care::ParentalRightsRestricted => domain::Care::ParentalRightsRestricted,
        }
    }
}

impl From<domain::Care> for Care {
    fn from(c: domain::Care) -> Self {
        match c {
            domain::Care::Family => Care::Family,
            domain::Care::StateCare => Care::StateCare,
            domain::Care::ParentalRightsLost => Care::ParentalRightsLost,
            domain::Care::ParentalRightsRestricted => Care::ParentalRightsRestricted,
        }
    }
}

impl From<RemovalReason> for domain::RemovalReason {
    fn from(r: RemovalReason) -> Self {
        match r {
            RemovalReason::MovedOut => domain::RemovalReason::MovedOut,
            RemovalReason::ParentalRightsLost => domain::RemovalReason::ParentalRightsLost,
            RemovalReason::StateCare => domain::RemovalReason::StateCare,
            RemovalReason::Deceased => domain::RemovalReason::Deceased,
            RemovalReason::Other => domain::RemovalReason::Other,
        }
    }
}

/// A member as sent by an officer.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    #[schema(min_length = 1, max_length = 100)]
    pub last_name: String,
    #[schema(min_length = 1, max_length = 100)]
    pub first_name: String,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub middle_name: Option<String>,
    #[serde(deserialize_with = "crate::wire::date")]
    pub birth_date: NaiveDate,
    pub relation: Relation,
    /// Last day of confirmed full-time study (children only).
    #[serde(default, deserialize_with = "crate::wire::optional_date")]
    pub student_until: Option<NaiveDate>,
    #[serde(default)]
    pub care: Option<Care>,
    /// СНИЛС (`XXX-XXX-XXX YY` or 11 digits; its check number is verified): how the member is
    /// found when they sign in through the city's identity provider.
    #[serde(default)]
    #[schema(example = "112-233-445 95", max_length = 20)]
    pub snils: Option<String>,
}

impl MemberInput {
    pub fn into_member(self, member_id: domain::MemberId) -> domain::Member {
        domain::Member {
            member_id,
            last_name: self.last_name,
            first_name: self.first_name,
            middle_name: self.middle_name,
            birth_date: self.birth_date,
            relation: self.relation.into(),
            student_until: self.student_until,
            care: self.care.unwrap_or_default().into(),
            snils: self.snils,
        }
    }
}

/// The decision behind a change.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    #[schema(min_length = 1, max_length = 64)]
    pub number: String,
    #[serde(deserialize_with = "crate::wire::date")]
    pub date: NaiveDate,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(min_length = 1, max_length = 500)]
    pub office: Option<String>,
    /// The status never runs past this day, if set.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::wire::optional_date"
    )]
    pub term_until: Option<NaiveDate>,
}

impl From<DecisionInput> for domain::Decision {
    fn from(d: DecisionInput) -> Self {
        domain::Decision {
            number: d.number,
            date: d.date,
            office: d.office,
            term_until: d.term_until,
        }
    }
}

impl From<domain::Decision> for DecisionInput {
    fn from(d: domain::Decision) -> Self {
        DecisionInput {
            number: d.number,
            date: d.date,
            office: d.office,
            term_until: d.term_until,
        }
    }
}

/// `POST /api/v1/families`
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    pub decision: DecisionInput,
    #[schema(min_items = 1, max_items = 64)]
    pub members: Vec<MemberInput>,
    /// The first day of validity (default: the decision's date).
    #[serde(default, deserialize_with = "crate::wire::optional_date")]
    pub valid_from: Option<NaiveDate>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StudentConfirmationInput {
    pub member_id: Uuid,
    #[serde(deserialize_with = "crate::wire::date")]
    pub student_until: NaiveDate,
}

/// `POST /api/v1/families/{family_id}/renewals`
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewRequest {
    pub decision: DecisionInput,
    #[serde(default)]
    pub student_confirmations: Option<Vec<StudentConfirmationInput>>,
}

/// `POST /api/v1/families/{family_id}/members`
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMemberRequest {
    pub member: MemberInput,
    #[serde(default)]
    pub decision: Option<DecisionInput>,
}

/// `POST /api/v1/families/{family_id}/members/{member_id}/removal`
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RemoveMemberRequest {
    pub reason: RemovalReason,
}

/// `PATCH /api/v1/families/{family_id}/members/{member_id}`: only the fields to change;
/// `middle_name: null` and `student_until: null` clear them.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CorrectMemberRequest {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub last_name: Option<String>,
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub first_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub middle_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::wire::optional_date")]
    pub birth_date: Option<NaiveDate>,
    #[serde(default)]
    pub relation: Option<Relation>,
    #[serde(default, deserialize_with = "crate::wire::present_date")]
    #[schema(value_type = Option<NaiveDate>)]
    pub student_until: Option<Option<NaiveDate>>,
    #[serde(default)]
    pub care: Option<Care>,
}

/// A field that is present (possibly `null`) deserializes to `Some(..)`.
fn present<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

impl From<CorrectMemberRequest> for domain::MemberChanges {
    fn from(r: CorrectMemberRequest) -> Self {
        domain::MemberChanges {
            last_name: r.last_name,
            first_name: r.first_name,
            middle_name: r.middle_name,
            birth_date: r.birth_date,
            relation: r.relation.map(Into::into),
            student_until: r.student_until,
            care: r.care.map(Into::into),
        }
    }
}

/// `POST /api/v1/families/{family_id}/revocation`
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
    #[serde(default)]
    pub decision: Option<DecisionInput>,
}

/// `POST /api/v1/families/{family_id}/erasure`
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ErasureRequest {
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
    pub decision: DecisionInput,
}

/// `POST /api/v1/families/{family_id}/certificate/reissue`
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReissueRequest {
    #[schema(min_length = 1, max_length = 500)]
    pub reason: String,
}

/// What every accepted command answers.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CommandResult {
    pub family_id: Uuid,
    /// The current certificate's token id (changes on reissue).
    pub certificate_id: Uuid,
    pub certificate_number: String,
    /// Revision of the family stream after the command (also the `ETag`).
    pub revision: u64,
    /// Global log position of the command's last event.
    pub position: u64,
    /// `active`, `not_yet_valid`, `expired`, `terminated` or `revoked`.
    pub state: String,
    pub valid_until: NaiveDate,
    pub verify_url: String,
    /// The new member's id (adding a member only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_id: Option<Uuid>,
}

/// A member in officer and auditor views.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MemberView {
    pub member_id: Uuid,
    pub last_name: String,
    pub first_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    /// `YYYY-MM-DD`; «сведения удалены» (like each name) once the family's personal data was
    /// erased.
    pub birth_date: String,
    pub relation: Relation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub student_until: Option<NaiveDate>,
    pub care: Care,
    /// СНИЛС, when recorded (officers and auditors only: never on a verifier's screen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snils: Option<String>,
    /// Whether the policy counts this member today.
    pub counted: bool,
}

/// `GET /api/v1/families/{family_id}`
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FamilyView {
    pub family_id: Uuid,
    pub certificate_id: Uuid,
    pub certificate_number: String,
    pub certificate_serial: u32,
    pub state: String,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    /// Why the status ends on `valid_until`, in Russian («до 30.04.2032 — в этот день младший
    /// ребёнок, Олег, достигает возраста 16 лет»).
    pub valid_until_reason: String,
    /// The same as data: `kind` (`age_limit`, `study_ends`, `study_age_limit`, `term`,
    /// `recorded`), the deciding child's `role` and `member_id`, the age and dates.
    #[schema(value_type = Object)]
    pub valid_until_basis: serde_json::Value,
    /// The preset the dates were derived with, and the act it implements.
    pub policy: String,
    pub policy_source: String,
    pub decision: DecisionInput,
    pub members: Vec<MemberView>,
    pub revision: u64,
    pub position: u64,
    pub verify_url: String,
    /// The instant the view was computed for (`as_of` queries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<DateTime<Utc>>,
}

/// A member as a verifier sees it, per the configured disclosure level.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VerifyMember {
    pub display_name: String,
    pub relation: Relation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<NaiveDate>,
    /// Instead of the birth date at the `minimal` level (children only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_year: Option<i32>,
}

/// `GET /api/v1/verify/{token}`
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VerifyResult {
    pub valid: bool,
    /// `active`, `expired`, `terminated`, `revoked`, `replaced` or `not_yet_valid` (before
    /// `valid_from`).
    pub state: String,
    /// Why it is not valid: `expired`, `terminated`, `revoked`, `replaced`, `not_yet_valid`,
    /// or `live_code_expired` (an app code past its lifetime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub certificate_number: String,
    /// Which issue of the certificate this QR belongs to (1, then 2 after a reissue...).
    pub certificate_serial: u32,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    /// The day the certificate was revoked, terminated or replaced (Moscow), when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_on: Option<NaiveDate>,
    pub checked_at: DateTime<Utc>,
    pub members: Vec<VerifyMember>,
    /// `static` (PDF or app card) or `live` (the app's rotating QR).
    pub qr_kind: String,
}

/// `GET /api/v1/me/certificate`
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HolderCard {
    #[serde(flatten)]
    pub certificate: VerifyResult,
    pub verify_url: String,
}

/// One event of a family's timeline.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct HistoryEvent {
    pub position: u64,
    pub revision: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub schema_version: u16,
    pub event_id: String,
    pub recorded_at: DateTime<Utc>,
    pub actor: ActorView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub decision: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ActorView {
    pub id: String,
    pub role: String,
}

/// `GET /api/v1/families/{family_id}/history`
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct History {
    pub family_id: Uuid,
    pub events: Vec<HistoryEvent>,
}

/// `GET /api/v1/me/certificate/live-qr`
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LiveQr {
    pub verify_url: String,
    pub expires_at: DateTime<Utc>,
}

/// A family search: exactly one of `certificate_number`, `last_name` with `birth_date`, or
/// `decision_number`; `after`: the `next` of the page before.
#[derive(Clone, Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchRequest {
    #[serde(default)]
    #[param(min_length = 1, max_length = 100)]
    #[schema(min_length = 1, max_length = 100)]
    pub certificate_number: Option<String>,
    /// A member's surname (any member; `ё` and `е` alike, any case).
    #[serde(default)]
    #[param(min_length = 1, max_length = 100)]
    #[schema(min_length = 1, max_length = 100)]
    pub last_name: Option<String>,
    #[serde(default, deserialize_with = "crate::wire::optional_date")]
    pub birth_date: Option<NaiveDate>,
    #[serde(default)]
    #[param(min_length = 1, max_length = 100)]
    #[schema(min_length = 1, max_length = 100)]
    pub decision_number: Option<String>,
    #[serde(default)]
    #[param(pattern = "^[0-9]{1,19}$")]
    #[schema(pattern = "^[0-9]{1,19}$")]
    pub after: Option<String>,
}

/// A member as a search result lists it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SummaryMember {
    pub last_name: String,
    pub first_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub middle_name: Option<String>,
    pub birth_date: NaiveDate,
    pub relation: Relation,
}

/// A family found.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FamilySummary {
    pub family_id: Uuid,
    pub certificate_number: String,
    pub certificate_serial: u32,
    pub state: String,
    pub valid_from: NaiveDate,
    pub valid_until: NaiveDate,
    pub members: Vec<SummaryMember>,
}

/// `GET /api/v1/families?...`, `POST /api/v1/families/search`: newest first.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SearchResult {
    pub families: Vec<FamilySummary>,
    /// Pass as `after` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}
