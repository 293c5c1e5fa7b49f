//! Signing in through the city's identity provider (OpenID Connect; `registry-oidc` does the
//! protocol). Who a person is comes only from the verified ID token: an officer or an auditor by
//! the role claim, a family member by the СНИЛС claim matched against the members on record.
//! Anything else the browser sends (the query, cookies) only finds the pending sign-in.

use super::login::start_page;
use super::session::{cookie, set_cookie, set_cookie_with, Person, COOKIE};
use super::{message, see_other, too_many_sign_ins, TOO_MANY_SIGN_INS};
use crate::state::AppState;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use registry_access::session::{new_secret, same_secret};
use registry_access::{ProviderSignIn, Role, Session};
use registry_oidc::{Pending, SignedIn, StaffRole};
use registry_read_store::{Search, SearchKey};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The longest a session from the identity provider lasts, however busy.
pub const PROVIDER_SESSION_HOURS: i64 = 12;

/// The cookie holding the `state` of this browser's sign-in in progress.
pub const OIDC_COOKIE: &str = "registry_oidc";
/// Ends the `state` cookie (a sign-in finished or refused).
const CLEAR_OIDC_COOKIE: HeaderValue =
    HeaderValue::from_static("registry_oidc=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
/// How long a sign-in may take at the provider.
const PENDING_FOR: Duration = Duration::from_secs(600);
/// Sign-ins in progress kept at most (the oldest go first).
const PENDING_MAX: usize = 10_000;

/// Sign-ins sent to the provider and not back yet, by their `state`; each is taken once.
#[derive(Debug, Default)]
pub struct PendingSignIns(Mutex<HashMap<String, (Pending, Instant)>>);

impl PendingSignIns {
    fn keep(&self, pending: Pending) {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, (_, at)| at.elapsed() < PENDING_FOR);
        if map.len() >= PENDING_MAX {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(
            registry_access::token_hash(&pending.state),
            (pending, Instant::now()),
        );
    }

    fn take(&self, state: &str) -> Option<Pending> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (pending, at) = map.remove(&registry_access::token_hash(state))?;
        (at.elapsed() < PENDING_FOR).then_some(pending)
    }
}

fn refused(text: &str) -> Response {
    let mut response = message(
        StatusCode::FORBIDDEN,
        None,
        "Вход не выполнен",
        text,
        "/console/login",
    );
    response
        .headers_mut()
        .append(header::SET_COOKIE, CLEAR_OIDC_COOKIE);
    response
}

