//! The whole life of a family over HTTP, as officers, verifiers, auditors and holders see it.
#![allow(clippy::unwrap_used)]

use registry_e2e::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

fn member_id(view: &Value, first_name: &str) -> String {
    view["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["first_name"] == first_name)
        .unwrap()["member_id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn the_whole_life_of_a_family(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let officer = app.officer.clone();
    let before_grant = app.now();
    app.advance_days(1);

    // Grant.
    let granted = app.grant_family().await;
    assert_eq!(granted["state"], "active");
    assert_eq!(granted["valid_until"], "2028-04-30");
    assert_eq!(granted["revision"], 0);
    let family = granted["family_id"].as_str().unwrap().to_string();
    let first_qr = app.path_of(granted["verify_url"].as_str().unwrap());
    let after_grant = app.now();
    app.advance_days(1);

    // A verifier scans the QR.
    let verify_path = first_qr.replace("/v/", "/api/v1/verify/");
    let scan = app.get(&verify_path, None).await;
    assert_eq!(scan.status, StatusCode::OK);
    assert_eq!(scan.body["valid"], true);
    assert_eq!(scan.body["state"], "active");
    assert_eq!(
        scan.body["certificate_number"],
        granted["certificate_number"]
    );
    assert_eq!(scan.body["members"].as_array().unwrap().len(), 5);
    let page = app.get(&first_qr, None).await;
    assert!(page.text.contains("ДЕЙСТВИТЕЛЬНО") && !page.text.contains("НЕДЕЙСТВИТЕЛЬНО"));

    // A newborn extends the validity to the day before the 2014 child turns 18.
    let added = app
        .post(
            &format!("/api/v1/families/{family}/members"),
            &officer,
            json!({"member": {"last_name": "Смирнова", "first_name": "Ева", "birth_date": "2026-11-01", "relation": "child"}}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    assert_eq!(added.body["valid_until"], "2032-09-14");
    assert!(added.body["member_id"].is_string());
    assert_eq!(added.headers["etag"], "\"1\"");
    let after_newborn = app.now();
    app.advance_days(1);

    // Renewal with a student confirmation for the eldest.
    let view = app
        .get(&format!("/api/v1/families/{family}"), Some(&officer))
        .await;
    let eldest = member_id(&view.body, "Кирилл");
    let renewed = app
        .post(
            &format!("/api/v1/families/{family}/renewals"),
            &officer,
            json!({"decision": {"number": "Р-2026/200", "date": "2026-11-27"},
                   "student_confirmations": [{"member_id": eldest, "student_until": "2030-06-30"}]}),
        )
        .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.text);
    assert_eq!(renewed.body["valid_until"], "2032-09-14");
    let after_renewal = app.now();
    app.advance_days(1);

    // A child moves out: now the student's confirmation decides the validity.
    let youngest_school = member_id(&view.body, "Марк");
    let removed = app
        .post(
            &format!("/api/v1/families/{family}/members/{youngest_school}/removal"),
            &officer,
            json!({"reason": "moved_out"}),
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.text);
    assert_eq!(removed.body["valid_until"], "2030-06-30");
    assert_eq!(removed.body["state"], "active");
    let after_removal = app.now();
    app.advance_days(1);

    // Reissue: the old QR now says "replaced", the new one is valid.
    let reissued = app
        .post(
            &format!("/api/v1/families/{family}/certificate/reissue"),
            &officer,
            json!({"reason": "утерян телефон"}),
        )
        .await;
    assert_eq!(reissued.status, StatusCode::OK, "{}", reissued.text);
    assert_ne!(reissued.body["verify_url"], granted["verify_url"]);
    let old = app.get(&verify_path, None).await;
    assert_eq!(old.status, StatusCode::OK);
    assert_eq!(old.body["valid"], false);
    assert_eq!(old.body["state"], "replaced");
    assert_eq!(
        old.body["members"].as_array().unwrap().len(),
        0,
        "an old QR shows no one"
    );
    // The old and the new QR tell their issues apart, and the old one says when it was replaced.
    assert_eq!(old.body["certificate_serial"], 1);
    let today = registry_domain::time::moscow_date(app.now());
    assert_eq!(old.body["changed_on"], today.to_string());
    let old_page = app
        .get(&verify_path.replace("/api/v1/verify/", "/v/"), None)
        .await;
    assert!(old_page.text.contains("выпуск 1") && old_page.text.contains("<dt>Заменено</dt>"));
    let new_qr = app.path_of(reissued.body["verify_url"].as_str().unwrap());
    let new_verify = new_qr.replace("/v/", "/api/v1/verify/");
    let new = app.get(&new_verify, None).await;
    assert_eq!(new.body["valid"], true);
    assert_eq!(new.body["state"], "active");
    assert_eq!(new.body["certificate_serial"], 2);
    assert!(app.get(&new_qr, None).await.text.contains("выпуск 2"));
    let after_reissue = app.now();
    app.advance_days(1);

    // Revocation: the very next scan says revoked.
    let revoked = app
        .post(
            &format!("/api/v1/families/{family}/revocation"),
            &officer,
            json!({"reason": "недостоверные сведения", "decision": {"number": "Р-2026/300", "date": "2026-11-30"}}),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text);
    assert_eq!(revoked.body["state"], "revoked");
    let scan = app.get(&new_verify, None).await;
    assert_eq!(scan.body["valid"], false);
    assert_eq!(scan.body["state"], "revoked");
    assert_eq!(scan.body["reason"], "revoked");
    let page = app.get(&new_qr, None).await;
    assert!(page.text.contains("НЕДЕЙСТВИТЕЛЬНО") && page.text.contains("Статус отозван"));
    // The day of the change, not «Действует с … по …»; nobody is disclosed.
    let today = registry_domain::time::moscow_date(app.now());
    let on = format!("<dt>Отозвано</dt><dd>{}</dd>", today.format("%d.%m.%Y"));
    assert!(page.text.contains(&on), "{}", page.text);
    assert!(!page.text.contains("Действует") && !page.text.contains("Члены семьи"));
    assert_eq!(scan.body["changed_on"], today.to_string());
    assert_eq!(
        scan.body["members"].as_array().unwrap().len(),
        0,
        "a revoked certificate's scan discloses no one"
    );

    // The auditor's history: every event, in order, with actor and reason.
    let history = app
        .get(
            &format!("/api/v1/families/{family}/history"),
            Some(&app.auditor),
        )
        .await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.text);
    let events = history.body["events"].as_array().unwrap();
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "StatusGranted",
            "MemberAdded",
            "StatusRenewed",
            "MemberRemoved",
            "CertificateReissued",
            "StatusRevoked"
        ]
    );
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["revision"], i as u64);
        assert_eq!(e["actor"]["role"], "officer");
        assert!(e["actor"]["id"].as_str().unwrap().len() >= 32);
        assert!(e["recorded_at"].is_string());
    }
    assert!(events
        .windows(2)
        .all(|w| w[0]["position"].as_u64() < w[1]["position"].as_u64()));
    assert_eq!(events[3]["reason"], "moved_out");
    assert_eq!(events[4]["reason"], "утерян телефон");
    assert_eq!(events[5]["reason"], "недостоверные сведения");
    assert_eq!(events[5]["decision"]["number"], "Р-2026/300");
    assert_eq!(events[0]["decision"]["number"], "Р-2026/117");
    // What each event recorded, read from the event store (the history keeps no copy of it): the
    // child added by the second event, as the officer typed her in.
    assert_eq!(events[1]["data"]["member"]["last_name"], "Смирнова");
    assert_eq!(events[1]["data"]["member"]["first_name"], "Ева");

    // As of each instant: each intermediate state.
    let as_of = |at: chrono::DateTime<chrono::Utc>| {
        let path = format!(
            "/api/v1/families/{family}?as_of={}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                .replace('+', "%2B")
        );
        let auditor = app.auditor.clone();
        let app = &app;
        async move { app.get(&path, Some(&auditor)).await }
    };
    as_of(before_grant).await.assert_problem(404, "not_found");
    let s = as_of(after_grant).await;
    assert_eq!(
        (
            s.body["valid_until"].clone(),
            s.body["members"].as_array().unwrap().len()
        ),
        (json!("2028-04-30"), 5)
    );
    let s = as_of(after_newborn).await;
    assert_eq!(
        (
            s.body["valid_until"].clone(),
            s.body["members"].as_array().unwrap().len()
        ),
        (json!("2032-09-14"), 6)
    );
    let s = as_of(after_renewal).await;
    let student = s.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["first_name"] == "Кирилл")
        .unwrap()
        .clone();
    assert_eq!(student["student_until"], "2030-06-30");
    assert_eq!(s.body["revision"], 2);
    let s = as_of(after_removal).await;
    assert_eq!(
        (
            s.body["valid_until"].clone(),
            s.body["members"].as_array().unwrap().len()
        ),
        (json!("2030-06-30"), 5)
    );
    let s = as_of(after_reissue).await;
    assert_eq!(
        (
            s.body["certificate_serial"].clone(),
            s.body["state"].clone()
        ),
        (json!(2), json!("active"))
    );
    let s = as_of(app.now()).await;
    assert_eq!(s.body["state"], "revoked");
}

