//! Officer, auditor and holder endpoints.

use crate::dto::*;
use crate::error::{ApiError, ApiResult};
use crate::extract::{family_id, parse_id, Caller, OfficerCommand, Segments};
use crate::state::AppState;
use crate::verify::verify_result;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use registry_access::AccessKind;
use registry_app::{new_certificate_id, new_family_id, new_member_id, CommandRequest, Role};
use registry_domain::{Command, Family, FamilyEvent, MemberId};
use serde::Deserialize;

const READERS: &[Role] = &[Role::Officer, Role::Auditor];

/// Runs an officer's command and answers the command result.
async fn run(
    state: &AppState,
    request: CommandRequest,
    created: StatusCode,
) -> ApiResult<Response> {
    let outcome = state.registry().execute(request).await?;
    let member_id = outcome.events.iter().find_map(|e| match e {
        FamilyEvent::MemberAdded(added) => Some(added.member.member_id.0),
        _ => None,
    });
    let today = state.registry().today();
    let family = &outcome.family;
    let body = CommandResult {
        family_id: family.family_id.0,
        certificate_id: family.certificate_id.0,
        certificate_number: family.certificate_number.clone(),
        revision: outcome.revision,
        position: outcome.position,
        state: family.state_on(today).as_str().to_string(),
        valid_until: family.valid_until,
        verify_url: state.verify_url(family.certificate_id),
        member_id,
    };
    Ok(with_etag(
        (created, Json(body)).into_response(),
        outcome.revision,
    ))
}

fn with_etag(mut response: Response, revision: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{revision}\"")) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

