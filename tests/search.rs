//! Officer search over real HTTP (issue 12): by certificate number, by a member's surname and
//! birth date, by decision number; newest first, paged; for officers and auditors only.
#![allow(clippy::unwrap_used)]

use registry_e2e::*;
use serde_json::{json, Value};

fn family_with(surname: &str, decision: &str) -> Value {
    let mut body = family_body();
    body["members"][0]["last_name"] = json!(surname);
    body["decision"]["number"] = json!(decision);
    body
}

async fn officers_find_families_by_number_member_or_decision_newest_first(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let mut granted = Vec::new();
    for i in 0..23 {
        let surname = if i % 2 == 0 {
            "Ёлкина"
        } else {
            "Елкина"
        };
        let answer = app
            .post(
                "/api/v1/families",
                &app.officer,
                family_with(surname, &format!("Р-{i}")),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        granted.push(answer.body);
    }
    let ids = |v: &Value| -> Vec<String> {
        v["families"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["family_id"].as_str().unwrap().to_string())
            .collect()
    };
    let newest_first: Vec<String> = granted
        .iter()
        .rev()
        .map(|g| g["family_id"].as_str().unwrap().to_string())
        .collect();

    // By a member: surname in another case and with е for ё, and the birth date.
    let first = app
        .get(
            "/api/v1/families?last_name=%D0%B5%D0%BB%D0%BA%D0%B8%D0%BD%D0%B0&birth_date=1986-04-12",
            Some(&app.officer),
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(ids(&first.body), newest_first[..20]);
    let next = first.body["next"].as_str().unwrap();
    let second = app
        .get(
            &format!("/api/v1/families?last_name=%D0%95%D0%BB%D0%BA%D0%B8%D0%BD%D0%B0&birth_date=1986-04-12&after={next}"),
            Some(&app.auditor),
        )
        .await;
    assert_eq!(ids(&second.body), newest_first[20..]);
    assert!(second.body.get("next").is_none());

    // The same in a body: no personal data in the URL.
    let posted = app
        .post(
            "/api/v1/families/search",
            &app.officer,
            json!({"last_name": "ЁЛКИНА", "birth_date": "1986-04-12"}),
        )
        .await;
    assert_eq!(ids(&posted.body), newest_first[..20]);

    // By certificate number and by decision number.
    let number = granted[5]["certificate_number"].as_str().unwrap();
    let by_number = app
        .post(
            "/api/v1/families/search",
            &app.officer,
            json!({"certificate_number": number}),
        )
        .await;
    assert_eq!(
        ids(&by_number.body),
        [granted[5]["family_id"].as_str().unwrap()]
    );
    assert_eq!(by_number.body["families"][0]["state"], "active");
    assert_eq!(
        by_number.body["families"][0]["members"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let by_decision = app
        .get(
            "/api/v1/families?decision_number=%D1%80-7",
            Some(&app.officer),
        )
        .await;
    assert_eq!(
        ids(&by_decision.body),
        [granted[7]["family_id"].as_str().unwrap()]
    );

    // A renewal's decision finds the family too.
    let family = granted[3]["family_id"].as_str().unwrap();
    app.post(
        &format!("/api/v1/families/{family}/renewals"),
        &app.officer,
        json!({"decision": {"number": "П-2026/9", "date": "2026-11-25"}}),
    )
    .await;
    let renewed = app
        .post(
            "/api/v1/families/search",
            &app.officer,
            json!({"decision_number": "п-2026/9"}),
        )
        .await;
    assert_eq!(ids(&renewed.body), [family]);
}

async fn a_search_names_exactly_one_key_and_is_for_officers_and_auditors(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let holder = app.holder_token(family_id_of(&granted)).await;
    app.get("/api/v1/families?certificate_number=77-X", Some(&holder))
        .await
        .assert_problem(403, "forbidden");
    app.get("/api/v1/families?certificate_number=77-X", None)
        .await
        .assert_problem(401, "unauthenticated");
    for body in [
        json!({}),
        json!({"last_name": "Смирнова"}),
        json!({"birth_date": "1986-04-12"}),
        json!({"certificate_number": "77-X", "decision_number": "Р-1"}),
        json!({"certificate_number": "77-X", "after": "yesterday"}),
    ] {
        app.post("/api/v1/families/search", &app.officer, body.clone())
            .await
            .assert_problem(422, "validation_failed");
    }
    app.post(
        "/api/v1/families/search",
        &app.officer,
        json!({"nickname": "Оля"}),
    )
    .await
    .assert_problem(400, "malformed_request");
    app.get(
        "/api/v1/families?birth_date=1850-01-01&last_name=x",
        Some(&app.officer),
    )
    .await
    .assert_problem(422, "validation_failed");
    let none = app
        .get(
            "/api/v1/families?certificate_number=77-NOPE",
            Some(&app.officer),
        )
        .await;
    assert_eq!(none.body, json!({"families": []}));
}

registry_e2e::on_both_backends!(
    officers_find_families_by_number_member_or_decision_newest_first,
    a_search_names_exactly_one_key_and_is_for_officers_and_auditors,
);
