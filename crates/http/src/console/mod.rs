//! The console for people: officers, auditors and families, in Russian, server-rendered, usable
//! with JavaScript off.
//!
//! Every page handler is a thin adapter: it reads a form, calls the same application calls as the
//! JSON API (`Registry::execute`, the read store's queries, `search_families`) and renders the
//! answer. Sessions live in a [`registry_access::SessionStore`]; the cookie holds a random id, the
//! store only its hash. Every form carries the session's CSRF token.

mod commands;
mod export;
mod forms;
mod holder;
mod login;
mod messages;
mod officer;
pub mod oidc;
mod session;
mod view;

use crate::state::AppState;
use askama::Template;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

pub use session::Person;

/// The console's pages, under `/console` and `/me`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console", get(login::home))
        .route("/console/login", get(login::form).post(login::sign_in))
        .route("/console/logout", post(login::sign_out))
        .route(
            "/console/search",
            get(officer::search_form).post(officer::search),
        )
        .route(
            "/console/families/new",
            get(officer::grant_form).post(officer::grant),
        )
        .route("/console/families/{family_id}", get(officer::family_page))
        .route(
            "/console/families/{family_id}/revocation",
            post(officer::revoke),
        )
        .route(
            "/console/families/{family_id}/renewal",
            post(commands::renew),
        )
        .route(
            "/console/families/{family_id}/members",
            post(commands::add_member),
        )
        .route(
            "/console/families/{family_id}/members/{member_id}",
            get(commands::correct_form).post(commands::correct_member),
        )
        .route(
            "/console/families/{family_id}/members/{member_id}/removal",
            post(commands::remove_member),
        )
        .route(
            "/console/families/{family_id}/certificate/reissue",
            post(commands::reissue),
        )
        .route(
            "/console/families/{family_id}/history.csv",
            get(export::history_csv),
        )
        .route(
            "/console/families/{family_id}/history.json",
            get(export::history_json),
        )
        .route(
            "/console/families/{family_id}/qr.png",
            get(officer::family_qr),
        )
        .route(
            "/console/families/{family_id}/certificate.pdf",
            get(officer::family_pdf),
        )
        .route("/console/oidc/login", get(oidc::start))
        .route("/console/oidc/callback", get(oidc::callback))
        .route("/me", get(holder::card))
        .route("/me/certificate.pdf", get(holder::pdf))
        .route("/me/qr.png", get(holder::qr))
        .route("/me/live-qr.json", get(holder::live_qr))
        .route("/assets/live-qr.js", get(holder::script))
        .route("/assets/console.css", get(stylesheet))
}

/// The console's CSP: the verifier page's, with forms posting to our own origin, and our own
/// scripts (only the card's live code has one) and their requests to our own origin.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                   script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// Renders a page with the console's headers.
fn page(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            response
        }
        Err(e) => crate::ApiError::internal(e).into_response(),
    }
}

/// A page that says what went wrong, in Russian, with a way back.
#[derive(Template)]
#[template(path = "console/message.html")]
struct MessagePage<'a> {
    who: Option<&'a Person>,
    csrf: &'a str,
    title: &'a str,
    text: &'a str,
    back: &'a str,
}

fn message(
    status: StatusCode,
    who: Option<&Person>,
    title: &str,
    text: &str,
    back: &str,
) -> Response {
    let csrf = who.map_or("", |p| p.csrf.as_str());
    page(
        status,
        &MessagePage {
            who,
            csrf,
            title,
            text,
            back,
        },
    )
}

/// How long a person refused for too many sign-in attempts is told to wait, in seconds.
const SIGN_IN_RETRY_AFTER: &str = "60";

/// The answer to a sign-in attempt over its address's limit (`response`, made a 429 with a
/// `Retry-After`); `None` while the address is within it.
fn too_many_sign_ins(
    state: &AppState,
    client: std::net::SocketAddr,
    response: impl FnOnce() -> Response,
) -> Option<Response> {
    if state.may_sign_in(client.ip()) {
        return None;
    }
    tracing::warn!("sign-in attempts over the limit from one address");
    let mut response = response();
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(SIGN_IN_RETRY_AFTER),
    );
    Some(response)
}

/// What a person refused for too many attempts reads.
const TOO_MANY_SIGN_INS: &str =
    "Слишком много попыток входа с этого адреса. Подождите минуту и попробуйте снова.";

/// A 303 to `to` (after a form: the browser then GETs the result, so a reload resends nothing).
fn see_other(to: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            header::LOCATION,
            HeaderValue::from_str(to).unwrap_or(HeaderValue::from_static("/console")),
        )],
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        include_str!("../../assets/console.css"),
    )
        .into_response()
}
