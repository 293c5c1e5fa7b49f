//! The certificate PDF for holders and officers (the CLI prints the same document).

use crate::error::{ApiError, ApiResult};
use crate::extract::{family_id, Caller, Segments};
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use registry_access::AccessKind;
use registry_app::Role;
use registry_credential::{certificate_pdf, CertificatePdf, PdfMember};
use registry_domain::{validity_basis, CertificateState, Family, Policy, Relation};

/// What the PDF of a family's current certificate shows; `policy` is the preset its dates were
/// derived with (for the reason of `valid_until`).
pub fn certificate_document(
    family: &Family,
    policy: &Policy,
    verify_url: String,
    created_at: chrono::DateTime<chrono::Utc>,
) -> CertificatePdf {
    CertificatePdf {
        certificate_number: family.certificate_number.clone(),
        serial: family.certificate_serial,
        members: family
            .members
            .iter()
            .map(|m| PdfMember {
                full_name: [
                    Some(m.last_name.as_str()),
                    Some(m.first_name.as_str()),
                    m.middle_name.as_deref(),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
                relation: match m.relation {
                    Relation::Parent => "родитель".into(),
                    Relation::Child => "ребёнок".into(),
                },
                birth_date: m.birth_date,
            })
            .collect(),
        valid_from: family.valid_from,
        valid_until: family.valid_until,
        valid_until_reason: Some(validity_basis(policy, family).russian(family.valid_until)),
        issued_on: family.issued_on,
        decision_number: family.decision.number.clone(),
        decision_date: family.decision.date,
        office: family.decision.office.clone(),
        verify_url,
        created_at,
    }
}

/// A document or a code that a family shows as proof exists only while the certificate can be
/// valid (active, or not yet valid): never a valid-looking PDF or QR for a revoked, terminated,
/// expired or replaced one.
pub fn require_showable(state: CertificateState) -> ApiResult<()> {
    match state {
        CertificateState::Active | CertificateState::NotYetValid => Ok(()),
        other => Err(ApiError::Conflict(format!(
            "the certificate is {}: there is no valid document or code to show",
            other.as_str()
        ))),
    }
}

fn pdf_response(state: &AppState, family: &Family) -> ApiResult<Response> {
    require_showable(family.state_on(state.registry().today()))?;
    let policy = state.registry().policy_of(family);
    let document = certificate_document(
        family,
        &policy,
        state.verify_url(family.certificate_id),
        state.registry().now(),
    );
    let bytes = certificate_pdf(&document)
        .ok_or_else(|| ApiError::internal("the PDF fonts could not be read"))?;
    metrics::counter!("certificate_pdfs_total").increment(1);
    Ok((
        [
            (header::CONTENT_TYPE, "application/pdf".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "inline; filename=\"certificate-{}.pdf\"",
                    family.certificate_number
                ),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// The holder's certificate as a PDF (A4, Russian, with the QR).
///
/// Refused (409) once the certificate is revoked, terminated or expired: never a valid-looking document for an invalid certificate.
#[utoipa::path(get, path = "/api/v1/me/certificate.pdf", tag = "holder",
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>)),
    security(("bearer" = [])))]
pub async fn my_pdf(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(&[Role::Holder])?;
    let family = caller
        .family_id
        .ok_or(ApiError::Forbidden("this token is not bound to a family"))?;
    let row = state
        .read()
        .certificate_of_family(family)
        .await?
        .ok_or(ApiError::NotFound("the family has no certificate"))?;
    require_showable(row.state_on(state.registry().today()))?;
    pdf_response(&state, &row.family)
}

/// A family's certificate as a PDF, for officers.
///
/// Refused (409) once the certificate is revoked, terminated or expired.
#[utoipa::path(get, path = "/api/v1/families/{family_id}/certificate.pdf", tag = "officer",
    params(("family_id" = uuid::Uuid, Path)),
    responses((status = 200, content_type = "application/pdf", body = Vec<u8>), (status = 404, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn family_pdf(
    State(state): State<AppState>,
    caller: Caller,
    Segments(family): Segments<String>,
) -> ApiResult<Response> {
    caller.require(&[Role::Officer])?;
    let family_id = family_id(&family)?;
    let loaded = state
        .registry()
        .load(family_id)
        .await?
        .ok_or(ApiError::NotFound("no such family"))?;
    require_showable(loaded.family.state_on(state.registry().today()))?;
    state
        .record_access(&caller, [family_id], AccessKind::Pdf)
        .await?;
    pdf_response(&state, &loaded.family)
}
