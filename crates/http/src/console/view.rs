//! What the console's pages show, built from the registry's own types: the family card, the
//! timeline with the actor's name, search hits. Russian labels live here once.

use crate::dto::SearchResult;
use crate::error::ApiError;
use crate::state::AppState;
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use registry_domain::{CertificateState, Family, FamilyId, Relation};
use registry_tlog::InLog;
use std::collections::HashMap;

pub(crate) use crate::verify::ru_date;

/// The last instant of a Moscow day.
pub fn end_of_day(day: NaiveDate) -> DateTime<Utc> {
    let last = day.and_hms_opt(23, 59, 59).unwrap_or_default();
    chrono_tz::Europe::Moscow
        .from_local_datetime(&last)
        .earliest()
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc))
}

/// A state's badge text and colour class.
pub fn badge(state: &str) -> (&'static str, &'static str) {
    match state {
        "active" => ("ДЕЙСТВИТЕЛЬНО", "valid"),
        "not_yet_valid" => ("ЕЩЁ НЕ ДЕЙСТВУЕТ", "pending"),
        "expired" => ("СРОК ИСТЁК", "invalid"),
        "revoked" => ("ОТОЗВАНО", "invalid"),
        "terminated" => ("ПРЕКРАЩЕНО", "invalid"),
        "replaced" => ("ЗАМЕНЕНО", "invalid"),
        _ => ("НЕДЕЙСТВИТЕЛЬНО", "invalid"),
    }
}

pub fn relation_ru(r: Relation) -> &'static str {
    match r {
        Relation::Parent => "родитель",
        Relation::Child => "ребёнок",
    }
}

#[derive(Clone, Debug)]
pub struct MemberLine {
    pub member_id: String,
    pub is_child: bool,
    pub name: String,
    pub relation: &'static str,
    pub born: String,
    pub counted: bool,
}

/// The family as the console shows it.
#[derive(Clone, Debug)]
pub struct FamilyCard {
    pub family_id: String,
    pub certificate_number: String,
    pub serial: u32,
    pub badge: &'static str,
    pub badge_class: &'static str,
    pub validity: String,
    pub valid_until_reason: String,
    pub decision: String,
    pub members: Vec<MemberLine>,
    pub revision: u64,
    pub active: bool,
    /// Not revoked: the officer's forms apply (an expired or terminated status can be renewed).
    pub changeable: bool,
}

pub fn card(state: &AppState, family: &Family, revision: u64, today: NaiveDate) -> FamilyCard {
    let shown = family.state_on(today);
    let (badge, badge_class) = badge(shown.as_str());
    let policy = state.registry().policy_of(family);
    let basis = registry_domain::validity_basis(&policy, family);
    let validity = match (shown, family.ended_on) {
        (CertificateState::Revoked, Some(on)) => format!("отозвано {}", ru_date(on)),
        (CertificateState::Terminated, Some(on)) => format!("прекращено {}", ru_date(on)),
        (CertificateState::Expired, _) => {
            format!("срок истёк {}", ru_date(family.valid_until))
        }
        _ => format!(
            "с {} по {} включительно",
            ru_date(family.valid_from),
            ru_date(family.valid_until)
        ),
    };
    let decision = format!(
        "№ {} от {}{}",
        family.decision.number,
        ru_date(family.decision.date),
        family
            .decision
            .office
            .as_deref()
            .map_or(String::new(), |o| format!(", {o}"))
    );
    FamilyCard {
        family_id: family.family_id.0.to_string(),
        certificate_number: family.certificate_number.clone(),
        serial: family.certificate_serial,
        badge,
        badge_class,
        validity,
        valid_until_reason: basis.russian(family.valid_until),
        decision,
        members: family
            .members
            .iter()
            .map(|m| MemberLine {
                member_id: m.member_id.0.to_string(),
                is_child: m.relation == Relation::Child,
                name: [
                    m.last_name.as_str(),
                    m.first_name.as_str(),
                    m.middle_name.as_deref().unwrap_or(""),
                ]
                .join(" ")
                .trim()
                .to_string(),
                relation: relation_ru(m.relation),
                born: if m.is_erased() {
                    registry_domain::personal::ERASED_TEXT.to_string()
                } else {
                    ru_date(m.birth_date)
                },
                counted: policy.counts_on(&family.members, m, today),
            })
            .collect(),
        revision,
        active: shown.is_valid(),
        changeable: family.status != registry_domain::Status::Revoked,
    }
}

