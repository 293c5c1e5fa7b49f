//! `family_history`: one row per event with who, when and why: the auditor's timeline. Pure:
//! events in, rows out. What each event recorded is not copied into the row: the timeline reads
//! it from the event store, where the family's personal fields are sealed and read as erased once
//! its key is destroyed (so an erasure has no copy here to rewrite).

use crate::{Families, Projection, ProjectionError};
use registry_app::EventMetadata;
use registry_domain::{FamilyEvent, FamilyId};
use registry_read_store::{Changes, HistoryRow, FAMILY_HISTORY};
use registry_store::RecordedEvent;

/// The family history projection.
#[derive(Clone, Copy, Debug, Default)]
pub struct FamilyHistory;

impl Projection for FamilyHistory {
    fn name(&self) -> &'static str {
        FAMILY_HISTORY
    }

    /// 2: rows without the event's data (read from the event store instead).
    fn version(&self) -> i64 {
        2
    }

    fn project(
        &self,
        _families: &mut Families,
        events: &[RecordedEvent],
        out: &mut Changes,
    ) -> Result<(), ProjectionError> {
        out.history.reserve(events.len());
        for e in events {
            if let Some(row) = history_row(e)? {
                out.history.push(row);
            }
        }
        Ok(())
    }
}

/// The reason and the decision an event records, for the timeline: the definition, which the
/// cheaper [`why_stored`] must agree with (the rebuild-equivalence test checks it).
pub fn reason_and_decision(event: &FamilyEvent) -> (Option<String>, Option<String>) {
    let decision = |d: &registry_domain::Decision| serde_json::to_string(d).ok();
    match event {
        FamilyEvent::StatusGranted(e) => (None, decision(&e.decision)),
        FamilyEvent::StatusRenewed(e) => (None, decision(&e.decision)),
        FamilyEvent::MemberAdded(e) => (None, e.decision.as_ref().and_then(decision)),
        FamilyEvent::MemberRemoved(e) => (
            serde_json::to_value(e.reason)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string)),
            None,
        ),
        FamilyEvent::MemberDetailsCorrected(_) => (Some("correction".into()), None),
        FamilyEvent::StatusTerminated(_) => (Some("not_enough_children".into()), None),
        FamilyEvent::StatusRevoked(e) => (
            Some(e.reason.clone()),
            e.decision.as_ref().and_then(decision),
        ),
        FamilyEvent::CertificateReissued(e) => (Some(e.reason.clone()), None),
        FamilyEvent::PersonalDataErased(e) => (Some(e.reason.clone()), decision(&e.decision)),
    }
}

/// The timeline row of a stored event (`None` for events outside family streams).
pub fn history_row(e: &RecordedEvent) -> Result<Option<HistoryRow>, ProjectionError> {
    let Some(family_id) = FamilyId::from_stream_name(&e.stream) else {
        return Ok(None);
    };
    let bad = |reason: String| ProjectionError::BadEvent {
        position: e.position,
        reason,
    };
    let (reason, decision) =
        why_stored(&e.event_type, e.schema_version, &e.data).map_err(|err| bad(err.to_string()))?;
    let metadata: EventMetadata =
        serde_json::from_str(&e.metadata).map_err(|err| bad(format!("metadata: {err}")))?;
    Ok(Some(HistoryRow {
        position: e.position,
        family_id,
        revision: e.revision,
        event_id: e.event_id.to_string(),
        event_type: e.event_type.clone(),
        schema_version: e.schema_version,
        recorded_at: e.recorded_at,
        actor_id: metadata.actor.id,
        actor_role: metadata.actor.role.as_str().to_string(),
        correlation_id: Some(metadata.correlation_id.to_string()),
        causation_id: metadata.causation_id.map(|c| c.to_string()),
        reason,
        decision,
    }))
}

/// The two fields of an event's stored data that the timeline shows, read without decoding the
/// whole event (a rebuild reads every event of the log; the certificate view decodes them fully
/// anyway). `decision` stays the JSON text it was stored as.
#[derive(serde::Deserialize)]
struct StoredWhy<'a> {
    #[serde(borrow, default)]
    reason: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    decision: Option<&'a serde_json::value::RawValue>,
}

/// [`reason_and_decision`] from the stored event: the same answer (a test holds them together),
/// cheaper.
fn why_stored(
    event_type: &str,
    schema_version: u16,
    data: &str,
) -> Result<(Option<String>, Option<String>), registry_domain::DecodeError> {
    if !registry_domain::EVENT_TYPES.contains(&event_type)
        || !(1..=FamilyEvent::SCHEMA_VERSION).contains(&schema_version)
    {
        // Unknown types and versions: let the full decoder say what is wrong.
        let event = FamilyEvent::decode(event_type, schema_version, data)?;
        return Ok(reason_and_decision(&event));
    }
    let stored: StoredWhy<'_> =
        serde_json::from_str(data).map_err(|source| registry_domain::DecodeError::Malformed {
            event_type: event_type.to_string(),
            source,
        })?;
    let reason = stored.reason.map(std::borrow::Cow::into_owned);
    let decision = stored.decision.map(|d| d.get().to_string());
    Ok(match event_type {
        "StatusGranted" | "StatusRenewed" | "MemberAdded" => (None, decision),
        "MemberRemoved" | "CertificateReissued" => (reason, None),
        "MemberDetailsCorrected" => (Some("correction".into()), None),
        "StatusTerminated" => (Some("not_enough_children".into()), None),
        // StatusRevoked
        _ => (reason, decision),
    })
}
