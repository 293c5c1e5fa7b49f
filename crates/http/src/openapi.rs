//! The OpenAPI document, generated from the handlers and types. A copy is checked in as
//! `schemas/openapi.json`; a test fails when it is stale.

use crate::{api, document, dto, error, ops, verify};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Large-family certificate registry",
        description = "The system of record behind Moscow's digital large-family certificate (цифровое удостоверение многодетной семьи). Errors are application/problem+json (RFC 9457) with a stable `code`.",
        version = "1"
    ),
    paths(
        api::grant, api::renew, api::add_member, api::remove_member, api::correct_member,
        api::revoke, api::reissue, api::get_family, api::history,
        api::my_certificate, api::my_qr_svg, api::my_qr_png, api::my_live_qr,
        document::my_pdf, document::family_pdf,
        verify::verify_json, verify::keys,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
    ),
    components(schemas(
        dto::GrantRequest, dto::RenewRequest, dto::AddMemberRequest, dto::RemoveMemberRequest,
        dto::CorrectMemberRequest, dto::RevokeRequest, dto::ReissueRequest, dto::CommandResult,
        dto::FamilyView, dto::MemberView, dto::VerifyResult, dto::VerifyMember, dto::HolderCard,
        dto::History, dto::HistoryEvent, dto::LiveQr, error::Problem, error::ProblemField,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "officer", description = "Social-services officers (role `officer`)"),
        (name = "auditor", description = "Auditors (role `auditor`)"),
        (name = "holder", description = "A family member (role `holder`, bound to one family)"),
        (name = "verifier", description = "Public: anyone who scans a QR"),
        (name = "operations", description = "Health, readiness, metrics")
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The document as pretty JSON, as checked in.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default() + "\n"
}
