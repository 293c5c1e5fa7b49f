//! The family's own page (`/me`): the card with its QR, the members, validity, the PDF.

use super::session::Person;
use super::view::{self, FamilyCard};
use super::{message, page};
use crate::error::ApiError;
use crate::extract::Caller;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use registry_access::Role;
use registry_read_store::CertificateRow;

#[derive(Template)]
#[template(path = "console/me.html")]
struct CardPage<'a> {
    who: Option<&'a Person>,
    csrf: &'a str,
    card: FamilyCard,
    /// The QR may be shown (not revoked, terminated or expired).
    showable: bool,
    /// Who read the family's personal data, newest first.
    access: Vec<AccessRow>,
}

/// One line of «Кто просматривал сведения о семье».
struct AccessRow {
    when: String,
    who: String,
    office: String,
    what: &'static str,
}

fn access_rows(entries: Vec<registry_access::AccessEntry>) -> Vec<AccessRow> {
    entries
        .into_iter()
        .map(|e| AccessRow {
            when: registry_domain::time::moscow_display(e.at),
            who: match e.actor_role {
                Role::Auditor => format!("аудитор {}", e.actor_name),
                _ => format!("сотрудник {}", e.actor_name),
            },
            office: e.office.unwrap_or_default(),
            what: e.kind.russian(),
        })
        .collect()
}

async fn row(state: &AppState, person: &Person) -> Result<CertificateRow, Response> {
    let family = match (person.role, person.family_id) {
        (Role::Holder, Some(f)) => f,
        _ => {
            return Err(message(
                StatusCode::FORBIDDEN,
                Some(person),
                "Нет доступа",
                "Эта страница — для семьи, которой выдано удостоверение.",
                "/console",
            ))
        }
    };
    match state.read().certificate_of_family(family).await {
        Ok(Some(row)) => Ok(row),
        Ok(None) => Err(message(
            StatusCode::NOT_FOUND,
            Some(person),
            "Удостоверение не найдено",
            "Для вашей семьи в реестре нет удостоверения.",
            "/console",
        )),
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

pub async fn card(State(state): State<AppState>, person: Person) -> Response {
    let row = match row(&state, &person).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    let today = state.registry().today();
    let showable = crate::document::require_showable(row.state_on(today)).is_ok();
    let access = match state
        .access()
        .by_family(row.family_id, registry_access::ACCESS_PAGE)
        .await
    {
        Ok(entries) => access_rows(entries),
        Err(e) => {
            tracing::error!(error = %e, "the access record could not be read");
            return ApiError::Unavailable("the access record could not be read".into())
                .into_response();
        }
    };
    page(
        StatusCode::OK,
        &CardPage {
            who: Some(&person),
            csrf: &person.csrf,
            card: view::card(&state, &row.family, row.revision, today),
            showable,
            access,
        },
    )
}

pub async fn qr(State(state): State<AppState>, person: Person) -> Response {
    let row = match row(&state, &person).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    if let Err(e) = crate::document::require_showable(row.state_on(state.registry().today())) {
        return e.into_response();
    }
    let png = registry_credential::qr_png(&state.verify_url(row.token_id), 8);
    ([(header::CONTENT_TYPE, "image/png")], png).into_response()
}

pub async fn pdf(State(state): State<AppState>, person: Person) -> Response {
    let caller: Caller = person.caller();
    match crate::document::my_pdf(State(state), caller).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The app's rotating code for the card's script: a fresh short-lived signed token as a QR image
/// (a `data:` URL) and when it expires. Refused once the certificate may not be shown.
pub async fn live_qr(State(state): State<AppState>, person: Person) -> Response {
    use base64::Engine;
    let row = match row(&state, &person).await {
        Ok(r) => r,
        Err(response) => return response,
    };
    if let Err(e) = crate::document::require_showable(row.state_on(state.registry().today())) {
        return e.into_response();
    }
    let now = state.registry().now();
    let seconds = state.config().live_qr_seconds;
    let expires_at = now + chrono::Duration::seconds(seconds);
    let token =
        registry_credential::issue_live_token(&state.keys(), row.token_id, expires_at.timestamp());
    let png = registry_credential::qr_png(&state.url_for_token(&token), 8);
    let image = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    );
    axum::Json(serde_json::json!({
        "image": image,
        "expires_at": expires_at,
        "seconds": seconds,
    }))
    .into_response()
}

pub async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../assets/live-qr.js"),
    )
        .into_response()
}
