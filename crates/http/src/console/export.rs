//! The auditor's export of a family's history: CSV (for a spreadsheet) and JSON (the API's
//! history document), downloaded from the family page.

use super::officer::{family_id_of, forbidden};
use super::session::Person;
use super::view;
use crate::error::ApiError;
use crate::extract::Segments;
use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use registry_access::Role;

fn may_read(person: &Person) -> bool {
    matches!(person.role, Role::Officer | Role::Auditor)
}

/// A cell a spreadsheet would not run as a formula (`=`, `+`, `-`, `@` start one).
fn cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    }
}

fn download(content_type: &'static str, name: String, body: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

pub async fn history_csv(
    State(state): State<AppState>,
    person: Person,
    Segments(raw): Segments<String>,
) -> Response {
    if !may_read(&person) {
        return forbidden(&person);
    }
    let Some(family_id) = family_id_of(&raw) else {
        return ApiError::NotFound("no such family").into_response();
    };
    let mut entries = match view::timeline(&state, family_id).await {
        Ok(t) if !t.is_empty() => t,
        Ok(_) => return ApiError::NotFound("no such family").into_response(),
        Err(e) => return e.into_response(),
    };
    entries.reverse();
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = [
        "позиция",
        "ревизия",
        "время (МСК)",
        "событие",
        "тип",
        "кто",
        "роль",
        "изменено",
        "причина",
    ];
    let mut rows = vec![header.iter().map(|h| (*h).to_string()).collect::<Vec<_>>()];
    for e in entries {
        rows.push(vec![
            e.position.to_string(),
            e.revision.to_string(),
            e.when,
            e.what.to_string(),
            e.event_type,
            cell(&e.who),
            e.role.to_string(),
            cell(&e.changed),
            cell(&e.why),
        ]);
    }
    for row in rows {
        if let Err(e) = out.write_record(&row) {
            return ApiError::internal(e).into_response();
        }
    }
    match out.into_inner() {
        // A byte-order mark, so a spreadsheet reads the Cyrillic as UTF-8.
        Ok(bytes) => download(
            "text/csv; charset=utf-8",
            format!("history-{}.csv", family_id.0),
            [b"\xEF\xBB\xBF".as_slice(), &bytes].concat(),
        ),
        Err(e) => ApiError::internal(e).into_response(),
    }
}

pub async fn history_json(
    State(state): State<AppState>,
    person: Person,
    Segments(raw): Segments<String>,
) -> Response {
    if !may_read(&person) {
        return forbidden(&person);
    }
    let name = format!("history-{raw}.json");
    match crate::api::history(State(state), person.caller(), Segments(raw)).await {
        Ok(axum::Json(history)) => match serde_json::to_vec_pretty(&history) {
            Ok(body) => download("application/json", name, body),
            Err(e) => ApiError::internal(e).into_response(),
        },
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn given_a_formula_like_value_then_the_cell_is_quoted() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("Иванова"), "Иванова");
    }
}
