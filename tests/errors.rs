//! Every error of the API.md table, bad input of every kind, concurrency and idempotency.
#![allow(clippy::unwrap_used)]

use registry_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

async fn every_error_code_of_the_table_is_produced_as_problem_json(db: Db) {
    let Some(app) = spawn_app_with(
        db,
        Config {
            verify_rate: 1,
            verify_burst: 1,
            ..Config::default()
        },
    )
    .await
    else {
        return;
    };
    let granted = app.grant_family().await;
    let family = granted["family_id"].as_str().unwrap().to_string();

    // 400 malformed_request
    let r = app
        .raw(
            app.client
                .post(format!("{}/api/v1/families", app.base))
                .bearer_auth(&app.officer)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    r.assert_problem(400, "malformed_request");

    // 401 unauthenticated: no token, and an unknown token
    app.request(Method::POST, "/api/v1/families", None, Some(family_body()))
        .await
        .assert_problem(401, "unauthenticated");
    app.request(
        Method::POST,
        "/api/v1/families",
        Some("rgt_unknown"),
        Some(family_body()),
    )
    .await
    .assert_problem(401, "unauthenticated");

    // 403 forbidden: an auditor cannot grant; a holder cannot read another family
    app.post("/api/v1/families", &app.auditor, family_body())
        .await
        .assert_problem(403, "forbidden");
    let other = app.grant_family().await;
    let holder = app.holder_token(family_id_of(&other)).await;
    app.get(&format!("/api/v1/families/{family}"), Some(&holder))
        .await
        .assert_problem(403, "forbidden");

    // 404 not_found: unknown family, malformed id, garbled QR token
    let unknown = uuid::Uuid::now_v7();
    app.get(&format!("/api/v1/families/{unknown}"), Some(&app.officer))
        .await
        .assert_problem(404, "not_found");
    app.get("/api/v1/families/not-a-uuid", Some(&app.officer))
        .await
        .assert_problem(404, "not_found");
    app.get("/api/v1/verify/AAAA", None)
        .await
        .assert_problem(404, "not_found");

    // Unknown paths and methods are problems too.
    app.get("/api/v1/no-such-thing", Some(&app.officer))
        .await
        .assert_problem(404, "not_found");
    app.request(
        Method::DELETE,
        &format!("/api/v1/families/{family}"),
        Some(&app.officer),
        None,
    )
    .await
    .assert_problem(405, "method_not_allowed");

    // 412 precondition_failed
    let renew = json!({"decision": {"number": "Р-5", "date": "2026-11-25"}});
    let r = app
        .raw(
            app.client
                .post(format!("{}/api/v1/families/{family}/renewals", app.base))
                .bearer_auth(&app.officer)
                .header("if-match", "\"7\"")
                .json(&renew),
        )
        .await;
    r.assert_problem(412, "precondition_failed");

    // 413 payload_too_large
    let huge =
        json!({"decision": {"number": "x".repeat(100_000), "date": "2026-11-25"}, "members": []});
    app.post("/api/v1/families", &app.officer, huge)
        .await
        .assert_problem(413, "payload_too_large");

    // 422 validation_failed, naming the field
    let mut body = family_body();
    body["members"][2]["first_name"] = json!("");
    let r = app.post("/api/v1/families", &app.officer, body).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "members[2].first_name");

    // 422 not_eligible
    let mut body = family_body();
    body["members"].as_array_mut().unwrap().pop();
    app.post("/api/v1/families", &app.officer, body)
        .await
        .assert_problem(422, "not_eligible");

    // 409 conflict: revoke, then renew
    app.post(
        &format!("/api/v1/families/{family}/revocation"),
        &app.officer,
        json!({"reason": "fraud"}),
    )
    .await;
    app.post(
        &format!("/api/v1/families/{family}/renewals"),
        &app.officer,
        renew,
    )
    .await
    .assert_problem(409, "conflict");

    // 429 rate_limited on the verifier endpoints (1 per second, burst 1)
    let verify = app
        .path_of(granted["verify_url"].as_str().unwrap())
        .replace("/v/", "/api/v1/verify/");
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = app.get(&verify, None).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            r.assert_problem(429, "rate_limited");
            assert!(r.headers.contains_key("retry-after"));
        }
        statuses.push(r.status);
    }
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
}

