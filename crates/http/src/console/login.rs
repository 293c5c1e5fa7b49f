//! Signing in with an access token, and out.

use super::session::{cookie, current, set_cookie, Person, COOKIE, LOGIN_COOKIE};
use super::{message, page, see_other, too_many_sign_ins, TOO_MANY_SIGN_INS};
use crate::state::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use registry_access::session::{new_secret, same_secret};
use registry_access::{token_hash, Role, Session, TokenStoreExt};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage<'a> {
    who: Option<&'a Person>,
    csrf: &'a str,
    error: &'a str,
    notice: &'a str,
    /// Whether sign-in through the identity provider is configured.
    provider: bool,
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    expired: Option<String>,
}

/// Where a person starts: their role's first page.
pub(super) fn start_page(role: Role) -> &'static str {
    match role {
        Role::Officer | Role::Auditor => "/console/search",
        Role::Holder => "/me",
        Role::System => "/console/login",
    }
}

pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match current(&state, &headers).await {
        Some(p) => see_other(start_page(p.role)),
        None => see_other("/console/login"),
    }
}

fn login_page(state: &AppState, status: StatusCode, error: &str, notice: &str) -> Response {
    let csrf = new_secret();
    let mut response = page(
        status,
        &LoginPage {
            who: None,
            csrf: &csrf,
            error,
            notice,
            provider: state.oidc().is_some(),
        },
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, LOGIN_COOKIE, &csrf, Some(3600)),
    );
    response
}

pub async fn form(
    State(state): State<AppState>,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let expired = query.is_ok_and(|Query(q)| q.expired.is_some());
    let notice = if expired {
        "Сеанс завершён. Войдите снова."
    } else {
        ""
    };
    login_page(&state, StatusCode::OK, "", notice)
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Counted before anything is read: a wrong token, a stale form and a right token alike.
    if let Some(refused) = too_many_sign_ins(&state, client, || {
        login_page(&state, StatusCode::TOO_MANY_REQUESTS, TOO_MANY_SIGN_INS, "")
    }) {
        return refused;
    }
    let Ok(form) = serde_urlencoded::from_bytes::<LoginForm>(&body) else {
        return login_page(
            &state,
            StatusCode::BAD_REQUEST,
            "Форма заполнена неверно.",
            "",
        );
    };
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !same_secret(&form.csrf, expected) {
        return login_page(
            &state,
            StatusCode::FORBIDDEN,
            "Форма устарела. Откройте страницу входа заново и повторите.",
            "",
        );
    }
    let token = form.token.trim();
    let found = if token.is_empty() || token.len() > 256 {
        None
    } else {
        match state.tokens().find_access_token(token).await {
            Ok(found) => found,
            Err(e) => return crate::ApiError::from(e).into_response(),
        }
    };
    let Some(record) = found else {
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            "Ключ доступа не найден или отозван.",
            "",
        );
    };
    // A sign-in always starts a new session: the one this browser had (if any) ends.
    if let Some(old) = cookie(&headers, COOKIE) {
        state.sessions().end(old).await;
    }
    let id = state
        .sessions()
        .start(
            Session {
                token_id: record.id,
                token_hash: token_hash(token),
                role: record.role,
                family_id: record.family_id,
                name: record.name.clone(),
                csrf: new_secret(),
                last_seen: chrono::Utc::now(),
                provider: None,
            },
            state.config().session_idle,
        )
        .await;
    let mut response = see_other(start_page(record.role));
    let idle = state.config().session_idle.num_seconds();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, set_cookie(&state, COOKIE, &id, None));
    headers.append(
        header::SET_COOKIE,
        set_cookie(&state, LOGIN_COOKIE, "", Some(0)),
    );
    tracing::info!(
        idle_seconds = idle,
        role = record.role.as_str(),
        "console sign-in"
    );
    response
}

#[derive(Debug, Deserialize)]
pub struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

pub async fn sign_out(
    State(state): State<AppState>,
    person: Person,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = serde_urlencoded::from_bytes::<LogoutForm>(&body).ok();
    if !person.check_csrf(form.as_ref().map(|f| f.csrf.as_str())) {
        return message(
            StatusCode::FORBIDDEN,
            Some(&person),
            "Запрос отклонён",
            "Форма устарела или отправлена не с этой страницы. Обновите страницу и повторите.",
            "/console",
        );
    }
    if let Some(id) = cookie(&headers, COOKIE) {
        state.sessions().end(id).await;
    }
    let mut response = super::oidc::after_logout(&state, &person);
    response
        .headers_mut()
        .append(header::SET_COOKIE, set_cookie(&state, COOKIE, "", Some(0)));
    response
}
