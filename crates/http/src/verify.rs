//! The verifier's side: the public QR lookup (JSON and the Russian page) and the published keys.
//! A token is parsed and its signature checked before any database lookup; a forged, garbled or
//! unknown token gets the same 404.

use crate::dto::{Relation, VerifyMember, VerifyResult};
use crate::error::{ApiError, ApiResult};
use crate::extract::Segments;
use crate::state::{AppState, Disclosure};
use crate::verify_answers::EncodedAnswer;
use askama::Template;
use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use registry_credential::TokenKind;
use registry_domain::{CertificateState, Member};
use registry_read_store::CertificateRow;
use std::net::SocketAddr;
use std::sync::Arc;

/// Words joined by spaces, a word marked `true` followed by `.` (an initial), in one
/// allocation: a scan builds a name per member (`format!` costs several times more).
fn joined(words: &[(&str, bool)]) -> String {
    let mut name = String::with_capacity(words.iter().map(|(w, _)| w.len() + 2).sum());
    for (i, (word, dotted)) in words.iter().enumerate() {
        if i > 0 {
            name.push(' ');
        }
        name.push_str(word);
        if *dotted && !word.is_empty() {
            name.push('.');
        }
    }
    name
}

/// The first letter of a name (empty for an empty one).
fn initial(s: &str) -> &str {
    s.char_indices().nth(1).map_or(s, |(end, _)| &s[..end])
}

fn display_name(m: &Member, level: Disclosure) -> String {
    let (last, first) = (m.last_name.as_str(), m.first_name.as_str());
    match (level, m.middle_name.as_deref()) {
        (Disclosure::Full, _) => m.full_name(),
        (Disclosure::Standard, None) => joined(&[(last, false), (first, false)]),
        (Disclosure::Standard, Some(middle)) => {
            joined(&[(last, false), (first, false), (initial(middle), true)])
        }
        (Disclosure::Minimal, _) => joined(&[(first, false), (initial(last), true)]),
    }
}

fn disclose(m: &Member, level: Disclosure) -> VerifyMember {
    use chrono::Datelike;
    let child = m.relation == registry_domain::Relation::Child;
    VerifyMember {
        display_name: display_name(m, level),
        relation: Relation::from(m.relation),
        birth_date: match level {
            Disclosure::Full => Some(m.birth_date),
            Disclosure::Standard if child => Some(m.birth_date),
            _ => None,
        },
        birth_year: (level == Disclosure::Minimal && child).then(|| m.birth_date.year()),
    }
}

/// What a certificate row shows at `now`, at the given disclosure level.
pub fn verify_result(
    row: &CertificateRow,
    level: Disclosure,
    qr_kind: &str,
    now: DateTime<Utc>,
) -> VerifyResult {
    let today = registry_domain::time::moscow_date(now);
    let shown = row.state_on(today);
    VerifyResult {
        valid: shown.is_valid(),
        state: shown.as_str().to_string(),
        reason: (!shown.is_valid()).then(|| shown.as_str().to_string()),
        certificate_number: row.certificate_number.clone(),
        certificate_serial: row.serial,
        valid_from: row.valid_from,
        valid_until: row.valid_until,
        changed_on: match shown {
            CertificateState::Revoked
            | CertificateState::Terminated
            | CertificateState::Replaced => row.family.ended_on,
            _ => None,
        },
        checked_at: now,
        // Replaced rows hold no members: an old QR discloses no one.
        members: row
            .family
            .members
            .iter()
            .map(|m| disclose(m, level))
            .collect(),
        qr_kind: qr_kind.to_string(),
    }
}

/// What a scanned token resolves to, before its answer is made (the page and the JSON answer
/// part only there).
enum Scan {
    /// A forged, garbled or unknown token, or an erased family's.
    NotFound,
    /// A genuine live code past its expiry: what it shows.
    LiveExpired(VerifyResult),
    /// A genuine code to answer: its row, its kind of QR and the moment of the scan.
    Fresh {
        row: Arc<CertificateRow>,
        kind: &'static str,
        now: DateTime<Utc>,
    },
}

/// What a scan can show, as counted: a certificate's states, then the two ends of a scan that
/// found no certificate to show.
const OUTCOMES: [&str; 8] = [
    "active",
    "expired",
    "terminated",
    "revoked",
    "replaced",
    "not_yet_valid",
    "not_found",
    "live_code_expired",
];

