//! Reading the console's forms (`application/x-www-form-urlencoded`) into commands, with an
//! error per field in Russian. Field names follow the API's JSON paths (`members[2].birth_date`),
//! so the domain's field errors land next to their inputs.

use chrono::NaiveDate;
use registry_domain::{Care, Decision, Member, MemberId, Relation};
use std::collections::BTreeMap;

/// Member rows of the grant form (a family of up to this many members is entered without script).
pub const MEMBER_ROWS: usize = 10;

/// A submitted form's fields.
#[derive(Clone, Debug, Default)]
pub struct Fields(Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &[u8]) -> Option<Self> {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .ok()
            .map(Self)
    }

    /// The trimmed value of `name` ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// Replaces (or adds) a field.
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.retain(|(k, _)| k != name);
        self.0.push((name.to_string(), value.to_string()));
    }

    /// Every field, in the order sent.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The form's meaning, for an idempotency key: its fields sorted, without the CSRF token.
    pub fn meaning(&self) -> String {
        let mut pairs: Vec<&(String, String)> =
            self.0.iter().filter(|(k, _)| k != "csrf").collect();
        pairs.sort();
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    }
}

/// Errors by field name, in Russian.
#[derive(Clone, Debug, Default)]
pub struct Errors(pub BTreeMap<String, String>);

