//! The console over real HTTP (issue 13): sign-in with a session cookie, CSRF on every form, the
//! officer's search, grant and revocation, the auditor's timeline, the family's `/me` card.
//! Pages are read as a browser without JavaScript gets them (a cookie jar, redirects followed).
#![allow(clippy::unwrap_used)]

use registry_e2e::*;
use reqwest::StatusCode;

fn grant_form(csrf: &str, key: &str, youngest_born: &str) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = vec![
        ("csrf".into(), csrf.into()),
        ("form_key".into(), key.into()),
        ("decision.number".into(), "Р-К/1".into()),
        ("decision.date".into(), "2026-11-20".into()),
        ("decision.office".into(), "УСЗН района Арбат".into()),
    ];
    let members = [
        ("parent", "Кузнецова", "Мария", "1987-02-03"),
        ("parent", "Кузнецов", "Иван", "1985-06-07"),
        ("child", "Кузнецов", "Лев", "2012-01-15"),
        ("child", "Кузнецова", "Ева", "2016-08-01"),
        ("child", "Кузнецов", "Тимофей", youngest_born),
    ];
    for (i, (relation, last, first, born)) in members.iter().enumerate() {
        for (k, v) in [
            ("relation", relation),
            ("last_name", last),
            ("first_name", first),
            ("birth_date", born),
        ] {
            f.push((format!("members[{i}].{k}"), (*v).to_string()));
        }
    }
    f
}