/// Counts a scan by what it showed, on handles made once: the `metrics` macro builds its key and
/// looks it up in the registry on every call.
fn count_scan(state: &'static str) {
    static COUNTERS: std::sync::OnceLock<Vec<metrics::Counter>> = std::sync::OnceLock::new();
    let counters = COUNTERS.get_or_init(|| {
        // Handles made before the recorder is installed would count nowhere, for ever.
        crate::ops::metrics_handle();
        OUTCOMES
            .iter()
            .map(|&state| metrics::counter!("verify_outcomes_total", "state" => state))
            .collect()
    });
    match OUTCOMES.iter().position(|&known| known == state) {
        Some(at) => counters[at].increment(1),
        None => metrics::counter!("verify_outcomes_total", "state" => state).increment(1),
    }
}

/// The state a row shows at `now` (the `state` of its answer).
fn state_at(row: &CertificateRow, now: DateTime<Utc>) -> &'static str {
    row.state_on(registry_domain::time::moscow_date(now))
        .as_str()
}

/// The certificate row a token names: `None` for a forged, garbled or unknown token, and for an
/// erased family's (its QR codes are no longer in the registry).
async fn find(
    state: &AppState,
    token: &str,
) -> ApiResult<Option<(TokenKind, Arc<CertificateRow>)>> {
    let Ok(verified) = state.verify_token(token) else {
        return Ok(None);
    };
    Ok(state
        .read()
        .shared_certificate_by_token(verified.certificate_id)
        .await?
        .filter(|row| !row.is_erased())
        .map(|row| (verified.kind, row)))
}

/// The kind of QR a verified token is, `None` for a live code past its expiry.
fn fresh_kind(kind: TokenKind, now: DateTime<Utc>) -> Option<&'static str> {
    match kind {
        TokenKind::Static => Some("static"),
        TokenKind::Live { expires_at } if expires_at >= now.timestamp() => Some("live"),
        TokenKind::Live { .. } => None,
    }
}

/// What a scan shows: one rule for every state that is not valid, a verifier sees no one.
fn shown(state: &AppState, row: &CertificateRow, kind: &str, now: DateTime<Utc>) -> VerifyResult {
    let mut result = verify_result(row, state.config().disclosure, kind, now);
    if !result.valid {
        result.members.clear();
    }
    result
}

/// What a live code past its expiry shows: that it is stale, and no one.
fn live_expired(state: &AppState, row: &CertificateRow, now: DateTime<Utc>) -> VerifyResult {
    let mut result = verify_result(row, state.config().disclosure, "live", now);
    result.valid = false;
    result.reason = Some("live_code_expired".into());
    result.members.clear();
    result
}

/// Resolves a scanned token; a scan that ends here (not found, a stale live code) is counted.
async fn scan(state: &AppState, token: &str) -> ApiResult<Scan> {
    let Some((token_kind, row)) = find(state, token).await? else {
        count_scan("not_found");
        return Ok(Scan::NotFound);
    };
    let now = state.registry().now();
    Ok(match fresh_kind(token_kind, now) {
        Some(kind) => Scan::Fresh { row, kind, now },
        None => {
            count_scan("live_code_expired");
            Scan::LiveExpired(live_expired(state, &row, now))
        }
    })
}

/// A scan answered as JSON: a code scanned again on the same day, with nothing changed, from
/// its kept answer (`verify_answers`).
async fn json_answer(state: &AppState, token: &str) -> ApiResult<Response> {
    let (row, kind, now) = match scan(state, token).await? {
        Scan::NotFound => return Err(ApiError::NotFound("no such certificate")),
        Scan::LiveExpired(result) => return Ok(Json(result).into_response()),
        Scan::Fresh { row, kind, now } => (row, kind, now),
    };
    let day = registry_domain::time::moscow_date(now);
    let answers = state.verify_answers();
    if let Some(kept) = answers.get(&row, day, kind) {
        count_scan(kept.state);
        return Ok(json_body(kept.body(now)));
    }
    let label = state_at(&row, now);
    count_scan(label);
    let result = shown(state, &row, kind, now);
    if answers.keeps() {
        if let Some((kept, body)) = EncodedAnswer::encode(&row, day, label, &result) {
            answers.keep(&row, kind, Arc::new(kept));
            return Ok(json_body(body));
        }
    }
    Ok(Json(result).into_response())
}

fn json_body(body: impl IntoResponse) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

