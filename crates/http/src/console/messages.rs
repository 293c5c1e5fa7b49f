//! The domain's validation messages, in Russian for people (the API keeps the English ones with
//! their stable codes). A pure function: a message it does not know is shown as it is.

/// The Russian text of a validation message.
pub fn russian(message: &str) -> String {
    let known = match message {
        "must not be empty" => "обязательное поле",
        "must not be in the future" => "дата не может быть в будущем",
        "must not be in the past" => "дата не может быть в прошлом",
        "is too far in the past" => "слишком ранняя дата",
        "is too far in the future" => "слишком поздняя дата",
        "must not contain control characters" => "недопустимые символы",
        "at least one member is required" => "укажите хотя бы одного члена семьи",
        "at least one parent is required" => "укажите хотя бы одного родителя",
        "this person is already a member of the family" => "этот человек уже есть в семье",
        "the family must keep at least one parent" => "в семье должен остаться родитель",
        "must not be before the birth date" => "дата раньше даты рождения",
        "the same member is confirmed twice" => "этот ребёнок подтверждён дважды",
        "no such member in this family" => "в семье нет такого члена семьи",
        "only children can be confirmed as students" => "обучение подтверждается только детям",
        "this key was already used with a different request" => {
            "эта форма уже отправлена с другими данными: откройте её заново"
        }
        "the corrected member would duplicate another member" => {
            "после исправления запись совпадёт с другим членом семьи"
        }
        "must be 11 digits, as XXX-XXX-XXX YY" => "СНИЛС — 11 цифр: 000-000-000 00",
        "the check number (the last two digits) does not match" => {
            "СНИЛС с ошибкой: контрольное число (две последние цифры) не сходится"
        }
        "is not a number the check-number rule applies to" => "такого СНИЛС не бывает",
        _ => "",
    };
    if !known.is_empty() {
        return known.to_string();
    }
    if let Some(n) = message
        .strip_prefix("must be at most ")
        .and_then(|r| r.strip_suffix(" characters"))
    {
        return format!("не длиннее {n} символов");
    }
    message.to_string()
}

/// Why a grant was refused as not eligible, in Russian, from the API's explanation
/// ("N children count under the policy; at least M are required") and the policy in force.
pub fn not_eligible(detail: &str, policy: Option<&registry_domain::Policy>) -> String {
    let numbers: Vec<&str> = detail
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .collect();
    let rule = policy.map_or(String::new(), |p| {
        let study = p.study.as_ref().map_or(String::new(), |s| {
            format!(
                " (при подтверждённом обучении — до {} лет; подтверждает {})",
                s.age_limit, s.confirmed_by
            )
        });
        format!(" Учитываются дети до {} лет{study}.", p.age_limit)
    });
    match numbers.as_slice() {
        [counted, required, ..] => format!(
            "Семья не многодетная по правилам, действующим на дату решения: учитывается детей — \
             {counted}, нужно не меньше {required}.{rule}"
        ),
        _ => format!("Семья не многодетная по правилам, действующим на дату решения.{rule}"),
    }
}

/// Each child of a grant, and whether it counts on the decision's day under `policy`, and why
/// not («Лев — не учитывается: 16 лет исполнилось 15.01.2028»).
pub fn children_explained(
    policy: &registry_domain::Policy,
    members: &[registry_domain::Member],
    day: chrono::NaiveDate,
) -> Vec<String> {
    use registry_domain::{Care, Relation};
    let ru = crate::verify::ru_date;
    members
        .iter()
        .filter(|m| m.relation == Relation::Child)
        .map(|m| {
            let name = format!("{} {}", m.last_name, m.first_name);
            let why = if m.birth_date > day {
                "не учитывается: родился(ась) после даты решения".to_string()
            } else {
                match policy.counted_until(m) {
                    Some(until) if until >= day => format!("учитывается (до {})", ru(until)),
                    Some(_) if policy.counts_on(members, m, day) => {
                        "учитывается, пока учитывается младший ребёнок".to_string()
                    }
                    Some(until) => format!(
                        "не учитывается: возраст, до которого учитываются дети ({} лет{}), \
                         пройден {}",
                        policy.age_limit,
                        policy.study.as_ref().map_or(String::new(), |s| format!(
                            "; при очном обучении — {}",
                            s.age_limit
                        )),
                        ru(until.succ_opt().unwrap_or(until))
                    ),
                    None => match m.care {
                        Care::StateCare => {
                            "не учитывается: на полном государственном обеспечении".to_string()
                        }
                        Care::ParentalRightsLost => {
                            "не учитывается: родители лишены родительских прав".to_string()
                        }
                        Care::ParentalRightsRestricted => {
                            "не учитывается: родители ограничены в родительских правах".to_string()
                        }
                        Care::Family => "не учитывается по правилам".to_string(),
                    },
                }
            };
            format!("{name} — {why}")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(first: &str, born: &str) -> registry_domain::Member {
        registry_domain::Member {
            member_id: registry_domain::MemberId(uuid::Uuid::nil()),
            last_name: "Орлов".into(),
            first_name: first.into(),
            middle_name: None,
            birth_date: chrono::NaiveDate::parse_from_str(born, "%Y-%m-%d").unwrap_or_default(),
            relation: registry_domain::Relation::Child,
            student_until: None,
            care: registry_domain::Care::default(),
            snils: None,
        }
    }

    #[test]
    fn given_a_child_past_the_age_limit_then_the_refusal_says_which_and_when() {
        let policy = registry_domain::Policy::federal_2024();
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default();
        let lines = children_explained(
            &policy,
            &[child("Лев", "2005-01-15"), child("Ася", "2017-07-08")],
            day,
        );
        assert!(
            lines[0].starts_with("Орлов Лев — не учитывается: возраст"),
            "{lines:?}"
        );
        assert!(
            lines[1].starts_with("Орлов Ася — учитывается (до "),
            "{lines:?}"
        );
    }

    #[test]
    fn given_a_known_message_then_it_reads_in_russian() {
        assert_eq!(
            russian("must not be in the future"),
            "дата не может быть в будущем"
        );
        assert_eq!(
            russian("must be at most 64 characters"),
            "не длиннее 64 символов"
        );
    }

    #[test]
    fn given_an_unknown_message_then_it_is_kept() {
        assert_eq!(russian("something new"), "something new");
    }

    #[test]
    fn given_the_counts_then_the_refusal_names_them() {
        let policy = registry_domain::Policy::federal_2024();
        let text = not_eligible(
            "2 children count under the policy; at least 3 are required",
            Some(&policy),
        );
        assert!(
            text.contains(&format!("до {} лет", policy.age_limit)),
            "{text}"
        );
        assert!(text.contains("учитывается детей — 2"), "{text}");
        assert!(text.contains("не меньше 3"), "{text}");
    }
}