async fn bad_bodies_of_every_kind_are_refused_and_append_nothing(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let family = granted["family_id"].as_str().unwrap().to_string();
    let view = app
        .get(&format!("/api/v1/families/{family}"), Some(&app.officer))
        .await;
    let member = view.body["members"][2]["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    let events_before = app.event_count().await;

    let with = |path: &str, value: Value| {
        let mut body = family_body();
        let mut target = &mut body;
        let parts: Vec<&str> = path.split('.').collect();
        for p in &parts[..parts.len() - 1] {
            target = match p.parse::<usize>() {
                Ok(i) => &mut target[i],
                Err(_) => &mut target[*p],
            };
        }
        target[parts[parts.len() - 1]] = value;
        body
    };
    let grant = "/api/v1/families";
    let members = format!("/api/v1/families/{family}/members");
    let patch_member = format!("/api/v1/families/{family}/members/{member}");
    let removal = format!("/api/v1/families/{family}/members/{member}/removal");
    let renewals = format!("/api/v1/families/{family}/renewals");

    // (method, path, body, expected status)
    let cases: Vec<(Method, String, Vec<u8>, &str, u16)> = vec![
        (Method::POST, grant.into(), b"{".to_vec(), "application/json", 400),
        (Method::POST, grant.into(), b"".to_vec(), "application/json", 400),
        (Method::POST, grant.into(), b"\"a string\"".to_vec(), "application/json", 400),
        (Method::POST, grant.into(), b"[]".to_vec(), "application/json", 400),
        (Method::POST, grant.into(), family_body().to_string().into_bytes(), "text/plain", 400),
        (Method::POST, grant.into(), vec![0xff, 0xfe, b'{', b'}'], "application/json", 400),
        (Method::POST, grant.into(), format!("{} trailing", family_body()).into_bytes(), "application/json", 400),
        (Method::POST, grant.into(), with("decision", json!(5)).to_string().into_bytes(), "application/json", 400),
        (Method::POST, grant.into(), with("members", json!(null)).to_string().into_bytes(), "application/json", 400),
        (Method::POST, grant.into(), with("members", json!("all of them")).to_string().into_bytes(), "application/json", 400),
        (Method::POST, grant.into(), with("decision.number", json!(null)).to_string().into_bytes(), "application/json", 400),
        (Method::POST, grant.into(), with("decision.number", json!(12)).to_string().into_bytes(), "application/json", 400),
        (Method::POST, grant.into(), with("extra", json!(1)).to_string().into_bytes(), "application/json", 400),
        (Method::POST, grant.into(), with("members.0.nickname", json!("Оля")).to_string().into_bytes(), "application/json", 400),
        (Method::POST, grant.into(), with("members.0.relation", json!("uncle")).to_string().into_bytes(), "application/json", 400),
        (Method::POST, grant.into(), with("members.0.birth_date", json!("2026-02-30")).to_string().into_bytes(), "application/json", 400),
        (Method::POST, grant.into(), with("members.0.birth_date", json!("2026-13-01")).to_string().into_bytes(), "application/json", 400),
        (Method::POST, grant.into(), with("members.0.birth_date", json!("вчера")).to_string().into_bytes(), "application/json", 400),
        (Method::POST, grant.into(), with("members.0.birth_date", json!(19860412)).to_string().into_bytes(), "application/json", 400),
        (Method::POST, grant.into(), with("decision.date", json!("2026-11-20T00:00:00Z")).to_string().into_bytes(), "application/json", 400),
        (Method::POST, grant.into(), with("members.2.birth_date", json!("2099-01-01")).to_string().into_bytes(), "application/json", 422),
        (Method::POST, grant.into(), with("members.2.birth_date", json!("1850-01-01")).to_string().into_bytes(), "application/json", 422),
        (Method::POST, grant.into(), with("members.0.last_name", json!("Я".repeat(10_000))).to_string().into_bytes(), "application/json", 422),
        (Method::POST, grant.into(), with("members.0.last_name", json!("Смир\u{0}нова")).to_string().into_bytes(), "application/json", 422),
        (Method::POST, grant.into(), with("decision.number", json!("   ")).to_string().into_bytes(), "application/json", 422),
        (Method::POST, grant.into(), with("members", json!([])).to_string().into_bytes(), "application/json", 422),
        (Method::POST, members.clone(), json!({"member": null}).to_string().into_bytes(), "application/json", 400),
        (Method::POST, members.clone(), json!({"member": {"last_name": "А", "first_name": "Б", "birth_date": "2020-01-01", "relation": "child", "student_until": "soon"}}).to_string().into_bytes(), "application/json", 400),
        (Method::POST, members.clone(), json!({"member": {"last_name": "А", "first_name": "Б", "birth_date": "2020-01-01", "relation": "parent", "student_until": "2030-01-01"}}).to_string().into_bytes(), "application/json", 422),
        (Method::PATCH, patch_member.clone(), b"{}".to_vec(), "application/json", 422),
        (Method::PATCH, patch_member.clone(), json!({"birth_date": "2030-01-01"}).to_string().into_bytes(), "application/json", 422),
        (Method::PATCH, patch_member.clone(), json!({"member_id": member}).to_string().into_bytes(), "application/json", 400),
        (Method::POST, removal.clone(), json!({"reason": "bored"}).to_string().into_bytes(), "application/json", 400),
        (Method::POST, removal.clone(), json!({}).to_string().into_bytes(), "application/json", 400),
        (Method::POST, renewals.clone(), json!({"decision": {"number": "Р", "date": "2026-11-25"}, "student_confirmations": [{"member_id": "nope", "student_until": "2030-01-01"}]}).to_string().into_bytes(), "application/json", 400),
        (Method::POST, renewals.clone(), json!({"decision": {"number": "Р", "date": "2026-11-25"}, "student_confirmations": [{"member_id": uuid::Uuid::now_v7(), "student_until": "2030-01-01"}]}).to_string().into_bytes(), "application/json", 422),
        (Method::POST, format!("/api/v1/families/{family}/revocation"), json!({"reason": ""}).to_string().into_bytes(), "application/json", 422),
        (Method::POST, format!("/api/v1/families/{family}/revocation"), json!({"reason": ["a"]}).to_string().into_bytes(), "application/json", 400),
    ];
    for (i, (method, path, body, content_type, status)) in cases.into_iter().enumerate() {
        let r = app
            .raw(
                app.client
                    .request(method.clone(), format!("{}{path}", app.base))
                    .bearer_auth(&app.officer)
                    .header("content-type", content_type)
                    .body(body),
            )
            .await;
        let code = if status == 400 {
            "malformed_request"
        } else {
            "validation_failed"
        };
        assert_eq!(
            r.status.as_u16(),
            status,
            "case {i}: {method} {path}: {}",
            r.text
        );
        r.assert_problem(status, code);
    }
    // Bad headers.
    let r = app
        .raw(
            app.client
                .post(format!("{}{renewals}", app.base))
                .bearer_auth(&app.officer)
                .header("if-match", "yesterday")
                .json(&json!({"decision": {"number": "Р", "date": "2026-11-25"}})),
        )
        .await;
    r.assert_problem(400, "malformed_request");
    let r = app
        .raw(
            app.client
                .post(format!("{}{renewals}", app.base))
                .bearer_auth(&app.officer)
                .header("idempotency-key", "k".repeat(300))
                .json(&json!({"decision": {"number": "Р", "date": "2026-11-25"}})),
        )
        .await;
    r.assert_problem(400, "malformed_request");
    let r = app
        .get(
            &format!("/api/v1/families/{family}?as_of=last-week"),
            Some(&app.auditor),
        )
        .await;
    r.assert_problem(400, "malformed_request");

    assert_eq!(
        app.event_count().await,
        events_before,
        "nothing was appended"
    );
}

async fn twenty_concurrent_renewals_with_the_same_if_match_let_exactly_one_through(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let family = granted["family_id"].as_str().unwrap().to_string();
    let before = app.event_count().await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = app.client.clone();
        let url = format!("{}/api/v1/families/{family}/renewals", app.base);
        let token = app.officer.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .header("if-match", "\"0\"")
                .json(&json!({"decision": {"number": format!("Р-{i}"), "date": "2026-11-25"}}))
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::PRECONDITION_FAILED)
            .count(),
        19,
        "{statuses:?}"
    );
    assert_eq!(app.event_count().await, before + 1);
}