/// One event of a family's timeline.
#[derive(Clone, Debug)]
pub struct TimelineEntry {
    pub position: u64,
    pub revision: u64,
    pub event_type: String,
    pub when: String,
    pub what: &'static str,
    pub who: String,
    pub role: &'static str,
    pub why: String,
    /// For a correction: what changed, in Russian («имя: Варвара»).
    pub changed: String,
    /// For auditors: how the event stands in the signed log («в журнале, запись №12»), and the
    /// badge class (`valid`, `pending`, `invalid`); empty for officers.
    pub in_log: String,
    pub in_log_class: &'static str,
}

/// The auditor's check of a family's events against the signed log, for the family page.
#[derive(Clone, Debug, Default)]
pub struct LogCheck {
    /// One sentence on top of the timeline.
    pub summary: String,
    pub class: &'static str,
}

/// Proves every event of the family, as stored, included in the latest signed checkpoint (the
/// checkpoint's signature is checked first), and marks each timeline entry with the outcome.
pub async fn check_in_log(
    state: &AppState,
    family_id: FamilyId,
    timeline: &mut [TimelineEntry],
) -> LogCheck {
    let proved = match state.log().prove_stream(&family_id.stream_name()).await {
        Ok(p) => p,
        Err(registry_tlog::LogError::NoCheckpoint) => {
            return LogCheck {
                summary: "Журнал ещё не подписал ни одной контрольной точки.".into(),
                class: "pending",
            }
        }
        Err(registry_tlog::LogError::Note(e)) => {
            tracing::error!(error = %e, "the latest checkpoint does not verify");
            return LogCheck {
                summary: "Внимание: последняя контрольная точка журнала не проходит проверку \
                          подписи. Сообщите администратору и запустите `registry audit verify`."
                    .into(),
                class: "invalid",
            };
        }
        Err(e) => {
            tracing::error!(error = %e, "the family's events could not be checked against the log");
            return LogCheck {
                summary: "Проверить включение в журнал сейчас не удалось; обновите страницу позже."
                    .into(),
                class: "pending",
            };
        }
    };
    let size = proved.checkpoint.size;
    let mut failed = Vec::new();
    let mut pending = 0;
    for entry in timeline.iter_mut() {
        let state = proved
            .events
            .iter()
            .find(|e| e.position == entry.position)
            .map(|e| e.state);
        (entry.in_log, entry.in_log_class) = match state {
            Some(InLog::Included(leaf)) => (format!("в журнале, запись №{}", leaf + 1), "valid"),
            Some(InLog::Pending) => {
                pending += 1;
                ("ждёт следующей контрольной точки".into(), "pending")
            }
            Some(InLog::Altered) => {
                failed.push(entry.position);
                ("не подтверждается журналом".into(), "invalid")
            }
            // The history shows an event the log no longer holds.
            None => {
                failed.push(entry.position);
                ("нет в журнале событий".into(), "invalid")
            }
        };
    }
    let total = timeline.len();
    let summary = if !failed.is_empty() {
        format!(
            "Внимание: события на позициях {} не подтверждаются подписанным журналом (контрольная \
             точка на {size} записей). Сообщите администратору и запустите `registry audit verify`.",
            failed.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
        )
    } else if pending > 0 {
        format!(
            "Включены в подписанный журнал {} из {total} событий (контрольная точка на {size} \
             записей, подпись проверена); остальные войдут в следующую.",
            total - pending
        )
    } else {
        format!(
            "Все события семьи ({total}) включены в подписанный журнал: доказательство включения \
             каждого проверено по контрольной точке на {size} записей, подпись журнала \
             «{}» проверена.",
            proved.checkpoint.origin
        )
    };
    LogCheck {
        summary,
        class: if !failed.is_empty() {
            "invalid"
        } else if pending > 0 {
            "pending"
        } else {
            "valid"
        },
    }
}

