//! The OpenAPI document, generated from the handlers and types. A copy is checked in as
//! `schemas/openapi.json`; a test fails when it is stale.
//!
//! Every operation lists every problem it can answer ([`PROBLEMS`], as
//! `application/problem+json`), and the command headers their formats; schemathesis in CI holds
//! the server to this document.

use crate::{api, document, dto, error, ops, search, verify};
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
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
        api::revoke, api::erase, api::reissue, crate::access_log::mine,
        crate::access_log::of_family, crate::access_log::of_actor, api::get_family, api::history,
        search::search_by_query, search::search_by_body,
        api::my_certificate, api::my_qr_svg, api::my_qr_png, api::my_live_qr,
        document::my_pdf, document::family_pdf,
        verify::verify_json, verify::verify_page, verify::keys,
        crate::log::checkpoint, crate::log::checkpoint_of, crate::log::key, crate::log::cosign, crate::log::inclusion,
        crate::log::consistency,
        ops::healthz, ops::readyz, ops::metrics, ops::openapi,
    ),
    components(schemas(
        dto::GrantRequest, dto::RenewRequest, dto::AddMemberRequest, dto::RemoveMemberRequest,
        dto::CorrectMemberRequest, dto::RevokeRequest, dto::ErasureRequest, crate::access_log::AccessLog,
        crate::access_log::AccessLogEntry, crate::access_log::AccessActor, dto::ReissueRequest, dto::CommandResult,
        dto::FamilyView, dto::MemberView, dto::VerifyResult, dto::VerifyMember, dto::HolderCard,
        dto::History, dto::HistoryEvent, dto::LiveQr, error::Problem, error::ProblemField,
        dto::SearchRequest, dto::SearchResult, dto::FamilySummary, dto::SummaryMember,
        crate::log::InclusionResponse, crate::log::ConsistencyResponse,
        crate::log::CosignaturesAccepted,
    )),
    modifiers(&BearerAuth, &ProblemResponses, &CommandHeaderFormats),
    tags(
        (name = "officer", description = "Social-services officers (role `officer`)"),
        (name = "auditor", description = "Auditors (role `auditor`)"),
        (name = "holder", description = "A family member (role `holder`, bound to one family)"),
        (name = "verifier", description = "Public: anyone who scans a QR"),
        (name = "log", description = "Public: the transparency log's signed checkpoints and key"),
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

/// The problem statuses each operation can answer, by method and path.
pub const PROBLEMS: &[(&str, &str, &[u16])] = &[
    ("post", "/api/v1/families", COMMAND_NEW),
    ("post", "/api/v1/families/{family_id}/renewals", COMMAND),
    ("post", "/api/v1/families/{family_id}/members", COMMAND),
    (
        "post",
        "/api/v1/families/{family_id}/members/{member_id}/removal",
        COMMAND,
    ),
    (
        "patch",
        "/api/v1/families/{family_id}/members/{member_id}",
        COMMAND,
    ),
    ("post", "/api/v1/families/{family_id}/revocation", COMMAND),
    (
        "post",
        "/api/v1/families/{family_id}/certificate/reissue",
        COMMAND,
    ),
    ("post", "/api/v1/families/{family_id}/erasure", COMMAND),
    (
        "get",
        "/api/v1/families/{family_id}/access-log",
        &[401, 403, 404, 503],
    ),
    ("get", "/api/v1/access-log", &[400, 401, 403, 503]),
    ("get", "/api/v1/me/access-log", &[401, 403, 503]),
    ("get", "/api/v1/families", &[400, 401, 403, 422, 503]),
    (
        "post",
        "/api/v1/families/search",
        &[400, 401, 403, 413, 422, 503],
    ),
    (
        "get",
        "/api/v1/families/{family_id}",
        &[400, 401, 403, 404, 503],
    ),
    (
        "get",
        "/api/v1/families/{family_id}/history",
        &[401, 403, 404, 503],
    ),
    ("get", "/api/v1/families/{family_id}/certificate.pdf", SHOWN),
    ("get", "/api/v1/me/certificate", &[401, 403, 404]),
    ("get", "/api/v1/me/certificate/qr.svg", SHOWN),
    ("get", "/api/v1/me/certificate/qr.png", SHOWN),
    ("get", "/api/v1/me/certificate/live-qr", SHOWN),
    ("get", "/api/v1/me/certificate.pdf", SHOWN),
    ("get", "/api/v1/verify/{token}", &[404, 429]),
    ("get", "/v/{token}", &[404, 429]),
    ("get", "/.well-known/registry-keys.json", &[]),
    ("get", "/log/checkpoint", &[503]),
    ("get", "/log/checkpoints/{size}", &[404, 503]),
    ("get", "/log/key", &[]),
    ("post", "/log/cosignatures", &[413, 422, 503]),
    (
        "get",
        "/api/v1/log/inclusion",
        &[401, 403, 404, 409, 422, 503],
    ),
    ("get", "/api/v1/log/consistency", &[401, 403, 422, 503]),
    ("get", "/healthz", &[]),
    ("get", "/readyz", &[]),
    ("get", "/metrics", &[]),
    ("get", "/openapi.json", &[]),
];

/// A command on a new family (no path id; `If-Match` can still fail).
const COMMAND_NEW: &[u16] = &[400, 401, 403, 409, 412, 413, 422, 503];
/// A command on an existing family.
const COMMAND: &[u16] = &[400, 401, 403, 404, 409, 412, 413, 422, 503];
/// A document or code shown as proof: refused (409) for an invalid certificate.
const SHOWN: &[u16] = &[401, 403, 404, 409];

fn problem_description(status: u16) -> &'static str {
    match status {
        400 => "`malformed_request`: the body is not JSON of the expected shape, or a header or query is malformed",
        401 => "`unauthenticated`: no token, or an unknown one",
        403 => "`forbidden`: the token's role or family does not allow it",
        404 => "`not_found`: no such family or member; an unknown, forged or garbled QR token",
        409 => "`conflict`: the family's state forbids it, or it kept changing concurrently",
        412 => "`precondition_failed`: the `If-Match` revision is not the current one",
        413 => "`payload_too_large`: the body is over the limit",
        422 => "`validation_failed` (see `errors`) or `not_eligible`",
        429 => "`rate_limited`: too many requests from this address (verifies), or too many unknown bearer tokens from it (a minute's pause); see `Retry-After`",
        503 => "`unavailable`: try again. A command was recorded but the views lag (retry with the same `Idempotency-Key`); a read of personal data could not be written to the access record",
        _ => "a problem",
    }
}

