//! The access record over real HTTP: every read of a family's personal data by an official
//! (the family view, as of an instant, the history, the PDF, a search that names it) leaves one
//! entry with who and what, never the data; the family sees them on `/me` and in its API, an
//! auditor asks by family and by official; a family reading its own card leaves none.
#![allow(clippy::unwrap_used)]

use registry_e2e::*;
use reqwest::StatusCode;
use serde_json::Value;

fn kinds(log: &Value) -> Vec<String> {
    log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["what"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn each_official_read_leaves_one_entry_that_the_family_and_an_auditor_see() {
    for db in [Db::Sqlite, Db::Postgres] {
        let Some(app) = spawn_app(db).await else {
            continue;
        };
        let granted = app.grant_family().await;
        let family = family_id_of(&granted);
        let holder = app.holder_token(family).await;
        let other = family_id_of(&app.grant_family().await);
        let path = format!("/api/v1/families/{}", family.0);

        let number = granted["certificate_number"].as_str().unwrap();
        let reads = [
            format!("/api/v1/families?certificate_number={number}"),
            path.clone(),
            format!(
                "{path}?as_of={}",
                app.now().to_rfc3339().replace('+', "%2B")
            ),
            format!("{path}/certificate.pdf"),
        ];
        for read in &reads {
            let answer = app.get(read, Some(&app.officer)).await;
            assert_eq!(answer.status, StatusCode::OK, "{read}: {}", answer.text);
        }
        let history = app
            .get(&format!("{path}/history"), Some(&app.auditor))
            .await;
        assert_eq!(history.status, StatusCode::OK, "{}", history.text);
        // The family's own reads are not an official's.
        assert_eq!(
            app.get("/api/v1/me/certificate", Some(&holder))
                .await
                .status,
            StatusCode::OK
        );

        let mine = app.get("/api/v1/me/access-log", Some(&holder)).await;
        assert_eq!(mine.status, StatusCode::OK, "{}", mine.text);
        assert_eq!(
            kinds(&mine.body),
            [
                "history",
                "pdf",
                "family_as_of",
                "family_view",
                "search_result"
            ],
            "one entry per read, newest first ({db:?})"
        );
        let first = &mine.body["entries"][4];
        assert_eq!(first["actor"]["name"], "officer");
        assert_eq!(first["actor"]["role"], "officer");
        assert_eq!(first["actor"]["office"], OFFICER_OFFICE);
        assert_eq!(first["what_ru"], "результат поиска");
        assert_eq!(mine.body["entries"][0]["actor"]["role"], "auditor");
        for secret in ["Смирнова", "Ольга", "1986-04-12"] {
            assert!(
                !mine.text.contains(secret),
                "no personal data in the record"
            );
        }

        // An auditor asks by family and by official; the other family was read by no one.
        let by_family = app
            .get(&format!("{path}/access-log"), Some(&app.auditor))
            .await;
        assert_eq!(kinds(&by_family.body), kinds(&mine.body));
        let none = app
            .get(
                &format!("/api/v1/families/{}/access-log", other.0),
                Some(&app.auditor),
            )
            .await;
        assert_eq!(kinds(&none.body), Vec::<String>::new());
        let officer_id = first["actor"]["id"].as_str().unwrap();
        let by_officer = app
            .get(
                &format!("/api/v1/access-log?actor={officer_id}"),
                Some(&app.auditor),
            )
            .await;
        assert_eq!(by_officer.body["entries"].as_array().unwrap().len(), 4);
        // Only auditors ask; a malformed actor is a clear 400.
        let refused = app
            .get(&format!("{path}/access-log"), Some(&app.officer))
            .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        let bad = app
            .get("/api/v1/access-log?actor=x", Some(&app.auditor))
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.text);
        assert_eq!(
            app.get("/api/v1/me/access-log", Some(&app.officer))
                .await
                .status,
            StatusCode::FORBIDDEN
        );
    }
}

#[tokio::test]
async fn the_family_sees_on_its_page_who_looked_at_its_record_and_when() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let family = family_id_of(&app.grant_family().await);
    let holder = app.holder_token(family).await;
    let client = browser();
    sign_in(&app, &client, &holder).await;
    let before = page(&client, format!("{}/me", app.base)).await.2;
    assert!(
        before.contains("Кто просматривал сведения о семье"),
        "{before}"
    );
    assert!(before.contains("не просматривали"), "{before}");

    // An officer opens the family's page in the console.
    let officer = browser();
    sign_in(&app, &officer, &app.officer).await;
    let (status, _, _) = page(
        &officer,
        format!("{}/console/families/{}", app.base, family.0),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let after = page(&client, format!("{}/me", app.base)).await.2;
    let when = registry_domain::time::moscow_display(app.now());
    assert!(after.contains("сотрудник officer"), "{after}");
    assert!(after.contains(&when), "{when} in {after}");
    assert!(after.contains("сведения о семье"), "{after}");
}
