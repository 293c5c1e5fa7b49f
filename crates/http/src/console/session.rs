//! Who is signed in: the session cookie, its CSRF token, and the redirect to the login page.

use super::see_other;
use crate::extract::Caller;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderMap, HeaderValue};
use axum::response::Response;
use registry_access::session::same_secret;
use registry_access::{Role, Session};
use registry_domain::FamilyId;
use uuid::Uuid;

/// The session cookie's name.
pub const COOKIE: &str = "registry_session";
/// The cookie a login form's CSRF token is checked against (no session exists yet).
pub const LOGIN_COOKIE: &str = "registry_login";

/// A signed-in person.
#[derive(Clone, Debug)]
pub struct Person {
    pub token_id: Uuid,
    pub role: Role,
    pub family_id: Option<FamilyId>,
    pub name: String,
    pub office: Option<String>,
    pub csrf: String,
    /// The ID token, when the person signed in through the identity provider (for its logout).
    pub id_token: Option<String>,
}

impl Person {
    pub fn caller(&self) -> Caller {
        Caller {
            token_id: self.token_id,
            role: self.role,
            family_id: self.family_id,
            name: self.name.clone(),
            office: self.office.clone(),
        }
    }

    /// The role in Russian, for the header.
    pub fn role_ru(&self) -> &'static str {
        match self.role {
            Role::Officer => "сотрудник соцзащиты",
            Role::Auditor => "аудитор",
            Role::Holder => "семья",
            Role::System => "система",
        }
    }

    pub fn is_officer(&self) -> bool {
        self.role == Role::Officer
    }

    /// Refuses a form whose CSRF token is not this session's.
    pub fn check_csrf(&self, sent: Option<&str>) -> bool {
        sent.is_some_and(|s| same_secret(s, &self.csrf))
    }
}

/// The value of cookie `name`, if the request has it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Secure when the public address is https.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    set_cookie_with(state, name, value, max_age, "Strict")
}

/// The same with another `SameSite` (`Lax` for the cookie that must come back with the
/// identity provider's redirect, a navigation from another site).
pub fn set_cookie_with(
    state: &AppState,
    name: &str,
    value: &str,
    max_age: Option<i64>,
    same_site: &str,
) -> HeaderValue {
    let secure = if state.config().public_base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let age = max_age.map_or(String::new(), |s| format!("; Max-Age={s}"));
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite={same_site}{secure}{age}"
    ))
    .unwrap_or(HeaderValue::from_static("invalid=1"))
}

/// The person of the request's session, if it is live and its token not revoked.
pub async fn current(state: &AppState, headers: &HeaderMap) -> Option<Person> {
    let id = cookie(headers, COOKIE)?;
    if id.is_empty() || id.len() > 100 {
        return None;
    }
    let session = state
        .sessions()
        .touch(id, chrono::Utc::now(), state.config().session_idle)
        .await?;
    // A session from the identity provider is bound to no token: the ID token held when it
    // started, and the session ends with a logout or when idle.
    if let Some(provider) = session.provider.clone() {
        if chrono::Utc::now() > provider.ends_at {
            state.sessions().end(id).await;
            return None;
        }
        return Some(person(session, provider.office, Some(provider.id_token)));
    }
    // A revoked token ends its sessions at their next request.
    let office = match state.tokens().token_by_hash(&session.token_hash).await {
        Ok(Some(token)) if token.id == session.token_id => token.office,
        _ => {
            state.sessions().end(id).await;
            return None;
        }
    };
    Some(person(session, office, None))
}

fn person(s: Session, office: Option<String>, id_token: Option<String>) -> Person {
    Person {
        token_id: s.token_id,
        role: s.role,
        family_id: s.family_id,
        name: s.name,
        office,
        csrf: s.csrf,
        id_token,
    }
}

impl FromRequestParts<AppState> for Person {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        current(state, &parts.headers)
            .await
            .ok_or_else(|| see_other("/console/login?expired=1"))
    }
}
