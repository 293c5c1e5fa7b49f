//! Signing in through a real OpenID provider (node's `oidc-provider`, tests/oidc-provider),
//! over real HTTP as a browser without JavaScript does it (a cookie jar, redirects followed, the
//! provider's own login and logout forms filled in): an officer signs in and grants a family with
//! a parent's СНИЛС, that parent signs in and sees the card, a person with no family gets a clear
//! page, logout ends both sessions; and ID tokens that must not be trusted start no session.

#![allow(clippy::unwrap_used)]

use registry_e2e::oidc::*;
use registry_e2e::*;
use reqwest::StatusCode;

async fn signed_in_page(app: &TestApp, client: &reqwest::Client, path: &str) -> (String, String) {
    let (_, at, html) = page(client, format!("{}{path}", app.base)).await;
    (at, html)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_sign_in_through_the_provider_and_logout_ends_both_sessions() {
    let Some(World {
        app,
        provider,
        dir: _dir,
    }) = world().await
    else {
        return;
    };
    // The login page offers the provider.
    let (_, _, login) = page(&browser(), format!("{}/console/login", app.base)).await;
    assert!(login.contains("Войти через mos.ru"), "{login}");

    // An officer signs in at the provider and grants a family with a parent's СНИЛС.
    let officer = browser();
    let (status, _, html) = through_provider(&app, &officer, "officer1").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("Здравствуйте, Петрова Анна Сергеевна"),
        "{html}"
    );
    let (at, search) = signed_in_page(&app, &officer, "/console/search").await;
    assert_eq!(at, "/console/search");
    assert!(search.contains("Петрова Анна Сергеевна"), "{search}");
    let (_, form) = signed_in_page(&app, &officer, "/console/families/new").await;
    let mut fields = vec![
        ("csrf".to_string(), hidden(&form, "csrf")),
        ("form_key".to_string(), hidden(&form, "form_key")),
        ("decision.number".into(), "Р-ОИДЦ/1".into()),
        ("decision.date".into(), "2026-11-20".into()),
        ("decision.office".into(), "УСЗН района Арбат".into()),
    ];
    let members = [
        ("parent", "Кузнецова", "Мария", "1987-02-03", PARENT_SNILS),
        ("child", "Кузнецов", "Лев", "2012-01-15", ""),
        ("child", "Кузнецова", "Ева", "2016-08-01", ""),
        ("child", "Кузнецов", "Тимофей", "2021-04-04", ""),
    ];
    for (i, (relation, last, first, born, snils)) in members.iter().enumerate() {
        for (k, v) in [
            ("relation", relation),
            ("last_name", last),
            ("first_name", first),
            ("birth_date", born),
            ("snils", snils),
        ] {
            fields.push((format!("members[{i}].{k}"), (*v).to_string()));
        }
    }
    let granted = officer
        .post(format!("{}/console/families/new", app.base))
        .form(&fields)
        .send()
        .await
        .unwrap();
    let family_path = granted.url().path().to_string();
    let family_html = granted.text().await.unwrap();
    assert!(
        family_html.contains("Статус многодетной семьи предоставлен"),
        "{family_html}"
    );
    let family_id = family_path.rsplit('/').next().unwrap().to_string();
    // The timeline names the officer from the ID token, like a token's holder.
    assert!(
        family_html.contains("Предоставлен статус</strong> — Петрова Анна Сергеевна"),
        "{family_html}"
    );
    // The access record names the officer and the office from the ID token.
    let record = app
        .get(
            &format!("/api/v1/families/{family_id}/access-log"),
            Some(&app.auditor),
        )
        .await;
    let entry = &record.body["entries"][0]["actor"];
    assert_eq!(entry["name"], "Петрова Анна Сергеевна", "{}", record.text);
    assert_eq!(entry["office"], "УСЗН района Арбат");
    assert_eq!(entry["role"], "officer");

    // The parent signs in with the СНИЛС on record and sees the family's card.
    let parent = browser();
    let (status, _, html) = through_provider(&app, &parent, "parent1").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let (at, card) = signed_in_page(&app, &parent, "/me").await;
    assert_eq!(at, "/me", "{card}");
    let view = app
        .get(&format!("/api/v1/families/{family_id}"), Some(&app.officer))
        .await;
    let number = view.body["certificate_number"].as_str().unwrap();
    assert!(card.contains(number), "{card}");
    // The same parent's account giving the СНИЛС as bare digits finds the same family.
    let digits = browser();
    let (status, _, html) = through_provider(&app, &digits, "parent2").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let (at, card) = signed_in_page(&app, &digits, "/me").await;
    assert_eq!(at, "/me");
    assert!(card.contains(number));

    // A holder session reaches its own family only: the officers' pages refuse it.
    let (status, _, _) = page(&parent, format!("{}/console/search", app.base)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = page(
        &parent,
        format!("{}/console/families/{family_id}", app.base),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Someone the registry has no family for gets a clear page and no session.
    let stranger = browser();
    let (status, _, html) = through_provider(&app, &stranger, "plain").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Семья не найдена"), "{html}");
    let (at, _) = signed_in_page(&app, &stranger, "/me").await;
    assert_eq!(at, "/console/login");

    // Logout ends the registry's session and, through the provider's own form, the provider's.
    let csrf = hidden(&search, "csrf");
    let out = officer
        .post(format!("{}/console/logout", app.base))
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    let refresh = out
        .headers()
        .get("refresh")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let end = refresh
        .strip_prefix("0; url=")
        .unwrap_or_else(|| panic!("no provider logout: {refresh:?}"));
    assert!(end.starts_with(&provider.url), "{end}");
    let confirm = officer.get(end).send().await.unwrap();
    let confirm_at = confirm.url().clone();
    let confirm_html = confirm.text().await.unwrap();
    let done = officer
        .post(confirm_at.join(&form_action(&confirm_html)).unwrap())
        .form(&[
            ("xsrf", hidden(&confirm_html, "xsrf")),
            ("logout", "yes".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.url().path(), "/console/login");
    let (at, _) = signed_in_page(&app, &officer, "/console/search").await;
    assert_eq!(
        at, "/console/login",
        "the registry session outlived the logout"
    );
    let again = officer
        .get(format!("{}/console/oidc/login", app.base))
        .send()
        .await
        .unwrap();
    assert!(
        again.text().await.unwrap().contains("name=\"login\""),
        "the provider session outlived the logout"
    );
}

/// A refused sign-in: the clear page saying `because`, and no session.
async fn refused(
    app: &TestApp,
    client: &reqwest::Client,
    (status, html): (StatusCode, &str),
    why: &str,
    because: &str,
) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{why}: {html}");
    assert!(html.contains("Вход не выполнен"), "{why}: {html}");
    assert!(
        html.contains(because),
        "{why}: refused for another reason: {html}"
    );
    let (at, _) = signed_in_page(app, client, "/console/search").await;
    assert_eq!(at, "/console/login", "{why}: a session was started");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_tokens_that_do_not_hold_start_no_session_and_a_rotated_key_is_fetched() {
    let Some(World { app, provider, dir }) = world().await else {
        return;
    };
    for mode in [
        "bad_signature",
        "wrong_aud",
        "expired",
        "wrong_nonce",
        "no_nonce",
    ] {
        provider.tamper(mode).await;
        let client = browser();
        let (status, _, html) = through_provider(&app, &client, "officer1").await;
        refused(&app, &client, (status, &html), mode, "не прошёл проверку").await;
    }
    provider.tamper("none").await;

    // A callback replayed with its state (by a browser holding the same state cookie) finds the
    // pending sign-in taken already.
    let client = browser();
    let (status, callback, html) = through_provider(&app, &client, "officer1").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let state = callback
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.to_string())
        .unwrap();
    let other = browser();
    let replay = other
        .get(callback.clone())
        .header("cookie", format!("registry_oidc={state}"))
        .send()
        .await
        .unwrap();
    let (status, html) = (replay.status(), replay.text().await.unwrap());
    refused(
        &app,
        &other,
        (status, &html),
        "replayed state",
        "уже использована",
    )
    .await;

    // The provider rotates its key: the registry reads its keys again and accepts the token.
    let provider = provider.restart_with(&dir.path().join("keys-2.json")).await;
    let client = browser();
    let (status, _, html) = through_provider(&app, &client, "officer1").await;
    assert_eq!(status, StatusCode::OK, "after the key rotation: {html}");
    let (at, _) = signed_in_page(&app, &client, "/console/search").await;
    assert_eq!(at, "/console/search");
    drop(provider);
}