/// Grant the status to a new family.
///
/// Decides eligibility under the configured policy, records `StatusGranted` and answers once the certificate view shows it. With `Idempotency-Key` a repeat of the same request answers the same result and appends nothing.
#[utoipa::path(post, path = "/api/v1/families", tag = "officer",
    request_body = GrantRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Same key and body: same answer, no new event")),
    responses((status = 201, body = CommandResult), (status = 400, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn grant(
    State(state): State<AppState>,
    cmd: OfficerCommand<GrantRequest>,
) -> ApiResult<Response> {
    let family_id = new_family_id();
    let request = cmd.body.clone();
    let command = Command::Grant {
        decision: request.decision.into(),
        members: request
            .members
            .into_iter()
            .map(|m| m.into_member(new_member_id()))
            .collect(),
        valid_from: request.valid_from,
        certificate_number: registry_app::certificate_number(family_id),
        certificate_id: new_certificate_id(),
    };
    run(&state, cmd.request(family_id, command), StatusCode::CREATED).await
}

/// Renew (продлить) a family's status.
///
/// A new decision, with optional student confirmations; records `StatusRenewed` with the new `valid_until`.
#[utoipa::path(post, path = "/api/v1/families/{family_id}/renewals", tag = "officer",
    request_body = RenewRequest,
    params(("family_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = CommandResult), (status = 409, body = crate::error::Problem),
        (status = 412, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn renew(
    State(state): State<AppState>,
    Segments(family): Segments<String>,
    cmd: OfficerCommand<RenewRequest>,
) -> ApiResult<Response> {
    let family_id = family_id(&family)?;
    let request = cmd.body.clone();
    let command = Command::Renew {
        decision: request.decision.into(),
        student_confirmations: request
            .student_confirmations
            .unwrap_or_default()
            .into_iter()
            .map(|c| registry_domain::StudentConfirmation {
                member_id: MemberId(c.member_id),
                student_until: c.student_until,
            })
            .collect(),
    };
    run(&state, cmd.request(family_id, command), StatusCode::OK).await
}

/// Add a member (a child born or adopted, a new guardian).
///
/// Records `MemberAdded` with the resulting validity; the answer carries the new `member_id`.
#[utoipa::path(post, path = "/api/v1/families/{family_id}/members", tag = "officer",
    request_body = AddMemberRequest,
    params(("family_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 201, body = CommandResult)),
    security(("bearer" = [])))]
pub async fn add_member(
    State(state): State<AppState>,
    Segments(family): Segments<String>,
    cmd: OfficerCommand<AddMemberRequest>,
) -> ApiResult<Response> {
    let family_id = family_id(&family)?;
    let request = cmd.body.clone();
    let command = Command::AddMember {
        member: request.member.into_member(new_member_id()),
        decision: request.decision.map(Into::into),
    };
    run(&state, cmd.request(family_id, command), StatusCode::CREATED).await
}

/// Remove a member, with a reason.
///
/// Records `MemberRemoved`, and `StatusTerminated` in the same append when fewer children than the policy's minimum still count.
#[utoipa::path(post, path = "/api/v1/families/{family_id}/members/{member_id}/removal", tag = "officer",
    request_body = RemoveMemberRequest,
    params(("family_id" = Uuid, Path), ("member_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = CommandResult)),
    security(("bearer" = [])))]
pub async fn remove_member(
    State(state): State<AppState>,
    Segments((family, member)): Segments<(String, String)>,
    cmd: OfficerCommand<RemoveMemberRequest>,
) -> ApiResult<Response> {
    let family_id = family_id(&family)?;
    let member_id = MemberId(parse_id(&member, "no such member")?);
    let command = Command::RemoveMember {
        member_id,
        reason: cmd.body.reason.into(),
    };
    run(&state, cmd.request(family_id, command), StatusCode::OK).await
}

/// Correct a member's details.
///
/// Only the fields sent change; `middle_name: null` and `student_until: null` clear them. Records `MemberDetailsCorrected`.
#[utoipa::path(patch, path = "/api/v1/families/{family_id}/members/{member_id}", tag = "officer",
    request_body = CorrectMemberRequest,
    params(("family_id" = Uuid, Path), ("member_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = CommandResult)),
    security(("bearer" = [])))]
pub async fn correct_member(
    State(state): State<AppState>,
    Segments((family, member)): Segments<(String, String)>,
    cmd: OfficerCommand<CorrectMemberRequest>,
) -> ApiResult<Response> {
    let family_id = family_id(&family)?;
    let member_id = MemberId(parse_id(&member, "no such member")?);
    let command = Command::CorrectMember {
        member_id,
        changes: cmd.body.clone().into(),
    };
    run(&state, cmd.request(family_id, command), StatusCode::OK).await
}

/// Revoke a family's status.
///
/// Records `StatusRevoked`; from the answer on, every QR of the family scans as revoked.
#[utoipa::path(post, path = "/api/v1/families/{family_id}/revocation", tag = "officer",
    request_body = RevokeRequest,
    params(("family_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = CommandResult)),
    security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    Segments(family): Segments<String>,
    cmd: OfficerCommand<RevokeRequest>,
) -> ApiResult<Response> {
    let family_id = family_id(&family)?;
    let request = cmd.body.clone();
    let command = Command::Revoke {
        reason: request.reason,
        decision: request.decision.map(Into::into),
    };
    run(&state, cmd.request(family_id, command), StatusCode::OK).await
}

/// Erase the family's personal data (152-ФЗ, art. 21).
///
/// Allowed once the status has ended and the retention period (`--erasure-retention-days`) has
/// passed since; else 409 saying from when. Records `PersonalDataErased` and destroys the family's
/// data key: its QR codes are then not in the registry, and its views and history show
/// «сведения удалены» in place of each personal field.
#[utoipa::path(post, path = "/api/v1/families/{family_id}/erasure", tag = "officer",
    request_body = ErasureRequest,
    params(("family_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = CommandResult)),
    security(("bearer" = [])))]
pub async fn erase(
    State(state): State<AppState>,
    Segments(family): Segments<String>,
    cmd: OfficerCommand<ErasureRequest>,
) -> ApiResult<Response> {
    let family_id = family_id(&family)?;
    // Events recorded before personal data was sealed (schema version 1) keep it in the clear in
    // the log, which is never rewritten: erasing would empty the views and leave the log's copy.
    // Refused, saying so, rather than reported as done.
    let in_clear = state.registry().events(family_id).await?.iter().any(|e| {
        e.envelope.schema_version < 2
            && matches!(
                e.event,
                FamilyEvent::StatusGranted(_)
                    | FamilyEvent::MemberAdded(_)
                    | FamilyEvent::MemberDetailsCorrected(_)
            )
    });
    if in_clear {
        return Err(ApiError::Conflict(
            "this family's events were recorded before personal data was sealed (schema \
             version 1): the log keeps them in the clear, so erasure cannot make them gone; \
             it is refused"
                .into(),
        ));
    }
    let command = Command::ErasePersonalData {
        reason: cmd.body.reason.clone(),
        decision: cmd.body.decision.clone().into(),
        retention_days: state.config().erasure_retention_days,
    };
    let answer = run(&state, cmd.request(family_id, command), StatusCode::OK).await?;
    // The view has applied the erasure (the answer waits for it), so the family's key is
    // destroyed and its rows rewritten; now the old pages leave the read store's files.
    state.read().scrub().await?;
    Ok(answer)
}

/// Reissue the certificate (a lost phone, a leaked PDF).
///
/// Records `CertificateReissued` with a new QR token and the next serial; the old QR then scans as replaced.
#[utoipa::path(post, path = "/api/v1/families/{family_id}/certificate/reissue", tag = "officer",
    request_body = ReissueRequest,
    params(("family_id" = Uuid, Path), ("If-Match" = Option<String>, Header), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = CommandResult)),
    security(("bearer" = [])))]
pub async fn reissue(
    State(state): State<AppState>,
    Segments(family): Segments<String>,
    cmd: OfficerCommand<ReissueRequest>,
) -> ApiResult<Response> {
    let family_id = family_id(&family)?;
    let command = Command::ReissueCertificate {
        reason: cmd.body.reason.clone(),
        certificate_id: new_certificate_id(),
    };
    run(&state, cmd.request(family_id, command), StatusCode::OK).await
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FamilyQuery {
    /// An RFC 3339 instant: the family as it was then.
    as_of: Option<String>,
}

fn family_view(
    state: &AppState,
    family: &Family,
    revision: u64,
    position: u64,
    as_of: Option<DateTime<Utc>>,
) -> FamilyView {
    let today = match as_of {
        Some(at) => registry_domain::time::moscow_date(at),
        None => state.registry().today(),
    };
    let policy = state.registry().policy_of(family);
    let basis = registry_domain::validity_basis(&policy, family);
    FamilyView {
        family_id: family.family_id.0,
        certificate_id: family.certificate_id.0,
        certificate_number: family.certificate_number.clone(),
        certificate_serial: family.certificate_serial,
        state: family.state_on(today).as_str().to_string(),
        valid_from: family.valid_from,
        valid_until: family.valid_until,
        valid_until_reason: basis.russian(family.valid_until),
        valid_until_basis: serde_json::to_value(&basis).unwrap_or_default(),
        policy: family.policy.clone(),
        policy_source: policy.source.clone(),
        decision: family.decision.clone().into(),
        members: family
            .members
            .iter()
            .map(|m| MemberView {
                member_id: m.member_id.0,
                last_name: m.last_name.clone(),
                first_name: m.first_name.clone(),
                middle_name: m.middle_name.clone(),
                birth_date: if m.is_erased() {
                    registry_domain::personal::ERASED_TEXT.to_string()
                } else {
                    m.birth_date.to_string()
                },
                relation: m.relation.into(),
                student_until: m.student_until,
                care: m.care.into(),
                snils: m.snils.clone(),
                counted: policy.counts_on(&family.members, m, today),
            })
            .collect(),
        revision,
        position,
        verify_url: state.verify_url(family.certificate_id),
        as_of,
    }
}

/// A family's current view, or its view at an instant (`as_of`).
///
/// For officers and auditors. `as_of` replays the family's stream up to that instant.
#[utoipa::path(get, path = "/api/v1/families/{family_id}", tag = "officer",
    params(("family_id" = Uuid, Path), FamilyQuery),
    responses((status = 200, body = FamilyView), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn get_family(
    State(state): State<AppState>,
    caller: Caller,
    Segments(family): Segments<String>,
    query: Result<Query<FamilyQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    caller.require(READERS)?;
    let family_id = family_id(&family)?;
    let Query(query) = query.map_err(|e| {
        ApiError::Malformed(
            "invalid query".into(),
            vec![crate::error::ProblemField {
                field: "query".into(),
                message: e.body_text(),
            }],
        )
    })?;
    if let Some(raw) = query.as_of {
        let at = DateTime::parse_from_rfc3339(&raw)
            .map_err(|_| {
                ApiError::Malformed(
                    "invalid as_of".into(),
                    vec![crate::error::ProblemField {
                        field: "as_of".into(),
                        message: "an RFC 3339 instant, like 2026-11-25T12:00:00Z".into(),
                    }],
                )
            })?
            .with_timezone(&Utc);
        let then = state
            .registry()
            .as_of(family_id, at)
            .await?
            .ok_or(ApiError::NotFound(
                "the family did not exist at that instant",
            ))?;
        state
            .record_access(&caller, [family_id], AccessKind::FamilyAsOf)
            .await?;
        let view = family_view(&state, &then.family, then.revision, then.position, Some(at));
        return Ok(with_etag(Json(view).into_response(), then.revision));
    }
    let loaded = state
        .registry()
        .load(family_id)
        .await?
        .ok_or(ApiError::NotFound("no such family"))?;
    state
        .record_access(&caller, [family_id], AccessKind::FamilyView)
        .await?;
    let view = family_view(
        &state,
        &loaded.family,
        loaded.revision,
        loaded.position,
        None,
    );
    Ok(with_etag(Json(view).into_response(), loaded.revision))
}

/// A family's whole history, event by event.
///
/// Who (actor), when, what and why, in stream order.
#[utoipa::path(get, path = "/api/v1/families/{family_id}/history", tag = "auditor",
    params(("family_id" = Uuid, Path)),
    responses((status = 200, body = History), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Segments(family): Segments<String>,
) -> ApiResult<Json<History>> {
    caller.require(&[Role::Auditor, Role::Officer])?;
    let family_id = family_id(&family)?;
    let entries = crate::history::family_history(&state, family_id).await?;
    if entries.is_empty() {
        return Err(ApiError::NotFound("no such family"));
    }
    state
        .record_access(&caller, [family_id], AccessKind::History)
        .await?;
    let events = entries
        .into_iter()
        .map(
            |crate::history::HistoryEntry { row: r, data }| HistoryEvent {
                position: r.position,
                revision: r.revision,
                event_type: r.event_type,
                schema_version: r.schema_version,
                event_id: r.event_id,
                recorded_at: r.recorded_at,
                actor: ActorView {
                    id: r.actor_id,
                    role: r.actor_role,
                },
                reason: r.reason,
                decision: r.decision.and_then(|d| serde_json::from_str(&d).ok()),
                correlation_id: r.correlation_id,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            },
        )
        .collect();
    Ok(Json(History {
        family_id: family_id.0,
        events,
    }))
}

/// The holder's family, or the reason there is none.
async fn holder_row(
    state: &AppState,
    caller: &Caller,
) -> ApiResult<registry_read_store::CertificateRow> {
    caller.require(&[Role::Holder])?;
    let family = caller
        .family_id
        .ok_or(ApiError::Forbidden("this token is not bound to a family"))?;
    state
        .read()
        .certificate_of_family(family)
        .await?
        .ok_or(ApiError::NotFound("the family has no certificate"))
}

/// The holder's certificate card.
///
/// The same fields as a verifier's scan, with every name in full, and the verify URL of the QR.
#[utoipa::path(get, path = "/api/v1/me/certificate", tag = "holder",
    responses((status = 200, body = HolderCard), (status = 403, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn my_certificate(
    State(state): State<AppState>,
    caller: Caller,
) -> ApiResult<Json<HolderCard>> {
    let row = holder_row(&state, &caller).await?;
    let certificate = verify_result(
        &row,
        crate::state::Disclosure::Full,
        "static",
        state.registry().now(),
    );
    Ok(Json(HolderCard {
        certificate,
        verify_url: state.verify_url(row.token_id),
    }))
}

/// The holder's family when its certificate may be shown as proof (see
/// [`crate::document::require_showable`]).
async fn showable_holder_row(
    state: &AppState,
    caller: &Caller,
) -> ApiResult<registry_read_store::CertificateRow> {
    let row = holder_row(state, caller).await?;
    crate::document::require_showable(row.state_on(state.registry().today()))?;
    Ok(row)
}

/// The QR of the holder's certificate as SVG.
///
/// Refused (409) once the certificate is revoked, terminated or expired.
#[utoipa::path(get, path = "/api/v1/me/certificate/qr.svg", tag = "holder",
    responses((status = 200, content_type = "image/svg+xml", body = String)),
    security(("bearer" = [])))]
pub async fn my_qr_svg(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let row = showable_holder_row(&state, &caller).await?;
    let svg = registry_credential::qr_svg(&state.verify_url(row.token_id));
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// The QR of the holder's certificate as PNG.
///
/// Refused (409) once the certificate is revoked, terminated or expired.
#[utoipa::path(get, path = "/api/v1/me/certificate/qr.png", tag = "holder",
    responses((status = 200, content_type = "image/png", body = Vec<u8>)),
    security(("bearer" = [])))]
pub async fn my_qr_png(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let row = showable_holder_row(&state, &caller).await?;
    let png = registry_credential::qr_png(&state.verify_url(row.token_id), 8);
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

/// A short-lived signed verify URL for the app's rotating code.
///
/// Refused (409) once the certificate is revoked, terminated or expired.
#[utoipa::path(get, path = "/api/v1/me/certificate/live-qr", tag = "holder",
    responses((status = 200, body = LiveQr)),
    security(("bearer" = [])))]
pub async fn my_live_qr(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<LiveQr>> {
    let row = showable_holder_row(&state, &caller).await?;
    let now = state.registry().now();
    let expires_at = now + chrono::Duration::seconds(state.config().live_qr_seconds);
    let token =
        registry_credential::issue_live_token(&state.keys(), row.token_id, expires_at.timestamp());
    Ok(Json(LiveQr {
        verify_url: state.url_for_token(&token),
        expires_at,
    }))
}