async fn a_certificate_past_its_last_day_is_shown_as_expired(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let verify = app
        .path_of(granted["verify_url"].as_str().unwrap())
        .replace("/v/", "/api/v1/verify/");
    // 2028-04-30 is the last valid day; advance to 2028-05-01 in Moscow.
    app.clock.set(
        chrono::DateTime::parse_from_rfc3339("2028-04-30T20:59:59Z")
            .unwrap()
            .into(),
    );
    assert_eq!(app.get(&verify, None).await.body["state"], "active");
    app.clock.set(
        chrono::DateTime::parse_from_rfc3339("2028-04-30T21:00:00Z")
            .unwrap()
            .into(),
    );
    let scan = app.get(&verify, None).await;
    assert_eq!(scan.body["state"], "expired");
    assert_eq!(scan.body["valid"], false);
    let page = app
        .get(&app.path_of(granted["verify_url"].as_str().unwrap()), None)
        .await;
    assert!(page.text.contains("Истёк срок действия"));
}

async fn removing_a_child_that_leaves_two_terminates_and_the_qr_says_so(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let family = granted["family_id"].as_str().unwrap();
    let view = app
        .get(&format!("/api/v1/families/{family}"), Some(&app.officer))
        .await;
    let child = member_id(&view.body, "Алиса");
    let removed = app
        .post(
            &format!("/api/v1/families/{family}/members/{child}/removal"),
            &app.officer,
            json!({"reason": "state_care"}),
        )
        .await;
    assert_eq!(removed.body["state"], "terminated", "{}", removed.text);
    let verify = app
        .path_of(granted["verify_url"].as_str().unwrap())
        .replace("/v/", "/api/v1/verify/");
    let scan = app.get(&verify, None).await;
    assert_eq!(
        (scan.body["valid"].clone(), scan.body["state"].clone()),
        (json!(false), json!("terminated"))
    );
    let history = app
        .get(
            &format!("/api/v1/families/{family}/history"),
            Some(&app.auditor),
        )
        .await;
    let types: Vec<&str> = history.body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["StatusGranted", "MemberRemoved", "StatusTerminated"]
    );
    // Renewing the terminated status is refused as not eligible; adding a member is recorded.
    let renew = app
        .post(
            &format!("/api/v1/families/{family}/renewals"),
            &app.officer,
            json!({"decision": {"number": "Р-9", "date": "2026-11-25"}}),
        )
        .await;
    renew.assert_problem(422, "not_eligible");
}

