//! `registry serve --demo`: a sample family and one token of each role, so a newcomer has
//! something to open in a browser.

use anyhow::Context;
use registry_access::TokenStoreExt;
use registry_app::{
    certificate_number, new_certificate_id, new_family_id, new_member_id, Actor, CommandRequest,
    Role,
};
use registry_domain::{Care, Command, Decision, FamilyId, Member, Relation};
use registry_http::AppState;
use uuid::Uuid;

/// The office the demo decisions and the demo staff tokens name.
const DEMO_OFFICE: &str = "Демонстрационный отдел соцзащиты";

/// What the demo created; the tokens are shown once.
#[derive(Clone, Debug)]
pub struct DemoData {
    pub family_id: FamilyId,
    pub verify_url: String,
    pub officer_token: String,
    pub auditor_token: String,
    pub holder_token: String,
    /// The family already existed (a second `--demo` start): only new tokens were made.
    pub reused: bool,
}

fn member(
    last: &str,
    first: &str,
    middle: &str,
    born: chrono::NaiveDate,
    relation: Relation,
) -> Member {
    Member {
        member_id: new_member_id(),
        last_name: last.into(),
        first_name: first.into(),
        middle_name: Some(middle.into()),
        birth_date: born,
        relation,
        student_until: None,
        care: Care::Family,
        snils: None,
    }
}

/// Creates (or finds) the demo family and new tokens.
pub async fn seed_demo(state: &AppState) -> anyhow::Result<DemoData> {
    let registry = state.registry();
    let read = state.read();
    let tokens = state.tokens();
    let now = registry.now();
    let today = registry.today();
    let years_ago = |y: i32, m: u32, d: u32| {
        chrono::NaiveDate::from_ymd_opt(chrono::Datelike::year(&today) - y, m, d)
            .context("demo date")
    };
    let existing = tokens
        .list_tokens()
        .await?
        .into_iter()
        .find(|t| t.name == "demo holder" && t.family_id.is_some())
        .and_then(|t| t.family_id);
    let (family_id, reused) = match existing {
        Some(id) if registry.load(id).await?.is_some() => (id, true),
        _ => {
            let family_id = new_family_id();
            let command = Command::Grant {
                decision: Decision {
                    number: "ДЕМО-0001".into(),
                    date: today,
                    office: Some(DEMO_OFFICE.into()),
                    term_until: None,
                },
                members: vec![
                    member(
                        "Иванова",
                        "Мария",
                        "Петровна",
                        years_ago(38, 3, 14)?,
                        Relation::Parent,
                    ),
                    member(
                        "Иванов",
                        "Сергей",
                        "Николаевич",
                        years_ago(40, 11, 2)?,
                        Relation::Parent,
                    ),
                    member(
                        "Иванов",
                        "Пётр",
                        "Сергеевич",
                        years_ago(12, 5, 1)?,
                        Relation::Child,
                    ),
                    member(
                        "Иванова",
                        "Анна",
                        "Сергеевна",
                        years_ago(8, 9, 15)?,
                        Relation::Child,
                    ),
                    member(
                        "Иванов",
                        "Олег",
                        "Сергеевич",
                        years_ago(3, 2, 28)?,
                        Relation::Child,
                    ),
                ],
                valid_from: None,
                certificate_number: certificate_number(family_id),
                certificate_id: new_certificate_id(),
            };
            registry
                .execute(CommandRequest {
                    family_id,
                    command,
                    actor: Actor {
                        id: "registry-demo".into(),
                        role: Role::System,
                    },
                    correlation_id: Uuid::now_v7(),
                    causation_id: None,
                    idempotency_key: None,
                    request_hash: String::new(),
                    expected_revision: None,
                })
                .await?;
            (family_id, false)
        }
    };
    let (officer_token, _) = tokens
        .create_access_token("demo officer", Role::Officer, None, Some(DEMO_OFFICE), now)
        .await?;
    let (auditor_token, _) = tokens
        .create_access_token("demo auditor", Role::Auditor, None, Some(DEMO_OFFICE), now)
        .await?;
    let (holder_token, _) = tokens
        .create_access_token("demo holder", Role::Holder, Some(family_id), None, now)
        .await?;
    let certificate = read
        .certificate_of_family(family_id)
        .await?
        .context("the demo family has no certificate")?;
    Ok(DemoData {
        family_id,
        verify_url: state.verify_url(certificate.token_id),
        officer_token,
        auditor_token,
        holder_token,
        reused,
    })
}
