//! Officers' and auditors' pages: search, the family page with its timeline, the grant form and
//! the revocation (with a confirmation step).

use super::forms::{self, Errors, Fields, MemberRow};
use super::messages::not_eligible;
use super::session::Person;
use super::view::{self, FamilyCard, TimelineEntry};
use super::{message, page, see_other};
use crate::dto::SearchRequest;
use crate::error::ApiError;
use crate::extract::Segments;
use crate::state::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use registry_access::AccessKind;
use registry_app::{new_certificate_id, new_family_id, new_member_id, CommandRequest, Role};
use registry_domain::{Command, FamilyId};
use serde::Deserialize;
use uuid::Uuid;

pub(super) fn forbidden(person: &Person) -> Response {
    message(
        StatusCode::FORBIDDEN,
        Some(person),
        "Нет доступа",
        "Эта страница недоступна для вашей роли.",
        "/console",
    )
}

pub(super) fn stale_form(person: &Person) -> Response {
    message(
        StatusCode::FORBIDDEN,
        Some(person),
        "Запрос отклонён",
        "Форма устарела или отправлена не с этой страницы. Обновите страницу и повторите.",
        "/console",
    )
}

fn readers(person: &Person) -> bool {
    matches!(person.role, Role::Officer | Role::Auditor)
}

#[derive(Template)]
#[template(path = "console/search.html")]
struct SearchPage<'a> {
    who: Option<&'a Person>,
    csrf: &'a str,
    error: String,
    results: Vec<view::SearchHit>,
    searched: bool,
}

pub async fn search_form(person: Person) -> Response {
    if !readers(&person) {
        return forbidden(&person);
    }
    page(
        StatusCode::OK,
        &SearchPage {
            who: Some(&person),
            csrf: &person.csrf,
            error: String::new(),
            results: Vec::new(),
            searched: false,
        },
    )
}

/// Search (the body carries the personal data, never the URL).
pub async fn search(State(state): State<AppState>, person: Person, body: Bytes) -> Response {
    if !readers(&person) {
        return forbidden(&person);
    }
    let Some(fields) = Fields::parse(&body) else {
        return stale_form(&person);
    };
    if !person.check_csrf(Some(fields.get("csrf"))) {
        return stale_form(&person);
    }
    let mut errors = Errors::default();
    let text = |name: &str| Some(fields.get(name).to_string()).filter(|v| !v.is_empty());
    let request = match fields.get("kind") {
        "number" => SearchRequest {
            certificate_number: text("certificate_number"),
            ..SearchRequest::default()
        },
        "member" => SearchRequest {
            last_name: text("last_name"),
            birth_date: forms::date(&mut errors, "birth_date", fields.get("birth_date"), true),
            ..SearchRequest::default()
        },
        _ => SearchRequest {
            decision_number: text("decision_number"),
            ..SearchRequest::default()
        },
    };
    let (error, results) = if let Some((_, e)) = errors.0.iter().next() {
        (format!("Дата рождения: {e}"), Vec::new())
    } else {
        match crate::search::search_families(&state, &person.caller(), &request).await {
            Ok(found) => (String::new(), view::hits(&found)),
            Err(ApiError::Validation(_)) => (
                "Заполните поле поиска: номер удостоверения; фамилию и дату рождения; или номер \
                 решения."
                    .to_string(),
                Vec::new(),
            ),
            Err(e) => return e.into_response(),
        }
    };
    page(
        StatusCode::OK,
        &SearchPage {
            who: Some(&person),
            csrf: &person.csrf,
            error,
            results,
            searched: true,
        },
    )
}

#[derive(Template)]
#[template(path = "console/family.html")]
struct FamilyPage<'a> {
    who: Option<&'a Person>,
    csrf: &'a str,
    card: FamilyCard,
    timeline: Vec<TimelineEntry>,
    /// The auditor's check against the signed log (none for officers).
    log_check: Option<view::LogCheck>,
    notice: &'a str,
    form_key: String,
    as_of: String,
    officer: bool,
    /// The form on this page whose submission failed (`renewal`, `member`), and its errors.
    failed_form: &'a str,
    failures: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct FamilyQuery {
    /// A day (`ГГГГ-ММ-ДД`): the family as it was at the end of it, Moscow time.
    as_of: Option<String>,
    /// What the page says on top after a change.
    done: Option<String>,
}