fn rate_limit(state: &AppState, client: SocketAddr) -> ApiResult<()> {
    match state.limiter() {
        Some(limiter) if !limiter.allow(client.ip()) => Err(ApiError::RateLimited),
        _ => Ok(()),
    }
}

/// What a QR scan shows, as JSON.
///
/// Public. The token's signature is checked before any lookup; an unknown, forged or garbled token is the same 404. A known certificate answers 200 whatever its state.
#[utoipa::path(get, path = "/api/v1/verify/{token}", tag = "verifier",
    params(("token" = String, Path, description = "The token of a QR")),
    responses((status = 200, body = VerifyResult), (status = 404, body = crate::error::Problem),
        (status = 429, body = crate::error::Problem)))]
pub async fn verify_json(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Segments(token): Segments<String>,
) -> ApiResult<Response> {
    rate_limit(&state, client)?;
    json_answer(&state, &token).await
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            let json = accept.find("application/json");
            let html = accept.find("text/html");
            match (json, html) {
                (Some(j), Some(h)) => j < h,
                (Some(_), None) => true,
                _ => false,
            }
        })
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage<'a> {
    result: &'a VerifyResult,
    badge: &'static str,
    /// `valid`, `invalid` or `pending` (not yet valid, or a live code to refresh): its colour.
    badge_class: &'static str,
    reason: String,
    checked_at: String,
    /// «Действует» and its dates while valid; otherwise what happened and when.
    validity_label: &'static str,
    validity: String,
    members: Vec<(String, &'static str, String)>,
    qr_note: &'static str,
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFoundPage {
    checked_at: String,
}

/// A date as people in Russia write it (ДД.ММ.ГГГГ); the console's pages use it too.
pub(crate) fn ru_date(d: chrono::NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

fn reason_ru(result: &VerifyResult) -> String {
    match (result.reason.as_deref(), result.state.as_str()) {
        (Some("live_code_expired"), _) => {
            "Код из приложения устарел — попросите обновить код в приложении. Статус семьи этим \
             не проверен."
                .into()
        }
        (_, "expired") => "Истёк срок действия.".into(),
        (_, "revoked") => "Статус отозван органом соцзащиты.".into(),
        (_, "terminated") => "Статус прекращён.".into(),
        (_, "replaced") => "Выдано новое удостоверение; этот код больше не действует.".into(),
        (_, "not_yet_valid") => format!("Ещё не действует — с {}.", ru_date(result.valid_from)),
        _ => String::new(),
    }
}

/// What the validity line says: the dates while the certificate stands, the change when not.
fn validity_ru(result: &VerifyResult) -> (&'static str, String) {
    let on = |label: &'static str| {
        (
            label,
            result
                .changed_on
                .map_or_else(|| "дата не указана".to_string(), ru_date),
        )
    };
    match (result.reason.as_deref(), result.state.as_str()) {
        (Some("live_code_expired"), _) => ("Проверка", "не выполнена: код устарел".to_string()),
        (_, "revoked") => on("Отозвано"),
        (_, "terminated") => on("Прекращено"),
        (_, "replaced") => on("Заменено"),
        (_, "expired") => ("Срок истёк", ru_date(result.valid_until)),
        (_, "not_yet_valid") => (
            "Срок действия",
            format!(
                "с {} по {} включительно",
                ru_date(result.valid_from),
                ru_date(result.valid_until)
            ),
        ),
        _ => (
            "Действует",
            format!(
                "с {} по {} включительно",
                ru_date(result.valid_from),
                ru_date(result.valid_until)
            ),
        ),
    }
}

fn render_page(result: &VerifyResult) -> Response {
    let live_expired = result.reason.as_deref() == Some("live_code_expired");
    // `lookup` already emptied the members of every state that is not valid.
    let members = result
        .members
        .iter()
        .map(|m| {
            let relation = match m.relation {
                Relation::Parent => "родитель",
                Relation::Child => "ребёнок",
            };
            let born = match (m.birth_date, m.birth_year) {
                (Some(d), _) => format!("дата рождения: {}", ru_date(d)),
                (None, Some(y)) => format!("{y} г. р."),
                _ => String::new(),
            };
            (m.display_name.clone(), relation, born)
        })
        .collect();
    let (validity_label, validity) = validity_ru(result);
    let page = VerifyPage {
        result,
        badge: match (result.valid, result.state.as_str()) {
            (true, _) => "ДЕЙСТВИТЕЛЬНО",
            _ if live_expired => "КОД УСТАРЕЛ",
            (false, "not_yet_valid") => "ЕЩЁ НЕ ДЕЙСТВУЕТ",
            (false, _) => "НЕДЕЙСТВИТЕЛЬНО",
        },
        badge_class: match (result.valid, result.state.as_str()) {
            (true, _) => "valid",
            _ if live_expired => "pending",
            (false, "not_yet_valid") => "pending",
            (false, _) => "invalid",
        },
        reason: reason_ru(result),
        checked_at: registry_domain::time::moscow_display(result.checked_at),
        validity_label,
        validity,
        members,
        qr_note: if result.qr_kind == "live" {
            "Динамический код из приложения."
        } else {
            "Код из PDF или с карточки — сверьте с документом, удостоверяющим личность."
        },
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

fn not_found_page(state: &AppState) -> Response {
    let page = NotFoundPage {
        checked_at: registry_domain::time::moscow_display(state.registry().now()),
    };
    match page.render() {
        Ok(html) => (StatusCode::NOT_FOUND, Html(html)).into_response(),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// The page a phone opens from the QR.
///
/// Public. Russian HTML by default; the JSON of `/api/v1/verify/{token}` with
/// `Accept: application/json`. An unknown, forged or garbled token gets the same not-found page
/// (or problem).
#[utoipa::path(get, path = "/v/{token}", tag = "verifier",
    params(("token" = String, Path, description = "The token of a QR")),
    responses((status = 200, description = "The verifier's page, or the verify JSON",
        content((String = "text/html"), (VerifyResult = "application/json")))))]
pub async fn verify_page(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    token: Result<Path<String>, PathRejection>,
) -> Response {
    // A garbled path is a garbled token: the same not-found page as an unknown one.
    let token = token.map(|Path(t)| t).unwrap_or_default();
    let json = wants_json(&headers);
    if let Err(e) = rate_limit(&state, client) {
        return e.into_response();
    }
    if json {
        return json_answer(&state, &token)
            .await
            .unwrap_or_else(IntoResponse::into_response);
    }
    match scan(&state, &token).await {
        Ok(Scan::Fresh { row, kind, now }) => {
            count_scan(state_at(&row, now));
            render_page(&shown(&state, &row, kind, now))
        }
        Ok(Scan::LiveExpired(result)) => render_page(&result),
        Ok(Scan::NotFound) => not_found_page(&state),
        Err(e) => e.into_response(),
    }
}

/// The registry's public keys (a JWK set).
///
/// For offline checks that a QR was issued by the registry.
#[utoipa::path(get, path = "/.well-known/registry-keys.json", tag = "verifier",
    responses((status = 200, description = "The registry's public keys (JWK set)", content_type = "application/json", body = Object)))]
pub async fn keys(State(state): State<AppState>) -> Response {
    let mut body = state.keys().public().to_jwks();
    // The transparency log's checkpoint key, in the signed-note format (DESIGN.md §10).
    if let Some(object) = body.as_object_mut() {
        object.insert(
            "log_key".into(),
            serde_json::Value::String(state.log().verifier_key().to_owned()),
        );
    }
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(body)).into_response()
}

pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../assets/verify.css"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(last: &str, first: &str, middle: Option<&str>) -> Member {
        serde_json::from_value(serde_json::json!({
            "member_id": uuid::Uuid::nil(),
            "relation": "parent",
            "last_name": last,
            "first_name": first,
            "middle_name": middle,
            "birth_date": "1986-04-12",
        }))
        .unwrap()
    }

    #[test]
    fn given_each_disclosure_level_when_a_name_is_shown_then_it_reads_as_people_write_it() {
        let full = member("Ёлкина", "Ольга", Some("Сергеевна"));
        assert_eq!(
            display_name(&full, Disclosure::Full),
            "Ёлкина Ольга Сергеевна"
        );
        assert_eq!(display_name(&full, Disclosure::Standard), "Ёлкина Ольга С.");
        assert_eq!(display_name(&full, Disclosure::Minimal), "Ольга Ё.");
        let no_middle = member("Ли", "Ян", None);
        assert_eq!(display_name(&no_middle, Disclosure::Full), "Ли Ян");
        assert_eq!(display_name(&no_middle, Disclosure::Standard), "Ли Ян");
        assert_eq!(display_name(&no_middle, Disclosure::Minimal), "Ян Л.");
    }
}