/// The fields a correction changed, with their new values.
pub fn changed_fields(data: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(data) else {
        return String::new();
    };
    let Some(changes) = value.get("changes").and_then(|c| c.as_object()) else {
        return String::new();
    };
    changes
        .iter()
        .map(|(field, new)| {
            let label = match field.as_str() {
                "last_name" => "фамилия",
                "first_name" => "имя",
                "middle_name" => "отчество",
                "birth_date" => "дата рождения",
                "relation" => "кем приходится",
                "student_until" => "очное обучение до",
                "care" => "проживание",
                other => other,
            };
            let shown = match new {
                serde_json::Value::Null => "удалено".to_string(),
                serde_json::Value::String(s) => {
                    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_or_else(|_| s.clone(), ru_date)
                }
                other => other.to_string(),
            };
            format!("{label}: {shown}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn event_ru(event_type: &str) -> &'static str {
    match event_type {
        "StatusGranted" => "Предоставлен статус",
        "StatusRenewed" => "Статус продлён",
        "MemberAdded" => "Добавлен член семьи",
        "MemberRemoved" => "Исключён член семьи",
        "MemberDetailsCorrected" => "Исправлены сведения",
        "StatusTerminated" => "Статус прекращён",
        "StatusRevoked" => "Статус отозван",
        "CertificateReissued" => "Удостоверение перевыпущено",
        _ => "Событие",
    }
}

fn role_ru(role: &str) -> &'static str {
    match role {
        "officer" => "сотрудник",
        "auditor" => "аудитор",
        "holder" => "семья",
        "system" => "система",
        _ => "",
    }
}

/// The family's history, newest first, with each actor's name where the token is known.
pub async fn timeline(
    state: &AppState,
    family_id: FamilyId,
) -> Result<Vec<TimelineEntry>, ApiError> {
    let entries = crate::history::family_history(state, family_id).await?;
    // The names of this history's actors only (looked up by id, not the whole token table).
    let mut actors: Vec<uuid::Uuid> = entries
        .iter()
        .filter_map(|e| uuid::Uuid::parse_str(&e.row.actor_id).ok())
        .collect();
    actors.sort_unstable();
    actors.dedup();
    let mut names: HashMap<String, String> = state
        .tokens()
        .tokens_by_id(&actors)
        .await?
        .into_iter()
        .map(|t| (t.id.to_string(), t.name))
        .collect();
    // Officials who signed in through the identity provider have no token: their names were
    // kept at sign-in.
    let unnamed: Vec<uuid::Uuid> = actors
        .iter()
        .filter(|a| !names.contains_key(&a.to_string()))
        .copied()
        .collect();
    names.extend(
        state
            .tokens()
            .people_by_id(&unnamed)
            .await?
            .into_iter()
            .map(|p| (p.id.to_string(), p.name)),
    );
    let mut timeline: Vec<TimelineEntry> = entries
        .into_iter()
        .map(|crate::history::HistoryEntry { row: r, data }| {
            let role = role_ru(&r.actor_role);
            let who = format!("{role} {}", r.actor_id);
            let name = names.get(&r.actor_id).cloned().unwrap_or_default();
            let changed = if r.event_type == "MemberDetailsCorrected" {
                changed_fields(&data)
            } else {
                String::new()
            };
            TimelineEntry {
                position: r.position,
                revision: r.revision,
                when: registry_domain::time::moscow_display(r.recorded_at),
                what: event_ru(&r.event_type),
                event_type: r.event_type,
                who: if name.is_empty() { who } else { name },
                role,
                why: r.reason.unwrap_or_default(),
                changed,
                in_log: String::new(),
                in_log_class: "",
            }
        })
        .collect();
    timeline.reverse();
    Ok(timeline)
}

/// A search hit as listed.
#[derive(Clone, Debug)]
pub struct SearchHit {
    pub family_id: String,
    pub certificate_number: String,
    pub badge: &'static str,
    pub badge_class: &'static str,
    pub members: String,
}

pub fn hits(found: &SearchResult) -> Vec<SearchHit> {
    found
        .families
        .iter()
        .map(|f| {
            let (badge, badge_class) = badge(&f.state);
            SearchHit {
                family_id: f.family_id.to_string(),
                certificate_number: f.certificate_number.clone(),
                badge,
                badge_class,
                members: f
                    .members
                    .iter()
                    .map(|m| format!("{} {}", m.last_name, m.first_name))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_correction_then_its_changed_fields_read_in_russian() {
        let data = r#"{"member_id":"x","changes":{"first_name":"Варвара","birth_date":"2026-11-02","middle_name":null},"policy":"p"}"#;
        assert_eq!(
            changed_fields(data),
            "дата рождения: 02.11.2026, имя: Варвара, отчество: удалено"
        );
    }

    #[test]
    fn given_an_event_without_changes_then_nothing_is_listed() {
        assert_eq!(changed_fields(r#"{"member_id":"x"}"#), "");
        assert_eq!(changed_fields("not json"), "");
    }
}