pub(super) fn family_id_of(raw: &str) -> Option<FamilyId> {
    Uuid::parse_str(raw).ok().map(FamilyId)
}

pub async fn family_page(
    State(state): State<AppState>,
    person: Person,
    Segments(raw): Segments<String>,
    query: Result<Query<FamilyQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    family_response(&state, &person, &raw, &query, ("", Vec::new())).await
}

/// The family page, with the errors of a form on it that failed (`failed.0` names the form).
pub(super) async fn family_response(
    state: &AppState,
    person: &Person,
    raw: &str,
    query: &FamilyQuery,
    failed: (&str, Vec<String>),
) -> Response {
    if !readers(person) {
        return forbidden(person);
    }
    let not_found = || {
        message(
            StatusCode::NOT_FOUND,
            Some(person),
            "Семья не найдена",
            "В реестре нет семьи с таким идентификатором.",
            "/console/search",
        )
    };
    let Some(family_id) = family_id_of(raw) else {
        return not_found();
    };
    let as_of_day = query
        .as_of
        .as_deref()
        .filter(|d| !d.is_empty())
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    let loaded = match as_of_day {
        Some(day) => state
            .registry()
            .as_of(family_id, view::end_of_day(day))
            .await
            .map(|at| at.map(|a| (a.family, a.revision))),
        None => state
            .registry()
            .load(family_id)
            .await
            .map(|l| l.map(|l| (l.family, l.revision))),
    };
    let (family, revision) = match loaded {
        Ok(Some(l)) => l,
        Ok(None) => return not_found(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let kind = if as_of_day.is_some() {
        AccessKind::FamilyAsOf
    } else {
        AccessKind::FamilyView
    };
    if let Err(e) = state
        .record_access(&person.caller(), [family_id], kind)
        .await
    {
        return e.into_response();
    }
    let mut timeline = match view::timeline(state, family_id).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let log_check = if person.role == Role::Auditor {
        Some(view::check_in_log(state, family_id, &mut timeline).await)
    } else {
        None
    };
    let today = as_of_day.unwrap_or_else(|| state.registry().today());
    let card = view::card(state, &family, revision, today);
    let notice = match query.done.as_deref() {
        Some("granted") => "Статус многодетной семьи предоставлен.",
        Some("revoked") => "Статус отозван.",
        Some("renewed") => "Статус продлён.",
        Some("added") => "Член семьи добавлен.",
        Some("corrected") => "Сведения исправлены.",
        Some("removed") => "Член семьи исключён.",
        Some("reissued") => "Удостоверение перевыпущено: прежний QR-код больше не действует.",
        Some("stale") => {
            "Семью изменил другой сотрудник, пока вы заполняли форму. Ниже её новое состояние; \
             проверьте и повторите."
        }
        _ => "",
    };
    let status = if failed.0.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    page(
        status,
        &FamilyPage {
            who: Some(person),
            csrf: &person.csrf,
            card,
            timeline,
            log_check,
            notice,
            form_key: Uuid::now_v7().to_string(),
            as_of: as_of_day.map(|d| d.to_string()).unwrap_or_default(),
            officer: person.is_officer() && as_of_day.is_none(),
            failed_form: failed.0,
            failures: failed.1,
        },
    )
}

/// The QR of a family's current certificate (PNG), for the family page.
pub async fn family_qr(
    State(state): State<AppState>,
    person: Person,
    Segments(raw): Segments<String>,
) -> Response {
    // A QR verifiers accept: for the officers who hand certificates out, and only while it may
    // be shown.
    if !person.is_officer() {
        return forbidden(&person);
    }
    let Some(family_id) = family_id_of(&raw) else {
        return ApiError::NotFound("no such family").into_response();
    };
    match state.read().certificate_of_family(family_id).await {
        Ok(Some(row))
            if crate::document::require_showable(row.state_on(state.registry().today()))
                .is_err() =>
        {
            ApiError::Conflict("the certificate is not valid: there is no code to show".into())
                .into_response()
        }
        Ok(Some(row)) => {
            let png = registry_credential::qr_png(&state.verify_url(row.token_id), 8);
            ([(header::CONTENT_TYPE, "image/png")], png).into_response()
        }
        Ok(None) => ApiError::NotFound("no such family").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "console/grant.html")]
struct GrantPage<'a> {
    who: Option<&'a Person>,
    csrf: &'a str,
    form_key: String,
    fields: Fields,
    rows: Vec<MemberRow>,
    errors: Errors,
    refusal: String,
    /// Each child and whether it counts, under a `not_eligible` refusal.
    children: Vec<String>,
}

fn grant_page(
    person: &Person,
    status: StatusCode,
    fields: Fields,
    errors: Errors,
    refusal: (String, Vec<String>),
) -> Response {
    let (refusal, children) = refusal;
    let form_key = Some(fields.get("form_key").to_string())
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| Uuid::now_v7().to_string());
    page(
        status,
        &GrantPage {
            who: Some(person),
            csrf: &person.csrf,
            form_key,
            rows: forms::member_rows(&fields),
            fields,
            errors,
            refusal,
            children,
        },
    )
}