impl Errors {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.entry(field.into()).or_insert_with(|| message.into());
    }

    pub fn of(&self, field: &str) -> &str {
        self.0.get(field).map_or("", String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A date as typed: `ГГГГ-ММ-ДД` (a date input) or `ДД.ММ.ГГГГ`.
pub fn date(errors: &mut Errors, field: &str, raw: &str, required: bool) -> Option<NaiveDate> {
    if raw.is_empty() {
        if required {
            errors.add(field, "обязательное поле");
        }
        return None;
    }
    let parsed = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(raw, "%d.%m.%Y"));
    match parsed {
        Ok(d) => Some(d),
        Err(_) => {
            errors.add(field, "дата в формате ДД.ММ.ГГГГ, например 01.05.2014");
            None
        }
    }
}

/// The decision block (`decision.number`, `decision.date`, `decision.office`).
pub fn decision(fields: &Fields, errors: &mut Errors) -> Option<Decision> {
    let number = fields.get("decision.number");
    if number.is_empty() {
        errors.add("decision.number", "обязательное поле");
    }
    let date = date(errors, "decision.date", fields.get("decision.date"), true)?;
    let office = Some(fields.get("decision.office"))
        .filter(|o| !o.is_empty())
        .map(str::to_string);
    Some(Decision {
        number: number.to_string(),
        date,
        office,
        term_until: None,
    })
}

/// A member row as typed, for showing the form again.
#[derive(Clone, Debug, Default)]
pub struct MemberRow {
    pub index: usize,
    pub relation: String,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: String,
    pub birth_date: String,
    /// СНИЛС, optional.
    pub snils: String,
}

impl MemberRow {
    pub fn is_blank(&self) -> bool {
        self.relation.is_empty()
            && self.last_name.is_empty()
            && self.first_name.is_empty()
            && self.middle_name.is_empty()
            && self.birth_date.is_empty()
            && self.snils.is_empty()
    }

    pub fn name(&self, field: &str) -> String {
        format!("members[{}].{field}", self.index)
    }
}

/// The member rows of the form (all of them, blank ones too).
pub fn member_rows(fields: &Fields) -> Vec<MemberRow> {
    (0..MEMBER_ROWS)
        .map(|index| {
            let get = |f: &str| fields.get(&format!("members[{index}].{f}")).to_string();
            MemberRow {
                index,
                relation: get("relation"),
                last_name: get("last_name"),
                first_name: get("first_name"),
                middle_name: get("middle_name"),
                birth_date: get("birth_date"),
                snils: get("snils"),
            }
        })
        .collect()
}

/// The members of the filled rows, in order; a row's errors under its own field names. The rows
/// that are filled are numbered again from 0 for the command, so `renumber` maps the domain's
/// `members[k]` back to the form's row.
pub fn members(rows: &[MemberRow], errors: &mut Errors) -> (Vec<Member>, Vec<usize>) {
    let mut members = Vec::new();
    let mut renumber = Vec::new();
    for row in rows.iter().filter(|r| !r.is_blank()) {
        let relation = match row.relation.as_str() {
            "parent" => Some(Relation::Parent),
            "child" => Some(Relation::Child),
            _ => {
                errors.add(row.name("relation"), "выберите: родитель или ребёнок");
                None
            }
        };
        let birth = date(errors, &row.name("birth_date"), &row.birth_date, true);
        for (field, value) in [
            ("last_name", &row.last_name),
            ("first_name", &row.first_name),
        ] {
            if value.is_empty() {
                errors.add(row.name(field), "обязательное поле");
            }
        }
        if let (Some(relation), Some(birth_date)) = (relation, birth) {
            renumber.push(row.index);
            members.push(Member {
                member_id: MemberId(uuid::Uuid::nil()),
                last_name: row.last_name.clone(),
                first_name: row.first_name.clone(),
                middle_name: Some(row.middle_name.clone()).filter(|m| !m.is_empty()),
                birth_date,
                relation,
                student_until: None,
                care: Care::default(),
                snils: Some(row.snils.clone()).filter(|s| !s.is_empty()),
            });
        }
    }
    if members.is_empty() && errors.is_empty() {
        errors.add("members", "укажите членов семьи");
    }
    (members, renumber)
}

/// The domain's `members[k].field` in the form's numbering.
pub fn form_field(field: &str, renumber: &[usize]) -> String {
    let Some(rest) = field.strip_prefix("members[") else {
        return field.to_string();
    };
    let Some((k, tail)) = rest.split_once(']') else {
        return field.to_string();
    };
    match k.parse::<usize>().ok().and_then(|k| renumber.get(k)) {
        Some(row) => format!("members[{row}]{tail}"),
        None => field.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        Fields(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        )
    }

    #[test]
    fn given_dates_in_both_spellings_then_both_are_read() {
        let mut e = Errors::default();
        let d = NaiveDate::from_ymd_opt(2014, 5, 1);
        assert_eq!(date(&mut e, "d", "2014-05-01", true), d);
        assert_eq!(date(&mut e, "d", "01.05.2014", true), d);
        assert!(e.is_empty());
        assert_eq!(date(&mut e, "d", "31.02.2014", true), None);
        assert!(e.of("d").contains("ДД.ММ.ГГГГ"));
    }

    #[test]
    fn given_blank_rows_between_filled_ones_then_errors_keep_the_form_numbering() {
        let f = fields(&[
            ("members[0].relation", "parent"),
            ("members[0].last_name", "Иванова"),
            ("members[0].first_name", "Анна"),
            ("members[0].birth_date", "1985-03-02"),
            ("members[3].relation", "child"),
            ("members[3].last_name", "Иванов"),
            ("members[3].first_name", "Пётр"),
            ("members[3].birth_date", "2014-05-01"),
        ]);
        let mut e = Errors::default();
        let (members, renumber) = members(&member_rows(&f), &mut e);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(members.len(), 2);
        assert_eq!(
            form_field("members[1].birth_date", &renumber),
            "members[3].birth_date"
        );
    }

    #[test]
    fn given_a_row_without_a_relation_then_its_field_says_so() {
        let f = fields(&[("members[2].last_name", "Иванов")]);
        let mut e = Errors::default();
        let _ = members(&member_rows(&f), &mut e);
        assert!(!e.of("members[2].relation").is_empty());
        assert!(!e.of("members[2].birth_date").is_empty());
        assert!(!e.of("members[2].first_name").is_empty());
    }

    #[test]
    fn the_meaning_ignores_the_csrf_token_and_field_order() {
        let a = fields(&[("a", "1"), ("csrf", "x"), ("b", "2")]);
        let b = fields(&[("b", "2"), ("a", "1"), ("csrf", "y")]);
        assert_eq!(a.meaning(), b.meaning());
    }
}
