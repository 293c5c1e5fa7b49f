//! What an attack run and a new user found (issue 10), each kept fixed by a test: dates before
//! `valid_from`, dates out of range, garbled paths, invalid certificates as PDFs and live codes,
//! unbounded metric labels, and idempotency keys that compare meaning, not bytes.
#![allow(clippy::unwrap_used)]

use registry_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// Sets the value at a JSON pointer, creating the last key if missing.
fn set(body: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = if parent.is_empty() {
        body
    } else {
        body.pointer_mut(parent).unwrap()
    };
    match parent {
        Value::Array(items) => items[key.parse::<usize>().unwrap()] = value,
        other => {
            other[key] = value;
        }
    }
}

fn verify_json_path(app: &TestApp, result: &Value) -> String {
    app.path_of(result["verify_url"].as_str().unwrap())
        .replace("/v/", "/api/v1/verify/")
}

async fn a_certificate_is_not_valid_before_its_first_day(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    // Today is 2026-11-25 in the test clock; the status starts on 2026-12-10.
    let mut body = family_body();
    body["valid_from"] = json!("2026-12-10");
    let granted = app.post("/api/v1/families", &app.officer, body).await;
    assert_eq!(granted.status, StatusCode::CREATED, "{}", granted.text);
    assert_eq!(granted.body["state"], "not_yet_valid");

    let scan = app.get(&verify_json_path(&app, &granted.body), None).await;
    assert_eq!(scan.body["valid"], false, "{}", scan.text);
    assert_eq!(scan.body["state"], "not_yet_valid");
    assert_eq!(scan.body["reason"], "not_yet_valid");
    let page = app
        .get(
            &app.path_of(granted.body["verify_url"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(!page.text.contains(">ДЕЙСТВИТЕЛЬНО<"), "{}", page.text);
    assert!(page.text.contains("Ещё не действует — с 10.12.2026"));

    // From its first day on it is valid.
    app.advance_days(15);
    let scan = app.get(&verify_json_path(&app, &granted.body), None).await;
    assert_eq!(
        (scan.body["valid"].clone(), scan.body["state"].clone()),
        (json!(true), json!("active"))
    );
}

async fn dates_outside_the_sane_range_are_422_and_other_shapes_400_naming_the_field(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let before = app.event_count().await;
    // (the field as the error names it, where it sits in the body, the value)
    let cases = [
        ("valid_from", "/valid_from", "-0001-01-01"),
        ("valid_from", "/valid_from", "0000-01-01"),
        ("valid_from", "/valid_from", "1899-12-31"),
        (
            "members[2].student_until",
            "/members/2/student_until",
            "+10000-01-01",
        ),
        (
            "decision.term_until",
            "/decision/term_until",
            "+10000-01-01",
        ),
        (
            "members[0].birth_date",
            "/members/0/birth_date",
            "1850-01-01",
        ),
    ];
    for (field, at, value) in cases {
        let mut body = family_body();
        set(&mut body, at, json!(value));
        let answer = app.post("/api/v1/families", &app.officer, body).await;
        answer.assert_problem(422, "validation_failed");
        let fields: Vec<&str> = answer.body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, [field], "{}", answer.text);
    }
    // A string that is not a date at all is a malformed body, still naming the field.
    for (field, value) in [
        ("valid_from", "2026-1-5"),
        ("valid_from", "2026-02-30"),
        ("valid_from", "2026-11-25T00:00:00"),
    ] {
        let mut body = family_body();
        body[field] = json!(value);
        let answer = app.post("/api/v1/families", &app.officer, body).await;
        answer.assert_problem(400, "malformed_request");
        assert_eq!(answer.body["errors"][0]["field"], field, "{}", answer.text);
    }
    assert_eq!(app.event_count().await, before, "nothing appended");
}

async fn garbled_paths_answer_problem_json_or_the_not_found_page(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let family = app.grant_family().await;
    let id = family["family_id"].as_str().unwrap();
    for path in [
        "/api/v1/verify/%ff".to_string(),
        "/api/v1/verify/%C1%80AAAA".to_string(),
        "/api/v1/families/%ff".to_string(),
        "/api/v1/families/%ff/history".to_string(),
        "/api/v1/families/%ff/certificate.pdf".to_string(),
        format!("/api/v1/families/{id}/history%ff"),
    ] {
        app.get(&path, Some(&app.officer))
            .await
            .assert_problem(404, "not_found");
    }
    app.request(
        Method::PATCH,
        &format!("/api/v1/families/{id}/members/%ff"),
        Some(&app.officer),
        Some(json!({"first_name": "Оля"})),
    )
    .await
    .assert_problem(404, "not_found");
    app.post(
        "/api/v1/families/%ff/revocation",
        &app.officer,
        json!({"reason": "x"}),
    )
    .await
    .assert_problem(404, "not_found");

    // The verifier page: the same HTML page as an unknown token.
    let unknown = app.get("/v/AAAA", None).await;
    let garbled = app.get("/v/%C1%80%ff", None).await;
    assert_eq!(garbled.status, StatusCode::NOT_FOUND);
    assert_eq!(
        garbled.headers["content-type"],
        unknown.headers["content-type"]
    );
    assert_eq!(garbled.text, unknown.text);
    let json = app
        .raw(
            app.client
                .get(format!("{}/v/%ff", app.base))
                .header("accept", "application/json"),
        )
        .await;
    json.assert_problem(404, "not_found");
}

async fn an_invalid_certificate_gives_no_pdf_and_no_live_code(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let family = family_id_of(&granted);
    let holder = app.holder_token(family).await;
    let pdf = format!("/api/v1/families/{}/certificate.pdf", family.0);
    // While valid: both PDFs and the live code are served.
    assert_eq!(app.get(&pdf, Some(&app.officer)).await.status, 200);
    assert_eq!(
        app.get("/api/v1/me/certificate.pdf", Some(&holder))
            .await
            .status,
        200
    );
    assert_eq!(
        app.get("/api/v1/me/certificate/live-qr", Some(&holder))
            .await
            .status,
        200
    );

    let revoked = app
        .post(
            &format!("/api/v1/families/{}/revocation", family.0),
            &app.officer,
            json!({"reason": "недостоверные сведения"}),
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    for (path, token) in [
        (pdf.as_str(), app.officer.as_str()),
        ("/api/v1/me/certificate.pdf", holder.as_str()),
        ("/api/v1/me/certificate/live-qr", holder.as_str()),
        ("/api/v1/me/certificate/qr.png", holder.as_str()),
        ("/api/v1/me/certificate/qr.svg", holder.as_str()),
    ] {
        let answer = app.get(path, Some(token)).await;
        answer.assert_problem(409, "conflict");
        assert!(
            answer.body["detail"].as_str().unwrap().contains("revoked"),
            "{path}: {}",
            answer.text
        );
    }
    // The card itself still answers, and says why.
    let card = app.get("/api/v1/me/certificate", Some(&holder)).await;
    assert_eq!(card.body["state"], "revoked");
}

async fn a_terminated_certificate_gives_no_pdf(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let family = granted["family_id"].as_str().unwrap();
    let view = app
        .get(&format!("/api/v1/families/{family}"), Some(&app.officer))
        .await;
    let child = view.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["first_name"] == "Алиса")
        .unwrap()["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    let removed = app
        .post(
            &format!("/api/v1/families/{family}/members/{child}/removal"),
            &app.officer,
            json!({"reason": "state_care"}),
        )
        .await;
    assert_eq!(removed.body["state"], "terminated");
    app.get(
        &format!("/api/v1/families/{family}/certificate.pdf"),
        Some(&app.officer),
    )
    .await
    .assert_problem(409, "conflict");
}

async fn random_methods_do_not_grow_the_metrics(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    for i in 0..200 {
        let method = Method::from_bytes(format!("ZQX{i}RND").as_bytes()).unwrap();
        let _ = app.request(method, "/healthz", None, None).await;
        let method = Method::from_bytes(format!("ZQY{i}RND").as_bytes()).unwrap();
        let _ = app
            .request(method, &format!("/no/such/path/{i}"), None, None)
            .await;
    }
    let metrics = app.get("/metrics", None).await.text;
    assert!(!metrics.contains("RND"), "a raw method became a label");
    assert!(
        !metrics.contains("/no/such/path"),
        "a raw path became a label"
    );
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    assert!(metrics.contains("route=\"unmatched\""));
}

async fn an_idempotency_key_compares_the_meaning_of_the_request(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let send = |path: String, body: String, key: &'static str| {
        app.client
            .post(format!("{}{path}", app.base))
            .bearer_auth(&app.officer)
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(body)
    };
    let compact = family_body().to_string();
    let first = app
        .raw(send("/api/v1/families".into(), compact.clone(), "k-1"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let after_first = app.event_count().await;
    // The same JSON, pretty-printed and with its keys in another order.
    let mut reordered = serde_json::Map::new();
    let original = family_body();
    for key in ["members", "decision"] {
        reordered.insert(key.into(), original[key].clone());
    }
    let pretty = serde_json::to_string_pretty(&Value::Object(reordered)).unwrap();
    let again = app
        .raw(send("/api/v1/families".into(), pretty, "k-1"))
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text);
    assert_eq!(again.body, first.body);
    assert_eq!(app.event_count().await, after_first);

    // The family id in upper case names the same family, so it is the same request.
    let family = first.body["family_id"].as_str().unwrap().to_string();
    let renewal = json!({"decision": {"number": "Р-5", "date": "2026-11-25"}}).to_string();
    let lower = app
        .raw(send(
            format!("/api/v1/families/{family}/renewals"),
            renewal.clone(),
            "k-2",
        ))
        .await;
    assert_eq!(lower.status, StatusCode::OK, "{}", lower.text);
    let after_renewal = app.event_count().await;
    let upper = app
        .raw(send(
            format!("/api/v1/families/{}/renewals", family.to_uppercase()),
            renewal,
            "k-2",
        ))
        .await;
    assert_eq!(upper.status, StatusCode::OK, "{}", upper.text);
    assert_eq!(upper.body, lower.body);
    assert_eq!(app.event_count().await, after_renewal);

    // Another meaning under the same key is still refused.
    let other = json!({"decision": {"number": "Р-6", "date": "2026-11-25"}}).to_string();
    let refused = app
        .raw(send(
            format!("/api/v1/families/{family}/renewals"),
            other,
            "k-2",
        ))
        .await;
    refused.assert_problem(422, "validation_failed");
    assert_eq!(app.event_count().await, after_renewal);
}

registry_e2e::on_both_backends!(
    a_certificate_is_not_valid_before_its_first_day,
    dates_outside_the_sane_range_are_422_and_other_shapes_400_naming_the_field,
    garbled_paths_answer_problem_json_or_the_not_found_page,
    an_invalid_certificate_gives_no_pdf_and_no_live_code,
    a_terminated_certificate_gives_no_pdf,
    random_methods_do_not_grow_the_metrics,
    an_idempotency_key_compares_the_meaning_of_the_request,
);

/// Both stores in one PostgreSQL database, as a user first tries: it starts, serves, and starts
/// again (each side's migrations run beside the other's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_postgres_database_holds_both_stores_and_starts_again() {
    let Some(url) = registry_test_support::fresh_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let stores = registry_cli::Stores {
        data_dir: dir.path().to_path_buf(),
        event_store: Some(url.clone()),
        read_store: Some(url),
    };
    let mut verify_url = None;
    for round in 0..2 {
        let app = spawn_on(&stores).await;
        if round == 0 {
            let granted = app.grant_family().await;
            verify_url = Some(verify_json_path(&app, &granted));
        }
        let scan = app.get(verify_url.as_deref().unwrap(), None).await;
        assert_eq!(scan.body["state"], "active", "round {round}: {}", scan.text);
        app.running.stop().await.unwrap();
    }
}