pub async fn grant_form(person: Person) -> Response {
    if !person.is_officer() {
        return forbidden(&person);
    }
    grant_page(
        &person,
        StatusCode::OK,
        Fields::default(),
        Errors::default(),
        (String::new(), Vec::new()),
    )
}

/// The command envelope of a console form: its key makes a second submission append nothing.
pub(super) fn request(
    person: &Person,
    fields: &Fields,
    path: &str,
    family_id: FamilyId,
    command: Command,
    expected_revision: Option<u64>,
) -> CommandRequest {
    let key = fields.get("form_key");
    CommandRequest {
        family_id,
        command,
        actor: person.caller().actor(),
        correlation_id: Uuid::now_v7(),
        causation_id: None,
        idempotency_key: (!key.is_empty() && key.len() <= 100).then(|| format!("console:{key}")),
        request_hash: registry_app::request_hash("POST", path, fields.meaning().as_bytes()),
        expected_revision,
    }
}

pub async fn grant(State(state): State<AppState>, person: Person, body: Bytes) -> Response {
    if !person.is_officer() {
        return forbidden(&person);
    }
    let Some(fields) = Fields::parse(&body) else {
        return stale_form(&person);
    };
    if !person.check_csrf(Some(fields.get("csrf"))) {
        return stale_form(&person);
    }
    let mut errors = Errors::default();
    let decision = forms::decision(&fields, &mut errors);
    let valid_from = forms::date(&mut errors, "valid_from", fields.get("valid_from"), false);
    let rows = forms::member_rows(&fields);
    let (members, renumber) = forms::members(&rows, &mut errors);
    let Some(decision) = decision.filter(|_| errors.is_empty()) else {
        return grant_page(
            &person,
            StatusCode::UNPROCESSABLE_ENTITY,
            fields,
            errors,
            (String::new(), Vec::new()),
        );
    };
    let family_id = new_family_id();
    let policy = state
        .registry()
        .policies()
        .in_force_on(decision.date)
        .ok()
        .cloned();
    let explained = policy
        .as_ref()
        .map(|p| super::messages::children_explained(p, &members, decision.date))
        .unwrap_or_default();
    let command = Command::Grant {
        decision,
        members: members
            .into_iter()
            .map(|mut m| {
                m.member_id = new_member_id();
                m
            })
            .collect(),
        valid_from,
        certificate_number: registry_app::certificate_number(family_id),
        certificate_id: new_certificate_id(),
    };
    let request = request(
        &person,
        &fields,
        "/console/families/new",
        family_id,
        command,
        None,
    );
    match state
        .registry()
        .execute(request)
        .await
        .map_err(ApiError::from)
    {
        Ok(outcome) => see_other(&format!(
            "/console/families/{}?done=granted",
            outcome.family.family_id.0
        )),
        Err(ApiError::Validation(problems))
            if problems.iter().any(|p| p.field == "Idempotency-Key") =>
        {
            // This form was sent before with other data: a fresh form, the data kept.
            let mut fields = fields;
            fields.set("form_key", &Uuid::now_v7().to_string());
            let mut errors = Errors::default();
            errors.add(
                "form",
                "Эта форма уже была отправлена с другими данными. Проверьте поля и отправьте \
                 снова.",
            );
            grant_page(
                &person,
                StatusCode::CONFLICT,
                fields,
                errors,
                (String::new(), Vec::new()),
            )
        }
        Err(ApiError::Validation(problems)) => {
            let mut errors = Errors::default();
            for p in problems {
                errors.add(
                    forms::form_field(&p.field, &renumber),
                    super::messages::russian(&p.message),
                );
            }
            grant_page(
                &person,
                StatusCode::UNPROCESSABLE_ENTITY,
                fields,
                errors,
                (String::new(), Vec::new()),
            )
        }
        Err(ApiError::NotEligible(detail)) => grant_page(
            &person,
            StatusCode::UNPROCESSABLE_ENTITY,
            fields,
            Errors::default(),
            (not_eligible(&detail, policy.as_ref()), explained),
        ),
        Err(e) => e.into_response(),
    }
}

