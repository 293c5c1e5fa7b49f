//! The officer's other commands from the family page: renew, add a member, correct a member,
//! remove one (confirmed first) and reissue the certificate (confirmed first). Each reads its form
//! and calls `Registry::execute` exactly as the JSON API does.

use super::forms::{self, Errors, Fields};
use super::messages::{not_eligible, russian};
use super::officer::{family_id_of, forbidden, request, stale_form};
use super::session::Person;
use super::{message, page, see_other};
use crate::error::ApiError;
use crate::extract::Segments;
use crate::state::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use registry_app::new_certificate_id;
use registry_domain::{
    Care, Command, FamilyId, Member, MemberChanges, MemberId, Relation, RemovalReason,
    StudentConfirmation,
};
use uuid::Uuid;

/// A form read and checked: the person may act, its CSRF token is theirs, the family id parses.
/// The error is the page the handler answers as it is, once per request.
#[allow(clippy::result_large_err)]
fn checked(person: &Person, raw: &str, body: &[u8]) -> Result<(FamilyId, Fields), Response> {
    if !person.is_officer() {
        return Err(forbidden(person));
    }
    let fields = Fields::parse(body).ok_or_else(|| stale_form(person))?;
    if !person.check_csrf(Some(fields.get("csrf"))) {
        return Err(stale_form(person));
    }
    let family_id =
        family_id_of(raw).ok_or_else(|| ApiError::NotFound("no such family").into_response())?;
    Ok((family_id, fields))
}

/// A form field's name in Russian, from the domain's path (`member.birth_date`).
fn field_ru(path: &str) -> &'static str {
    let last = path.rsplit('.').next().unwrap_or(path);
    match last {
        "last_name" => "Фамилия",
        "first_name" => "Имя",
        "middle_name" => "Отчество",
        "birth_date" => "Дата рождения",
        "relation" => "Кем приходится",
        "number" => "Номер решения",
        "date" => "Дата решения",
        "student_until" => "Очное обучение до",
        "member" | "member_id" => "Член семьи",
        _ => "Поле",
    }
}

/// The family page again, with the errors shown at the form that was sent.
async fn failed(
    state: &AppState,
    person: &Person,
    family_id: FamilyId,
    form: &str,
    lines: Vec<String>,
) -> Response {
    super::officer::family_response(
        state,
        person,
        &family_id.0.to_string(),
        &super::officer::FamilyQuery::default(),
        (form, lines),
    )
    .await
}

fn family_path(family_id: FamilyId) -> String {
    format!("/console/families/{}", family_id.0)
}

fn refused(person: &Person, family_id: FamilyId, text: &str) -> Response {
    message(
        StatusCode::UNPROCESSABLE_ENTITY,
        Some(person),
        "Изменение не внесено",
        text,
        &family_path(family_id),
    )
}

/// Runs the command of a form and answers the family page, or why not.
async fn run(
    state: &AppState,
    person: &Person,
    fields: &Fields,
    path: &str,
    family_id: FamilyId,
    command: Command,
    done: &str,
) -> Response {
    let form = match done {
        "renewed" => "renewal",
        "added" => "member",
        _ => "",
    };
    let revision = fields.get("revision").parse::<u64>().ok();
    let request = request(person, fields, path, family_id, command, revision);
    let back = family_path(family_id);
    match state
        .registry()
        .execute(request)
        .await
        .map_err(ApiError::from)
    {
        Ok(_) => see_other(&format!("{back}?done={done}")),
        Err(ApiError::PreconditionFailed(_)) => see_other(&format!("{back}?done=stale")),
        Err(ApiError::Validation(problems)) => {
            let lines = problems
                .iter()
                .map(|p| format!("{}: {}", field_ru(&p.field), russian(&p.message)))
                .collect::<Vec<_>>();
            if form.is_empty() {
                refused(
                    person,
                    family_id,
                    &format!("Проверьте: {}.", lines.join("; ")),
                )
            } else {
                failed(state, person, family_id, form, lines).await
            }
        }
        Err(ApiError::NotEligible(detail)) => {
            refused(person, family_id, &not_eligible(&detail, None))
        }
        Err(ApiError::Conflict(why)) => message(
            StatusCode::CONFLICT,
            Some(person),
            "Изменение не внесено",
            &format!("Состояние семьи этого не позволяет ({why})."),
            &back,
        ),
        Err(ApiError::NotFound(_)) => refused(person, family_id, "Член семьи не найден."),
        Err(e) => e.into_response(),
    }
}