/// Sends the browser to the provider's login page.
pub async fn start(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
) -> Response {
    // Each start keeps a pending sign-in: a flood from one address must not push out the
    // others' (the map keeps at most `PENDING_MAX`).
    if let Some(refused) = too_many_sign_ins(&state, client, || {
        message(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            "Вход не выполнен",
            TOO_MANY_SIGN_INS,
            "/console/login",
        )
    }) {
        return refused;
    }
    let Some(oidc) = state.oidc() else {
        return message(
            StatusCode::NOT_FOUND,
            None,
            "Вход через mos.ru не настроен",
            "Войдите с ключом доступа или обратитесь к администратору реестра.",
            "/console/login",
        );
    };
    let (url, pending) = match oidc.start() {
        Ok(started) => started,
        Err(e) => {
            tracing::error!(error = %e, "the sign-in could not start");
            return refused("Поставщик входа сейчас недоступен. Попробуйте позже.");
        }
    };
    let cookie_value = pending.state.clone();
    state.pending_sign_ins().keep(pending);
    let mut response = see_other(url.as_str());
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie_with(
            &state,
            OIDC_COOKIE,
            &cookie_value,
            Some(PENDING_FOR.as_secs() as i64),
            "Lax",
        ),
    );
    response
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The provider's redirect back: exchange the code, check the ID token, start a session.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<Callback>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Some(oidc) = state.oidc() else {
        return see_other("/console/login");
    };
    let Ok(Query(back)) = query else {
        return refused("Ответ поставщика входа не читается. Начните вход заново.");
    };
    if back.error.is_some() {
        return refused("Поставщик входа не подтвердил вход. Начните вход заново.");
    }
    let (Some(code), Some(sent_state)) = (back.code, back.state) else {
        return refused("Ответ поставщика входа неполон. Начните вход заново.");
    };
    // The same browser that started the sign-in must bring it back, and only once.
    let ours = cookie(&headers, OIDC_COOKIE).unwrap_or_default();
    if ours.is_empty() || !same_secret(ours, &sent_state) {
        return refused("Вход начат в другом окне или уже завершён. Начните вход заново.");
    }
    let Some(pending) = state.pending_sign_ins().take(&sent_state) else {
        return refused("Ссылка входа уже использована или устарела. Начните вход заново.");
    };
    let who = match oidc.finish(&code, pending).await {
        Ok(who) => who,
        Err(e) => {
            tracing::warn!(error = %e, "a sign-in through the identity provider was refused");
            return refused(
                "Ответ поставщика входа не прошёл проверку (подпись, адресат, срок или одноразовый \
                 код). Сеанс не начат. Начните вход заново; если повторится, сообщите \
                 администратору.",
            );
        }
    };
    let Some((role, family_id)) = (match who.staff {
        Some(StaffRole::Officer) => Some((Role::Officer, None)),
        Some(StaffRole::Auditor) => Some((Role::Auditor, None)),
        None => match family_of(&state, &who).await {
            Ok(found) => found.map(|f| (Role::Holder, Some(f))),
            Err(e) => return e.into_response_page(),
        },
    }) else {
        return message(
            StatusCode::OK,
            None,
            "Семья не найдена",
            &format!(
                "Вы вошли как {}, но в реестре нет многодетной семьи, в которой вы записаны. Если \
                 статус вашей семье предоставлен, проверьте в управлении социальной защиты, что \
                 ваш СНИЛС внесён в сведения о семье.",
                who.name
            ),
            "/console/login",
        )
        .with_cookie_cleared();
    };
    begin_session(&state, &headers, who, role, family_id).await
}

trait ClearPending {
    fn with_cookie_cleared(self) -> Response;
}

impl ClearPending for Response {
    fn with_cookie_cleared(mut self) -> Response {
        self.headers_mut()
            .append(header::SET_COOKIE, CLEAR_OIDC_COOKIE);
        self
    }
}

enum FamilyOf {
    Unavailable,
    Several,
}

impl FamilyOf {
    fn into_response_page(self) -> Response {
        match self {
            FamilyOf::Unavailable => message(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "Реестр временно недоступен",
                "Не удалось найти вашу семью в реестре. Попробуйте войти ещё раз через минуту.",
                "/console/login",
            ),
            FamilyOf::Several => message(
                StatusCode::OK,
                None,
                "Нужно уточнить сведения",
                "Ваш СНИЛС записан в нескольких действующих многодетных семьях. Обратитесь в \
                 управление социальной защиты: сведения исправят, и вы увидите свою семью.",
                "/console/login",
            ),
        }
        .with_cookie_cleared()
    }
}

/// The family one of whose members has the signed-in person's СНИЛС (the newest, if several).
async fn family_of(
    state: &AppState,
    who: &SignedIn,
) -> Result<Option<registry_domain::FamilyId>, FamilyOf> {
    let Some(snils) = who
        .snils
        .as_deref()
        .and_then(|s| registry_domain::snils::normalize(s).ok())
    else {
        return Ok(None);
    };
    let search = Search {
        key: SearchKey::Snils(snils),
        after: None,
        limit: 10,
    };
    let hits = match state.read().search(&search).await {
        Ok(page) => page.hits,
        Err(e) => {
            tracing::error!(error = %e, "the family of a signed-in person could not be looked up");
            return Err(FamilyOf::Unavailable);
        }
    };
    // A family whose status is in force comes first; two such families for one person is a
    // record to correct, not a choice to make here.
    let mut families: Vec<_> = hits
        .iter()
        .map(|h| (h.family_id, h.status == "active"))
        .collect();
    families.dedup_by_key(|(f, _)| *f);
    let active: Vec<_> = families.iter().filter(|(_, a)| *a).collect();
    match active.as_slice() {
        [one] => Ok(Some(one.0)),
        [] => Ok(families.first().map(|(f, _)| *f)),
        _ => Err(FamilyOf::Several),
    }
}