async fn the_same_idempotency_key_twice_appends_once_and_answers_identically(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let send = |body: Value| {
        app.raw(
            app.client
                .post(format!("{}/api/v1/families", app.base))
                .bearer_auth(&app.officer)
                .header("idempotency-key", "grant-2026-11-25-001")
                .json(&body),
        )
    };
    let first = send(family_body()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text);
    let second = send(family_body()).await;
    assert_eq!(second.status, first.status);
    assert_eq!(second.text, first.text);
    assert_eq!(second.headers["etag"], first.headers["etag"]);
    assert_eq!(app.event_count().await, 1);

    let mut other = family_body();
    other["decision"]["number"] = json!("Р-другое");
    let r = send(other).await;
    r.assert_problem(422, "validation_failed");
    assert_eq!(r.body["errors"][0]["field"], "Idempotency-Key");
    assert_eq!(app.event_count().await, 1);
}

async fn roles_are_enforced_with_401_and_403_as_the_contract_says(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let family = granted["family_id"].as_str().unwrap().to_string();
    let history = format!("/api/v1/families/{family}/history");
    // A verifier (no token) cannot read the history.
    app.get(&history, None)
        .await
        .assert_problem(401, "unauthenticated");
    // A holder reads only its own family.
    let holder = app.holder_token(family_id_of(&granted)).await;
    app.get(&history, Some(&holder))
        .await
        .assert_problem(403, "forbidden");
    let card = app.get("/api/v1/me/certificate", Some(&holder)).await;
    assert_eq!(card.status, StatusCode::OK);
    assert_eq!(
        card.body["certificate_number"],
        granted["certificate_number"]
    );
    assert_eq!(card.body["verify_url"], granted["verify_url"]);
    let other = app.grant_family().await;
    let other_holder = app.holder_token(family_id_of(&other)).await;
    let other_card = app.get("/api/v1/me/certificate", Some(&other_holder)).await;
    assert_eq!(
        other_card.body["certificate_number"],
        other["certificate_number"]
    );
    // Officers and auditors have no card; holders cannot command.
    app.get("/api/v1/me/certificate", Some(&app.officer))
        .await
        .assert_problem(403, "forbidden");
    app.post(
        &format!("/api/v1/families/{family}/revocation"),
        &holder,
        json!({"reason": "x"}),
    )
    .await
    .assert_problem(403, "forbidden");
    // An auditor reads but does not command.
    assert_eq!(
        app.get(&history, Some(&app.auditor)).await.status,
        StatusCode::OK
    );
    app.post(
        &format!("/api/v1/families/{family}/revocation"),
        &app.auditor,
        json!({"reason": "x"}),
    )
    .await
    .assert_problem(403, "forbidden");
    // A revoked token is unknown.
    let read = app.running.state.tokens();
    let token = read
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == "auditor")
        .unwrap();
    read.revoke_token(token.id, app.now()).await.unwrap();
    app.get(&history, Some(&app.auditor))
        .await
        .assert_problem(401, "unauthenticated");
}