/// Renew: a new decision, with the students' confirmed dates (`student_until.{member_id}`).
pub async fn renew(
    State(state): State<AppState>,
    person: Person,
    Segments(raw): Segments<String>,
    body: Bytes,
) -> Response {
    let (family_id, fields) = match checked(&person, &raw, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut errors = Errors::default();
    let decision = forms::decision(&fields, &mut errors);
    let mut confirmations = Vec::new();
    for (name, value) in fields.pairs() {
        let Some(member) = name.strip_prefix("student_until.") else {
            continue;
        };
        if value.trim().is_empty() {
            continue;
        }
        let (Ok(member), Some(until)) = (
            Uuid::parse_str(member),
            forms::date(&mut errors, name, value.trim(), true),
        ) else {
            continue;
        };
        confirmations.push(StudentConfirmation {
            member_id: MemberId(member),
            student_until: until,
        });
    }
    let Some(decision) = decision.filter(|_| errors.is_empty()) else {
        let text = errors.0.values().cloned().collect::<Vec<_>>().join("; ");
        return refused(
            &person,
            family_id,
            &format!("Проверьте поля формы: {text}."),
        );
    };
    let command = Command::Renew {
        decision,
        student_confirmations: confirmations,
    };
    let path = format!("{}/renewal", family_path(family_id));
    run(
        &state, &person, &fields, &path, family_id, command, "renewed",
    )
    .await
}

/// Add a member (a child born or adopted, a new guardian).
pub async fn add_member(
    State(state): State<AppState>,
    person: Person,
    Segments(raw): Segments<String>,
    body: Bytes,
) -> Response {
    let (family_id, fields) = match checked(&person, &raw, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut errors = Errors::default();
    let relation = relation(fields.get("relation"));
    let birth_date = forms::date(&mut errors, "birth_date", fields.get("birth_date"), true);
    for field in ["last_name", "first_name"] {
        if fields.get(field).is_empty() {
            errors.add(field, "обязательное поле");
        }
    }
    if relation.is_none() {
        errors.add("relation", "выберите: родитель или ребёнок");
    }
    let (Some(relation), Some(birth_date), true) = (relation, birth_date, errors.is_empty()) else {
        let lines = errors
            .0
            .iter()
            .map(|(f, e)| format!("{}: {e}", field_ru(f)))
            .collect();
        return failed(&state, &person, family_id, "member", lines).await;
    };
    let member = Member {
        member_id: registry_app::new_member_id(),
        last_name: fields.get("last_name").to_string(),
        first_name: fields.get("first_name").to_string(),
        middle_name: Some(fields.get("middle_name").to_string()).filter(|m| !m.is_empty()),
        birth_date,
        relation,
        student_until: None,
        care: Care::default(),
        snils: None,
    };
    let command = Command::AddMember {
        member,
        decision: None,
    };
    let path = format!("{}/members", family_path(family_id));
    run(&state, &person, &fields, &path, family_id, command, "added").await
}

fn relation(raw: &str) -> Option<Relation> {
    match raw {
        "parent" => Some(Relation::Parent),
        "child" => Some(Relation::Child),
        _ => None,
    }
}

/// Correct a member: only the fields the officer changed are sent as changes.
pub async fn correct_member(
    State(state): State<AppState>,
    person: Person,
    Segments((raw, member)): Segments<(String, String)>,
    body: Bytes,
) -> Response {
    let (family_id, fields) = match checked(&person, &raw, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Ok(member_id) = Uuid::parse_str(&member).map(MemberId) else {
        return refused(&person, family_id, "Член семьи не найден.");
    };
    let current = match state.registry().load(family_id).await {
        Ok(Some(l)) => l
            .family
            .members
            .into_iter()
            .find(|m| m.member_id == member_id),
        Ok(None) => None,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some(current) = current else {
        return refused(&person, family_id, "Член семьи не найден.");
    };
    let mut errors = Errors::default();
    let changed = |name: &str, now: &str| {
        let sent = fields.get(name);
        (sent != now).then(|| sent.to_string())
    };
    let birth_date = forms::date(&mut errors, "birth_date", fields.get("birth_date"), true);
    if !errors.is_empty() {
        return refused(&person, family_id, "Дата рождения — в формате ДД.ММ.ГГГГ.");
    }
    let middle_now = current.middle_name.clone().unwrap_or_default();
    let changes = MemberChanges {
        last_name: changed("last_name", &current.last_name),
        first_name: changed("first_name", &current.first_name),
        middle_name: changed("middle_name", &middle_now).map(|m| Some(m).filter(|m| !m.is_empty())),
        birth_date: birth_date.filter(|d| *d != current.birth_date),
        ..MemberChanges::default()
    };
    if changes.is_empty() {
        return see_other(&family_path(family_id));
    }
    let command = Command::CorrectMember { member_id, changes };
    let path = format!("{}/members/{}", family_path(family_id), member_id.0);
    run(
        &state,
        &person,
        &fields,
        &path,
        family_id,
        command,
        "corrected",
    )
    .await
}

#[derive(Template)]
#[template(path = "console/confirm.html")]
struct Confirm<'a> {
    who: Option<&'a Person>,
    csrf: &'a str,
    title: &'a str,
    text: String,
    action: String,
    hidden: Vec<(String, String)>,
    button: &'a str,
    back: String,
}

/// The confirmation step: the same fields again, with `confirmed=yes`.
fn confirm(
    person: &Person,
    fields: &Fields,
    title: &str,
    text: String,
    (action, back): (String, String),
) -> Response {
    let hidden = fields
        .pairs()
        .filter(|(k, _)| *k != "csrf" && *k != "confirmed")
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    page(
        StatusCode::OK,
        &Confirm {
            who: Some(person),
            csrf: &person.csrf,
            title,
            text,
            action,
            hidden,
            button: "Да, подтверждаю",
            back,
        },
    )
}

fn removal_reason(raw: &str) -> Option<(RemovalReason, &'static str)> {
    Some(match raw {
        "moved_out" => (RemovalReason::MovedOut, "выбыл(а) из семьи"),
        "parental_rights_lost" => (
            RemovalReason::ParentalRightsLost,
            "лишение родительских прав",
        ),
        "state_care" => (
            RemovalReason::StateCare,
            "на полном государственном обеспечении",
        ),
        "deceased" => (RemovalReason::Deceased, "смерть"),
        "other" => (RemovalReason::Other, "другая причина"),
        _ => return None,
    })
}

/// Remove a member: asks first, then records `MemberRemoved` (and `StatusTerminated` when too
/// few children still count).
pub async fn remove_member(
    State(state): State<AppState>,
    person: Person,
    Segments((raw, member)): Segments<(String, String)>,
    body: Bytes,
) -> Response {
    let (family_id, fields) = match checked(&person, &raw, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Ok(member_id) = Uuid::parse_str(&member).map(MemberId) else {
        return refused(&person, family_id, "Член семьи не найден.");
    };
    let Some((reason, reason_ru)) = removal_reason(fields.get("reason")) else {
        return refused(&person, family_id, "Выберите причину исключения.");
    };
    let path = format!("{}/members/{}/removal", family_path(family_id), member_id.0);
    if fields.get("confirmed") != "yes" {
        let text = format!(
            "{} будет исключён(а) из удостоверения (причина: {reason_ru}). Если детей, которые \
             учитываются, останется меньше трёх, статус семьи прекратится.",
            fields.get("member_name")
        );
        return confirm(
            &person,
            &fields,
            "Исключить члена семьи?",
            text,
            (path, family_path(family_id)),
        );
    }
    let command = Command::RemoveMember { member_id, reason };
    run(
        &state, &person, &fields, &path, family_id, command, "removed",
    )
    .await
}

/// Reissue the certificate (a lost phone, a leaked PDF): asks first; the old QR then scans as
/// replaced.
pub async fn reissue(
    State(state): State<AppState>,
    person: Person,
    Segments(raw): Segments<String>,
    body: Bytes,
) -> Response {
    let (family_id, fields) = match checked(&person, &raw, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let reason = fields.get("reason").to_string();
    if reason.is_empty() {
        return refused(&person, family_id, "Укажите причину перевыпуска.");
    }
    let path = format!("{}/certificate/reissue", family_path(family_id));
    if fields.get("confirmed") != "yes" {
        let text = "Будет выпущено новое удостоверение с тем же номером и новым QR-кодом; \
                    прежний код и прежний PDF при проверке покажут «НЕДЕЙСТВИТЕЛЬНО» с \
                    пометкой, что удостоверение заменено."
            .to_string();
        return confirm(
            &person,
            &fields,
            "Перевыпустить удостоверение?",
            text,
            (path, family_path(family_id)),
        );
    }
    let command = Command::ReissueCertificate {
        reason,
        certificate_id: new_certificate_id(),
    };
    run(
        &state, &person, &fields, &path, family_id, command, "reissued",
    )
    .await
}

#[derive(Template)]
#[template(path = "console/correct.html")]
struct CorrectPage<'a> {
    who: Option<&'a Person>,
    csrf: &'a str,
    family_id: String,
    member_id: String,
    last_name: String,
    first_name: String,
    middle_name: String,
    birth_date: String,
    revision: u64,
    form_key: String,
}

/// The correction form of one member, filled with what the registry holds.
pub async fn correct_form(
    State(state): State<AppState>,
    person: Person,
    Segments((raw, member)): Segments<(String, String)>,
) -> Response {
    if !person.is_officer() {
        return forbidden(&person);
    }
    let (Some(family_id), Ok(member_id)) = (family_id_of(&raw), Uuid::parse_str(&member)) else {
        return ApiError::NotFound("no such member").into_response();
    };
    let loaded = match state.registry().load(family_id).await {
        Ok(Some(l)) => l,
        Ok(None) => return ApiError::NotFound("no such family").into_response(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some(m) = loaded
        .family
        .members
        .iter()
        .find(|m| m.member_id == MemberId(member_id))
    else {
        return refused(&person, family_id, "Член семьи не найден.");
    };
    page(
        StatusCode::OK,
        &CorrectPage {
            who: Some(&person),
            csrf: &person.csrf,
            family_id: family_id.0.to_string(),
            member_id: member_id.to_string(),
            last_name: m.last_name.clone(),
            first_name: m.first_name.clone(),
            middle_name: m.middle_name.clone().unwrap_or_default(),
            birth_date: m.birth_date.to_string(),
            revision: loaded.revision,
            form_key: Uuid::now_v7().to_string(),
        },
    )
}