async fn begin_session(
    state: &AppState,
    headers: &HeaderMap,
    who: SignedIn,
    role: Role,
    family_id: Option<registry_domain::FamilyId>,
) -> Response {
    // A sign-in always starts a new session id; the browser's earlier session (if any) ends.
    if let Some(old) = cookie(headers, COOKIE) {
        state.sessions().end(old).await;
    }
    // The same person always gets the same actor id (the history and the access record name it).
    let actor = Uuid::new_v5(
        &Uuid::NAMESPACE_URL,
        format!("{}#{}", who.issuer, who.subject).as_bytes(),
    );
    let office = if role == Role::Holder {
        None
    } else {
        who.office.clone()
    };
    // An official's name is kept so the history names them, as it names a token's holder.
    if role != Role::Holder {
        let person = registry_access::KnownPerson {
            id: actor,
            name: who.name.clone(),
            role,
            office: office.clone(),
            seen_at: chrono::Utc::now(),
        };
        if let Err(e) = state.tokens().remember_person(&person).await {
            tracing::error!(error = %e, "could not keep the signed-in official's name");
        }
    }
    let id = state
        .sessions()
        .start(
            Session {
                token_id: actor,
                token_hash: String::new(),
                role,
                family_id,
                name: who.name.clone(),
                csrf: new_secret(),
                last_seen: chrono::Utc::now(),
                provider: Some(ProviderSignIn {
                    id_token: who.id_token,
                    office,
                    // However busy, a provider session ends: the person signs in again, and the
                    // provider says again who they are and what their roles are.
                    ends_at: chrono::Utc::now() + chrono::Duration::hours(PROVIDER_SESSION_HOURS),
                }),
            },
            state.config().session_idle,
        )
        .await;
    tracing::info!(
        role = role.as_str(),
        "console sign-in through the identity provider"
    );
    // A page that moves on by itself (Refresh): the redirect back from the provider is a
    // navigation from another site, on which a SameSite=Strict session cookie is not sent yet.
    let next = start_page(role);
    let mut response = message(
        StatusCode::OK,
        None,
        "Вы вошли",
        &format!("Здравствуйте, {}.", who.name),
        next,
    );
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(state, COOKIE, &id, None));
    h.append(header::SET_COOKIE, CLEAR_OIDC_COOKIE);
    if let Ok(v) = HeaderValue::from_str(&format!("0; url={next}")) {
        h.insert(header::REFRESH, v);
    }
    response
}

/// What a logout of `person` answers: for a session from the identity provider, a page that
/// moves on to the provider's logout (a redirect from the logout form would be a form submission
/// to another origin, which the console's CSP refuses), else the login page.
pub fn after_logout(state: &AppState, person: &Person) -> Response {
    if person.id_token.is_none() {
        return see_other("/console/login");
    }
    let Some(url) = state.oidc().and_then(|oidc| oidc.logout_url()) else {
        // On a shared computer the provider's session would sign the next person straight in.
        return message(
            StatusCode::OK,
            None,
            "Вы вышли из реестра",
            "Поставщик входа не даёт завершить его сеанс отсюда: выйдите и из mos.ru, особенно на \
             чужом компьютере.",
            "/console/login",
        );
    };
    let mut response = message(
        StatusCode::OK,
        None,
        "Вы вышли из реестра",
        "Сейчас завершится и вход в mos.ru.",
        url.as_str(),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("0; url={url}")) {
        response.headers_mut().insert(header::REFRESH, v);
    }
    response
}