registry_e2e::on_both_backends!(
    every_error_code_of_the_table_is_produced_as_problem_json,
    bad_bodies_of_every_kind_are_refused_and_append_nothing,
    twenty_concurrent_renewals_with_the_same_if_match_let_exactly_one_through,
    the_same_idempotency_key_twice_appends_once_and_answers_identically,
    roles_are_enforced_with_401_and_403_as_the_contract_says,
);

/// Guessing bearer tokens: unknown ones from one address count against the sign-in limit; past
/// it, that address is refused (429 for a minute) even with a good token, which is then not
/// looked up; a good token takes nothing, and another address goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_guessing_bearer_tokens_is_refused_for_a_minute_others_go_on() {
    let app = spawn_app_with_sign_in_burst(3).await;
    let families = format!("{}/api/v1/families?certificate_number=77-0000001", app.base);
    // Known tokens take no attempts, however many requests they make.
    for _ in 0..10 {
        let r = app.client.get(&families).bearer_auth(&app.officer);
        assert_eq!(r.send().await.unwrap().status(), StatusCode::OK);
    }
    for guess in ["rgt_one", "rgt_two", "rgt_three"] {
        app.raw(app.client.get(&families).bearer_auth(guess))
            .await
            .assert_problem(401, "unauthenticated");
    }
    let refused = app
        .client
        .get(&families)
        .bearer_auth("rgt_four")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "60");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited");
    // Meanwhile even the right token from that address is not looked up.
    app.raw(app.client.get(&families).bearer_auth(&app.officer))
        .await
        .assert_problem(429, "rate_limited");
    // An officer at another address is not held up by the guesser.
    let colleague = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let r = colleague.get(&families).bearer_auth(&app.officer);
    assert_eq!(r.send().await.unwrap().status(), StatusCode::OK);
}