#[derive(Template)]
#[template(path = "console/confirm_revoke.html")]
struct ConfirmRevoke<'a> {
    who: Option<&'a Person>,
    csrf: &'a str,
    family_id: String,
    certificate_number: String,
    reason: String,
    form_key: String,
    revision: String,
    error: &'a str,
}

/// Revocation: the first submission shows what will happen and asks to confirm; the confirmed
/// one records `StatusRevoked`.
pub async fn revoke(
    State(state): State<AppState>,
    person: Person,
    Segments(raw): Segments<String>,
    body: Bytes,
) -> Response {
    if !person.is_officer() {
        return forbidden(&person);
    }
    let Some(fields) = Fields::parse(&body) else {
        return stale_form(&person);
    };
    if !person.check_csrf(Some(fields.get("csrf"))) {
        return stale_form(&person);
    }
    let Some(family_id) = family_id_of(&raw) else {
        return ApiError::NotFound("no such family").into_response();
    };
    let revision = fields.get("revision").parse::<u64>().ok();
    let reason = fields.get("reason").to_string();
    let confirm = |error: &str| {
        page(
            if error.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            },
            &ConfirmRevoke {
                who: Some(&person),
                csrf: &person.csrf,
                family_id: family_id.0.to_string(),
                certificate_number: fields.get("certificate_number").to_string(),
                reason: reason.clone(),
                form_key: fields.get("form_key").to_string(),
                revision: revision.map(|r| r.to_string()).unwrap_or_default(),
                error,
            },
        )
    };
    if reason.is_empty() {
        return confirm("Укажите причину отзыва.");
    }
    if fields.get("confirmed") != "yes" {
        return confirm("");
    }
    let command = Command::Revoke {
        reason: reason.clone(),
        decision: None,
    };
    let path = format!("/console/families/{}/revocation", family_id.0);
    let request = request(&person, &fields, &path, family_id, command, revision);
    match state
        .registry()
        .execute(request)
        .await
        .map_err(ApiError::from)
    {
        Ok(_) => see_other(&format!("/console/families/{}?done=revoked", family_id.0)),
        Err(ApiError::PreconditionFailed(_)) => {
            see_other(&format!("/console/families/{}?done=stale", family_id.0))
        }
        Err(ApiError::Conflict(why)) => message(
            StatusCode::CONFLICT,
            Some(&person),
            "Отозвать нельзя",
            &format!("Состояние семьи не позволяет отзыв ({why})."),
            &format!("/console/families/{}", family_id.0),
        ),
        Err(ApiError::Validation(problems)) => {
            let text = problems
                .iter()
                .map(|p| super::messages::russian(&p.message))
                .collect::<Vec<_>>()
                .join("; ");
            confirm(&format!("Причина: {text}"))
        }
        Err(e) => e.into_response(),
    }
}

/// The family's certificate PDF (officers), the same document as the API's.
pub async fn family_pdf(
    State(state): State<AppState>,
    person: Person,
    Segments(raw): Segments<String>,
) -> Response {
    if !person.is_officer() {
        return forbidden(&person);
    }
    match crate::document::family_pdf(State(state), person.caller(), Segments(raw)).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}