/// A member's СНИЛС: its check number is verified (422 naming the field otherwise), it is kept in
/// the printed form and shown to officers, and a verifier never sees it.
async fn a_members_snils_is_checked_kept_and_never_shown_to_verifiers(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let with_snils = |snils: &str| {
        let mut body = family_body();
        body["members"][0]["snils"] = json!(snils);
        body
    };
    let refused = app
        .post(
            "/api/v1/families",
            &app.officer,
            with_snils("112-233-445 96"),
        )
        .await;
    refused.assert_problem(422, "validation_failed");
    assert_eq!(
        refused.body["errors"][0]["field"], "members[0].snils",
        "{}",
        refused.text
    );
    assert!(refused.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("check number"));
    let shape = app
        .post("/api/v1/families", &app.officer, with_snils("112-233"))
        .await;
    shape.assert_problem(422, "validation_failed");
    assert_eq!(
        app.event_count().await,
        0,
        "a refused grant appended something"
    );

    let granted = app
        .post("/api/v1/families", &app.officer, with_snils("11223344595"))
        .await;
    assert_eq!(granted.status, StatusCode::CREATED, "{}", granted.text);
    let family = family_id_of(&granted.body);
    let view = app
        .get(
            &format!("/api/v1/families/{}", family.0),
            Some(&app.officer),
        )
        .await;
    assert_eq!(view.body["members"][0]["snils"], "112-233-445 95");
    assert!(view.body["members"][1].get("snils").is_none());
    let verify_url = granted.body["verify_url"].as_str().unwrap().to_string();
    let token = verify_url.rsplit('/').next().unwrap();
    let verified = app.get(&format!("/api/v1/verify/{token}"), None).await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.text);
    assert!(
        !verified.text.contains("233-445") && !verified.text.contains("snils"),
        "a verifier saw the СНИЛС: {}",
        verified.text
    );
}

registry_e2e::on_both_backends!(
    a_members_snils_is_checked_kept_and_never_shown_to_verifiers,
    the_whole_life_of_a_family,
    a_certificate_past_its_last_day_is_shown_as_expired,
    removing_a_child_that_leaves_two_terminates_and_the_qr_says_so,
);