async fn an_officer_grants_and_revokes_and_the_others_see_it(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let officer = browser();
    let signed_in = sign_in(&app, &officer, &app.officer).await;
    assert_eq!(signed_in.url().path(), "/console/search");
    let search_page = signed_in.text().await.unwrap();
    assert!(search_page.contains("Поиск семьи"), "{search_page}");
    let csrf = hidden(&search_page, "csrf");

    // Search finds a family granted through the API, by its certificate number (in the body).
    let granted = app.grant_family().await;
    let number = granted["certificate_number"].as_str().unwrap();
    let found = officer
        .post(format!("{}/console/search", app.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("kind", "number"),
            ("certificate_number", number),
        ])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let family_id = granted["family_id"].as_str().unwrap();
    assert!(
        found.contains(&format!("/console/families/{family_id}")),
        "{found}"
    );

    // A grant of five with a child born in the future: the error sits by that field.
    let (_, _, form) = page(&officer, format!("{}/console/families/new", app.base)).await;
    let key = hidden(&form, "form_key");
    let before = app.event_count().await;
    let refused = officer
        .post(format!("{}/console/families/new", app.base))
        .form(&grant_form(&csrf, &key, "2027-01-10"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused = refused.text().await.unwrap();
    assert!(
        refused.contains("id=\"members[4].birth_date-error\">дата не может быть в будущем"),
        "{refused}"
    );
    assert_eq!(app.event_count().await, before);

    // Corrected and sent; sent again with the same form: one family, one event.
    let corrected = grant_form(&csrf, &key, "2021-04-04");
    let done = officer
        .post(format!("{}/console/families/new", app.base))
        .form(&corrected)
        .send()
        .await
        .unwrap();
    let family_path = done.url().path().to_string();
    let family_page = done.text().await.unwrap();
    assert!(
        family_page.contains("Статус многодетной семьи предоставлен"),
        "{family_page}"
    );
    assert!(family_page.contains("ДЕЙСТВИТЕЛЬНО"));
    let again = officer
        .post(format!("{}/console/families/new", app.base))
        .form(&corrected)
        .send()
        .await
        .unwrap();
    assert_eq!(again.url().path(), family_path);
    assert_eq!(app.event_count().await, before + 1);

    // Revocation asks first, then records once confirmed.
    let revoke_url = format!("{}{family_path}/revocation", app.base);
    let fields = |confirmed: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("form_key", hidden(&family_page, "form_key")),
            ("revision", hidden(&family_page, "revision")),
            (
                "certificate_number",
                hidden(&family_page, "certificate_number"),
            ),
            ("reason", "Недостоверные сведения".to_string()),
            ("confirmed", confirmed.to_string()),
        ]
    };
    let asked = officer
        .post(&revoke_url)
        .form(&fields(""))
        .send()
        .await
        .unwrap();
    assert!(asked.text().await.unwrap().contains("Да, отозвать"));
    assert_eq!(app.event_count().await, before + 1);
    let revoked = officer
        .post(&revoke_url)
        .form(&fields("yes"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(revoked.contains("ОТОЗВАНО"), "{revoked}");
    assert_eq!(app.event_count().await, before + 2);

    // The verifier page of the family's QR says so.
    let new_family = family_path.rsplit('/').next().unwrap();
    let view = app
        .get(
            &format!("/api/v1/families/{new_family}"),
            Some(&app.officer),
        )
        .await;
    let verify = app.path_of(view.body["verify_url"].as_str().unwrap());
    let (_, _, verifier) = page(&browser(), format!("{}{verify}", app.base)).await;
    assert!(verifier.contains("НЕДЕЙСТВИТЕЛЬНО"), "{verifier}");

    // An auditor reads the timeline with the officer's name.
    let auditor = browser();
    sign_in(&app, &auditor, &app.auditor).await;
    let (_, _, timeline) = page(&auditor, format!("{}{family_path}", app.base)).await;
    assert!(timeline.contains("Статус отозван"), "{timeline}");
    assert!(timeline.contains("officer (сотрудник)"), "{timeline}");
    assert!(!timeline.contains("Да, отозвать") && !timeline.contains("name=\"reason\""));

    // The history, exported for a spreadsheet and as JSON.
    let csv = auditor
        .get(format!("{}{family_path}/history.csv", app.base))
        .send()
        .await
        .unwrap();
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(
        lines[1].contains("StatusGranted") && lines[1].contains("officer"),
        "{csv}"
    );
    assert!(lines[2].contains("StatusRevoked") && lines[2].contains("Недостоверные сведения"));
    let json: serde_json::Value = auditor
        .get(format!("{}{family_path}/history.json", app.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(json["events"].as_array().unwrap().len(), 2);
}

on_both_backends!(an_officer_grants_and_revokes_and_the_others_see_it);

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_appends_nothing() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let officer = browser();
    sign_in(&app, &officer, &app.officer).await;
    let (_, _, form) = page(&officer, format!("{}/console/families/new", app.base)).await;
    let mut fields = grant_form("", &hidden(&form, "form_key"), "2021-04-04");
    fields.retain(|(k, _)| k != "csrf");
    let before = app.event_count().await;
    let refused = officer
        .post(format!("{}/console/families/new", app.base))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("Запрос отклонён"));
    assert_eq!(app.event_count().await, before);

    // A login form without its token (another site posting to ours) starts no session.
    let stranger = browser();
    let r = stranger
        .post(format!("{}/console/login", app.base))
        .form(&[("token", app.officer.as_str()), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, at, _) = page(&stranger, format!("{}/console/search", app.base)).await;
    assert_eq!(at, "/console/login");
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_only_its_hash_is_kept() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let login = browser()
        .get(format!("{}/console/login", app.base))
        .send()
        .await
        .unwrap();
    let jar = login.headers()["set-cookie"].to_str().unwrap().to_string();
    let csrf = hidden(&login.text().await.unwrap(), "csrf");
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/console/login", app.base))
        .header("cookie", jar.split(';').next().unwrap())
        .form(&[("token", app.officer.as_str()), ("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("registry_session="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let id = cookie["registry_session=".len()..]
        .split(';')
        .next()
        .unwrap();
    assert!(!id.is_empty());
    let stored = std::fs::read(app.data_dir.join("views.db")).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&stored).contains(id));
}

#[tokio::test]
async fn an_idle_session_is_sent_to_the_login_page_and_logout_ends_one() {
    let app = spawn_app_with(
        Db::Sqlite,
        Config {
            session_idle: chrono::Duration::seconds(1),
            ..Config::default()
        },
    )
    .await
    .unwrap();
    let officer = browser();
    let first = sign_in(&app, &officer, &app.officer).await;
    assert_eq!(first.url().path(), "/console/search");
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (_, at, text) = page(&officer, format!("{}/console/search", app.base)).await;
    assert_eq!(at, "/console/login");
    assert!(text.contains("Сеанс завершён"), "{text}");

    let officer = browser();
    let page_text = sign_in(&app, &officer, &app.officer)
        .await
        .text()
        .await
        .unwrap();
    officer
        .post(format!("{}/console/logout", app.base))
        .form(&[("csrf", hidden(&page_text, "csrf"))])
        .send()
        .await
        .unwrap();
    let (_, at, _) = page(&officer, format!("{}/console/search", app.base)).await;
    assert_eq!(at, "/console/login");
}

#[tokio::test]
async fn a_family_sees_its_card_with_a_qr_of_its_verify_address() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let granted = app.grant_family().await;
    let holder = app.holder_token(family_id_of(&granted)).await;
    let family = browser();
    let card = sign_in(&app, &family, &holder).await;
    assert_eq!(card.url().path(), "/me");
    let card = card.text().await.unwrap();
    assert!(
        card.contains("ДЕЙСТВИТЕЛЬНО") && card.contains("Смирнова Ольга"),
        "{card}"
    );
    let png = family
        .get(format!("{}/me/qr.png", app.base))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let image = image::load_from_memory(&png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    let (_, text) = grids[0].decode().unwrap();
    assert_eq!(text, granted["verify_url"].as_str().unwrap());

    // A family cannot open an officer's page, nor another family's.
    let (status, _, text) = page(&family, format!("{}/console/families/new", app.base)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(text.contains("Нет доступа"));
}

/// Posts a console form and answers the page the browser ends on.
async fn post_form(client: &reqwest::Client, url: String, fields: &[(&str, String)]) -> String {
    client
        .post(url)
        .form(fields)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_officer_renews_adds_corrects_removes_and_reissues_from_the_family_page() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let granted = app.grant_family().await;
    let family_id = granted["family_id"].as_str().unwrap().to_string();
    let officer = browser();
    let csrf = hidden(
        &sign_in(&app, &officer, &app.officer)
            .await
            .text()
            .await
            .unwrap(),
        "csrf",
    );
    let family_url = format!("{}/console/families/{family_id}", app.base);
    let revision = |page: &str| hidden(page, "revision");
    let (_, _, page0) = page(&officer, family_url.clone()).await;
    let history_types = || async {
        app.get(
            &format!("/api/v1/families/{family_id}/history"),
            Some(&app.auditor),
        )
        .await
        .body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };

    // A child born: added.
    let added = post_form(
        &officer,
        format!("{family_url}/members"),
        &[
            ("csrf", csrf.clone()),
            ("form_key", "t-add".into()),
            ("revision", revision(&page0)),
            ("relation", "child".into()),
            ("last_name", "Смирнова".into()),
            ("first_name", "Вера".into()),
            ("birth_date", "2026-11-01".into()),
        ],
    )
    .await;
    assert!(
        added.contains("Член семьи добавлен.") && added.contains("Смирнова Вера"),
        "{added}"
    );

    // Her first name corrected, through the form filled with what the registry holds.
    let view = app
        .get(&format!("/api/v1/families/{family_id}"), Some(&app.officer))
        .await;
    let vera = view.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["first_name"] == "Вера")
        .unwrap()["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, _, form) = page(&officer, format!("{family_url}/members/{vera}")).await;
    assert!(form.contains("value=\"Смирнова\"") && form.contains("value=\"2026-11-01\""));
    let corrected = post_form(
        &officer,
        format!("{family_url}/members/{vera}"),
        &[
            ("csrf", csrf.clone()),
            ("form_key", "t-correct".into()),
            ("revision", revision(&form)),
            ("last_name", "Смирнова".into()),
            ("first_name", "Варвара".into()),
            ("middle_name", String::new()),
            ("birth_date", "2026-11-01".into()),
        ],
    )
    .await;
    assert!(corrected.contains("Сведения исправлены.") && corrected.contains("Смирнова Варвара"));
    // The timeline names the changed field and its new value.
    assert!(corrected.contains("Изменено: имя: Варвара"), "{corrected}");

    // Renewed by a new decision.
    let renewed = post_form(
        &officer,
        format!("{family_url}/renewal"),
        &[
            ("csrf", csrf.clone()),
            ("form_key", "t-renew".into()),
            ("revision", revision(&corrected)),
            ("decision.number", "Р-2026/900".into()),
            ("decision.date", "2026-11-24".into()),
        ],
    )
    .await;
    assert!(renewed.contains("Статус продлён."), "{renewed}");

    // Removing a member asks first; confirmed, it is recorded.
    let removal = [
        ("csrf", csrf.clone()),
        ("form_key", "t-remove".into()),
        ("revision", revision(&renewed)),
        ("member_name", "Смирнова Варвара".into()),
        ("reason", "moved_out".into()),
    ];
    let asked = post_form(
        &officer,
        format!("{family_url}/members/{vera}/removal"),
        &removal,
    )
    .await;
    assert!(asked.contains("Исключить члена семьи?") && asked.contains("Да, подтверждаю"));
    assert!(!history_types().await.contains(&"MemberRemoved".to_string()));
    let mut confirmed = removal.to_vec();
    confirmed.push(("confirmed", "yes".into()));
    let removed = post_form(
        &officer,
        format!("{family_url}/members/{vera}/removal"),
        &confirmed,
    )
    .await;
    assert!(removed.contains("Член семьи исключён.") && !removed.contains("Смирнова Варвара"));

    // Reissue, confirmed: the old QR now says replaced.
    let reissue = [
        ("csrf", csrf.clone()),
        ("form_key", "t-reissue".into()),
        ("revision", revision(&removed)),
        ("reason", "Утерян телефон".into()),
        ("confirmed", "yes".into()),
    ];
    let reissued = post_form(
        &officer,
        format!("{family_url}/certificate/reissue"),
        &reissue,
    )
    .await;
    assert!(
        reissued.contains("Удостоверение перевыпущено"),
        "{reissued}"
    );
    assert!(
        reissued.contains("<dd>2</dd>"),
        "the serial shows the second issue: {reissued}"
    );
    let old = app
        .get(&app.path_of(granted["verify_url"].as_str().unwrap()), None)
        .await;
    assert!(
        old.text.contains("ЗАМЕНЕНО") || old.text.contains("Заменено"),
        "{}",
        old.text
    );

    assert_eq!(
        history_types().await,
        [
            "StatusGranted",
            "MemberAdded",
            "MemberDetailsCorrected",
            "StatusRenewed",
            "MemberRemoved",
            "CertificateReissued"
        ]
    );
}

#[tokio::test]
async fn a_form_of_a_family_changed_meanwhile_says_so_and_appends_nothing() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let granted = app.grant_family().await;
    let family_id = granted["family_id"].as_str().unwrap().to_string();
    let officer = browser();
    let csrf = hidden(
        &sign_in(&app, &officer, &app.officer)
            .await
            .text()
            .await
            .unwrap(),
        "csrf",
    );
    let family_url = format!("{}/console/families/{family_id}", app.base);
    let (_, _, before) = page(&officer, family_url.clone()).await;
    // Someone else renews the family through the API meanwhile.
    let other = app
        .post(
            &format!("/api/v1/families/{family_id}/renewals"),
            &app.officer,
            serde_json::json!({"decision": {"number": "Р-2", "date": "2026-11-24"}}),
        )
        .await;
    assert_eq!(other.status, 200, "{}", other.text);
    let events = app.event_count().await;
    let stale = post_form(
        &officer,
        format!("{family_url}/revocation"),
        &[
            ("csrf", csrf),
            ("form_key", "t-stale".into()),
            ("revision", hidden(&before, "revision")),
            ("reason", "Проверка".into()),
            ("confirmed", "yes".into()),
        ],
    )
    .await;
    assert!(stale.contains("Семью изменил другой сотрудник"), "{stale}");
    assert!(stale.contains("ДЕЙСТВИТЕЛЬНО"));
    assert_eq!(app.event_count().await, events);
}

#[tokio::test]
async fn a_family_that_is_not_large_is_told_which_children_count_and_why_not() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let officer = browser();
    let csrf = hidden(
        &sign_in(&app, &officer, &app.officer)
            .await
            .text()
            .await
            .unwrap(),
        "csrf",
    );
    // Three children, but the eldest is 20 on the decision's day: two count.
    let mut form = grant_form(&csrf, "t-not-large", "2021-04-04");
    for (k, v) in &mut form {
        if k == "members[2].birth_date" {
            *v = "2006-01-15".into();
        }
    }
    let before = app.event_count().await;
    let refused = officer
        .post(format!("{}/console/families/new", app.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.unwrap();
    assert!(
        page.contains("учитывается детей — 2, нужно не меньше 3"),
        "{page}"
    );
    assert!(
        page.contains("Кузнецов Лев — не учитывается: возраст"),
        "{page}"
    );
    assert!(page.contains("Кузнецова Ева — учитывается (до "), "{page}");
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn a_refused_member_shows_its_errors_at_the_form_and_appends_nothing() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let granted = app.grant_family().await;
    let family_id = granted["family_id"].as_str().unwrap().to_string();
    let officer = browser();
    let csrf = hidden(
        &sign_in(&app, &officer, &app.officer)
            .await
            .text()
            .await
            .unwrap(),
        "csrf",
    );
    let family_url = format!("{}/console/families/{family_id}", app.base);
    let (_, _, page0) = page(&officer, family_url.clone()).await;
    let before = app.event_count().await;
    let response = officer
        .post(format!("{family_url}/members"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("form_key", "t-future"),
            ("revision", hidden(&page0, "revision").as_str()),
            ("relation", "child"),
            ("last_name", "Смирнов"),
            ("first_name", ""),
            ("birth_date", "2030-01-01"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = response.text().await.unwrap();
    let errors = text
        .split("id=\"member-errors\"")
        .nth(1)
        .unwrap_or_else(|| panic!("no errors at the form: {text}"));
    assert!(errors.contains("Имя: обязательное поле"), "{errors}");
    assert_eq!(app.event_count().await, before);

    // With a name, the domain refuses the future birth date, shown at the same form.
    let response = officer
        .post(format!("{family_url}/members"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("form_key", "t-future-2"),
            ("revision", hidden(&page0, "revision").as_str()),
            ("relation", "child"),
            ("last_name", "Смирнов"),
            ("first_name", "Яков"),
            ("birth_date", "2030-01-01"),
        ])
        .send()
        .await
        .unwrap();
    let text = response.text().await.unwrap();
    let errors = text
        .split("id=\"member-errors\"")
        .nth(1)
        .unwrap_or_default();
    assert!(
        errors.contains("Дата рождения: дата не может быть в будущем"),
        "{text}"
    );
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn too_many_sign_in_attempts_from_one_address_are_refused_for_a_while_others_sign_in() {
    let app = spawn_app_with_sign_in_burst(3).await;
    let guesser = browser();
    for guess in ["rgt_one", "rgt_two", "rgt_three"] {
        let r = sign_in(&app, &guesser, guess).await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.text().await.unwrap().contains("Ключ доступа не найден"));
    }
    // The fourth attempt within the minute is refused before its token is looked up: even the
    // right one starts no session.
    let refused = sign_in(&app, &guesser, &app.officer).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "60");
    let text = refused.text().await.unwrap();
    assert!(text.contains("Слишком много попыток входа"), "{text}");
    assert!(
        text.contains("name=\"csrf\""),
        "the form is shown again: {text}"
    );
    let (_, at, _) = page(&guesser, format!("{}/console/search", app.base)).await;
    assert_eq!(at, "/console/login");
    // Starting a sign-in at the identity provider counts against the same limit.
    let (status, _, text) = page(&guesser, format!("{}/console/oidc/login", app.base)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(text.contains("Слишком много попыток входа"), "{text}");

    // An officer at another address is not held up by the guesser.
    let colleague = reqwest::Client::builder()
        .cookie_store(true)
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let signed_in = sign_in(&app, &colleague, &app.officer).await;
    assert_eq!(signed_in.status(), StatusCode::OK);
    assert_eq!(signed_in.url().path(), "/console/search");
}