fn operation_mut<'a>(item: &'a mut PathItem, method: &str) -> Option<&'a mut Operation> {
    match method {
        "get" => item.get.as_mut(),
        "post" => item.post.as_mut(),
        "patch" => item.patch.as_mut(),
        "put" => item.put.as_mut(),
        "delete" => item.delete.as_mut(),
        _ => None,
    }
}

/// Adds the problems of [`PROBLEMS`] to each operation, as `application/problem+json`.
struct ProblemResponses;

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (method, path, statuses) in PROBLEMS {
            let Some(operation) = openapi
                .paths
                .paths
                .get_mut(*path)
                .and_then(|item| operation_mut(item, method))
            else {
                continue;
            };
            // Every operation that takes a bearer token can refuse an address that sent too
            // many unknown ones (429, `Retry-After: 60`).
            let refused = statuses.contains(&401) && !statuses.contains(&429);
            for status in statuses.iter().chain(refused.then_some(&429)) {
                let mut response = ResponseBuilder::new()
                    .description(problem_description(*status))
                    .content(
                        "application/problem+json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("Problem")))
                            .build(),
                    );
                if *path == "/v/{token}" && *status == 404 {
                    // A person's browser gets the not-found page instead.
                    response = response.content("text/html", ContentBuilder::new().build());
                }
                let response = response.build();
                operation
                    .responses
                    .responses
                    .insert(status.to_string(), RefOr::T(response));
            }
        }
    }
}

/// `If-Match` and `Idempotency-Key` with the formats the server accepts (else 400).
struct CommandHeaderFormats;

impl Modify for CommandHeaderFormats {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for method in ["get", "post", "patch", "put", "delete"] {
                let Some(operation) = operation_mut(item, method) else {
                    continue;
                };
                for parameter in operation.parameters.iter_mut().flatten() {
                    let schema = match parameter.name.as_str() {
                        "If-Match" => ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some(r#"^(W/)?"[0-9]{1,19}"$"#))
                            .description(Some(
                                r#"The revision the change was decided on, quoted: "3""#,
                            )),
                        "Idempotency-Key" => ObjectBuilder::new()
                            .schema_type(Type::String)
                            .pattern(Some("^[!-~]{1,255}$"))
                            .min_length(Some(1))
                            .max_length(Some(255))
                            .description(Some("1 to 255 visible ASCII characters")),
                        _ => continue,
                    };
                    parameter.schema = Some(RefOr::T(schema.build().into()));
                }
            }
        }
    }
}

/// The document as pretty JSON, as checked in.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default() + "\n"
}
