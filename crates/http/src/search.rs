//! Officer search: families by certificate number, by a member's surname and birth date, or by a
//! decision number, newest first, a page at a time, from the read store's index. The same call
//! answers `GET /api/v1/families?...` (the contract) and `POST /api/v1/families/search` (personal
//! data in the body, out of URLs, proxies and browser histories).

use crate::dto::{FamilySummary, Relation, SearchRequest, SearchResult, SummaryMember};
use crate::error::{ApiError, ApiResult, ProblemField};
use crate::extract::{Caller, JsonBody};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::Json;
use registry_access::AccessKind;
use registry_app::Role;
use registry_read_store::{Search, SearchKey, SEARCH_PAGE};

const READERS: &[Role] = &[Role::Officer, Role::Auditor];

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::Validation(vec![ProblemField {
        field: field.into(),
        message: message.into(),
    }])
}

fn text(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The one key a request searches by, or why it has none.
fn key_of(request: &SearchRequest) -> ApiResult<SearchKey> {
    let number = text(&request.certificate_number);
    let surname = text(&request.last_name);
    let decision = text(&request.decision_number);
    let given = [
        number.is_some(),
        surname.is_some() || request.birth_date.is_some(),
        decision.is_some(),
    ]
    .iter()
    .filter(|g| **g)
    .count();
    if given != 1 {
        return Err(invalid(
            "",
            "give exactly one of: certificate_number; last_name with birth_date; decision_number",
        ));
    }
    for (field, value) in [
        ("certificate_number", number),
        ("last_name", surname),
        ("decision_number", decision),
    ] {
        if value.is_some_and(|v| v.chars().count() > 100) {
            return Err(invalid(field, "must be at most 100 characters"));
        }
    }
    Ok(match (number, surname, request.birth_date, decision) {
        (Some(n), ..) => SearchKey::CertificateNumber(n.to_string()),
        (_, _, _, Some(d)) => SearchKey::DecisionNumber(d.to_string()),
        (_, Some(last_name), Some(birth_date), _) => SearchKey::Member {
            last_name: last_name.to_string(),
            birth_date,
        },
        (_, None, _, _) => return Err(invalid("last_name", "required with birth_date")),
        (_, _, None, _) => return Err(invalid("birth_date", "required with last_name")),
    })
}

/// Searches as `caller`: the application call behind both endpoints (and the console).
pub async fn search_families(
    state: &AppState,
    caller: &Caller,
    request: &SearchRequest,
) -> ApiResult<SearchResult> {
    caller.require(READERS)?;
    let key = key_of(request)?;
    let after = match request.after.as_deref() {
        None | Some("") => None,
        Some(cursor) => Some(
            cursor
                .parse::<u64>()
                .map_err(|_| invalid("after", "the `next` of the page before, as it was given"))?,
        ),
    };
    let page = state
        .read()
        .search(&Search {
            key,
            after,
            limit: SEARCH_PAGE,
        })
        .await?;
    state
        .record_access(
            caller,
            page.hits.iter().map(|h| h.family_id),
            AccessKind::SearchResult,
        )
        .await?;
    let today = state.registry().today();
    Ok(SearchResult {
        families: page
            .hits
            .into_iter()
            .map(|row| FamilySummary {
                family_id: row.family_id.0,
                certificate_number: row.certificate_number.clone(),
                certificate_serial: row.serial,
                state: row.state_on(today).as_str().to_string(),
                valid_from: row.valid_from,
                valid_until: row.valid_until,
                members: row
                    .family
                    .members
                    .iter()
                    .map(|m| SummaryMember {
                        last_name: m.last_name.clone(),
                        first_name: m.first_name.clone(),
                        middle_name: m.middle_name.clone(),
                        birth_date: m.birth_date,
                        relation: Relation::from(m.relation),
                    })
                    .collect(),
            })
            .collect(),
        next: page.next.map(|p| p.to_string()),
    })
}

/// Find families by certificate number, by a member's surname and birth date, or by a decision.
///
/// For officers and auditors. Exactly one key; newest first, 20 a page; `after` is the `next` of
/// the page before. `POST /api/v1/families/search` takes the same fields in a JSON body and keeps
/// personal data out of the URL.
#[utoipa::path(get, path = "/api/v1/families", tag = "officer",
    params(SearchRequest),
    responses((status = 200, body = SearchResult)),
    security(("bearer" = [])))]
pub async fn search_by_query(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<SearchRequest>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<SearchResult>> {
    caller.require(READERS)?;
    let Query(request) = query.map_err(|e| {
        let text = e.body_text();
        match text.split_once(crate::wire::MARKER) {
            Some((_, why)) => invalid("birth_date", why),
            None => ApiError::Malformed(
                "invalid query".into(),
                vec![ProblemField {
                    field: "query".into(),
                    message: text.chars().take(200).collect(),
                }],
            ),
        }
    })?;
    Ok(Json(search_families(&state, &caller, &request).await?))
}

/// Find families, the key in the body.
///
/// The same search as `GET /api/v1/families?...`, with the key in a JSON body so that a surname
/// and a birth date never travel in a URL.
#[utoipa::path(post, path = "/api/v1/families/search", tag = "officer",
    request_body = SearchRequest,
    responses((status = 200, body = SearchResult)),
    security(("bearer" = [])))]
pub async fn search_by_body(
    State(state): State<AppState>,
    caller: Caller,
    body: JsonBody<SearchRequest>,
) -> ApiResult<Json<SearchResult>> {
    caller.require(READERS)?;
    Ok(Json(search_families(&state, &caller, &body.value).await?))
}
