//! The console and the verifier page in a real browser (issue 13): headless Chromium over
//! WebDriver against the real server on port 0. Forms are filled and submitted as a person does;
//! scripts are off unless a test says otherwise (the pages must work without them).
#![allow(clippy::unwrap_used)]

use fantoccini::{Client, Locator};
use registry_e2e::browser::{browser, driver, Driver};
use registry_e2e::*;
use serde_json::json;

async fn sign_in(c: &Client, app: &TestApp, token: &str) {
    c.goto(&format!("{}/console/login", app.base))
        .await
        .unwrap();
    c.find(Locator::Id("token"))
        .await
        .unwrap()
        .send_keys(token)
        .await
        .unwrap();
    let button = c
        .find(Locator::Css("main button[type=submit]"))
        .await
        .unwrap();
    click_and_wait(c, &button).await;
}

async fn text(c: &Client) -> String {
    // The page may be navigating (a sign-in's redirects): a body found just before the page
    // goes is stale by the time its text is read, so the new page's body is read instead.
    let mut failed = None;
    for _ in 0..40 {
        match c.find(Locator::Css("body")).await {
            Ok(body) => match body.text().await {
                Ok(text) => return text,
                Err(e) => failed = Some(e),
            },
            Err(e) => failed = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the page's text could not be read: {failed:?}");
}

/// Sets an input by its `name` (date inputs take ISO dates whatever the browser's locale).
async fn set(c: &Client, name: &str, value: &str) {
    c.execute(
        "document.querySelector(`[name=\"${arguments[0]}\"]`).value = arguments[1];",
        vec![json!(name), json!(value)],
    )
    .await
    .unwrap();
}

async fn type_into(c: &Client, name: &str, value: &str) {
    c.find(Locator::Css(&format!("[name=\"{name}\"]")))
        .await
        .unwrap()
        .send_keys(value)
        .await
        .unwrap();
}

async fn submit(c: &Client, form_action_suffix: &str) {
    let button = c
        .find(Locator::Css(&format!(
            "form[action$=\"{form_action_suffix}\"] button[type=submit]"
        )))
        .await
        .unwrap();
    click_and_wait(c, &button).await;
}

/// Clicks and waits for the next page: the old document gone stale, the new one loaded.
async fn click_and_wait(c: &Client, button: &fantoccini::elements::Element) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    button.click().await.unwrap();
    gone_and_loaded(c, &old).await;
}

async fn gone_and_loaded(c: &Client, old: &fantoccini::elements::Element) {
    for _ in 0..200 {
        if old.tag_name().await.is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    for _ in 0..200 {
        let state = c.execute("return document.readyState;", vec![]).await;
        if state.is_ok_and(|s| s == "complete") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
}

async fn fill_family_of_five(c: &Client, youngest_born: &str) {
    type_into(c, "decision.number", "Р-Б/7").await;
    set(c, "decision.date", "2026-11-20").await;
    type_into(c, "decision.office", "УСЗН района Басманный").await;
    let members = [
        ("parent", "Орлова", "Вера", "1988-01-02"),
        ("parent", "Орлов", "Глеб", "1986-03-04"),
        ("child", "Орлов", "Семён", "2013-05-06"),
        ("child", "Орлова", "Ася", "2017-07-08"),
        ("child", "Орлова", "Нина", youngest_born),
    ];
    for (i, (relation, last, first, born)) in members.iter().enumerate() {
        c.find(Locator::Css(&format!("[name=\"members[{i}].relation\"]")))
            .await
            .unwrap()
            .select_by_value(relation)
            .await
            .unwrap();
        type_into(c, &format!("members[{i}].last_name"), last).await;
        type_into(c, &format!("members[{i}].first_name"), first).await;
        set(c, &format!("members[{i}].birth_date"), born).await;
    }
}

/// Decodes the QR in a PNG screenshot with `zbarimg`.
fn zbar(png: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shot.png");
    std::fs::write(&file, png).unwrap();
    let out = std::process::Command::new("zbarimg")
        .args(["--raw", "-q"])
        .arg(&file)
        .output()
        .expect("zbarimg (zbar-tools) is installed");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn an_officer_an_auditor_and_a_family_use_the_console(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let Some(driver) = driver().await else {
        return;
    };
    let c = browser(&driver, 390, 844, false).await;

    // The officer signs in and finds a family by its certificate number.
    sign_in(&c, &app, &app.officer).await;
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/search"));
    let granted = app.grant_family().await;
    type_into(
        &c,
        "certificate_number",
        granted["certificate_number"].as_str().unwrap(),
    )
    .await;
    submit(&c, "/console/search").await;
    let found = c.find(Locator::Css(".hits a")).await.unwrap();
    assert!(found
        .attr("href")
        .await
        .unwrap()
        .unwrap()
        .ends_with(granted["family_id"].as_str().unwrap()));

    // A family of five, one child born in the future: the error stands by its field.
    c.goto(&format!("{}/console/families/new", app.base))
        .await
        .unwrap();
    fill_family_of_five(&c, "2027-02-01").await;
    let before = app.event_count().await;
    submit(&c, "/console/families/new").await;
    let error = c
        .find(Locator::Id("members[4].birth_date-error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(error, "дата не может быть в будущем");
    assert_eq!(app.event_count().await, before);

    // Corrected (the other fields kept their values), then sent with a double click: one
    // family, one event.
    set(&c, "members[4].birth_date", "2022-02-01").await;
    let button = c
        .find(Locator::Css(
            "form[action$=\"/console/families/new\"] button[type=submit]",
        ))
        .await
        .unwrap();
    let old = c.find(Locator::Css("html")).await.unwrap();
    button.click().await.unwrap();
    let _ = button.click().await; // the page may already be leaving
    gone_and_loaded(&c, &old).await;
    c.wait().for_element(Locator::Css(".notice")).await.unwrap();
    let page = text(&c).await;
    assert!(
        page.contains("Статус многодетной семьи предоставлен"),
        "{page}"
    );
    assert!(page.contains("Орлова Нина"));
    let family_url = c.current_url().await.unwrap();
    assert_eq!(app.event_count().await, before + 1);

    // Revocation, with its confirmation step.
    c.goto(family_url.as_str()).await.unwrap();
    c.find(Locator::Css("form[action$=\"/revocation\"] #reason"))
        .await
        .unwrap()
        .send_keys("Семья переехала в другой регион")
        .await
        .unwrap();
    submit(&c, "/revocation").await;
    assert!(text(&c).await.contains("Отозвать статус семьи?"));
    assert_eq!(app.event_count().await, before + 1);
    submit(&c, "/revocation").await;
    assert!(text(&c).await.contains("ОТОЗВАНО"));
    assert_eq!(app.event_count().await, before + 2);

    // The verifier's page of that family's QR.
    let family_id = family_url.path().rsplit('/').next().unwrap().to_string();
    let view = app
        .get(&format!("/api/v1/families/{family_id}"), Some(&app.officer))
        .await;
    c.goto(view.body["verify_url"].as_str().unwrap())
        .await
        .unwrap();
    let verifier = text(&c).await;
    assert!(verifier.contains("НЕДЕЙСТВИТЕЛЬНО") && verifier.contains("Статус отозван"));
    c.close().await.unwrap();

    // An auditor reads the timeline with the officer's name.
    let a = browser(&driver, 1280, 800, false).await;
    sign_in(&a, &app, &app.auditor).await;
    a.goto(family_url.as_str()).await.unwrap();
    let timeline = text(&a).await;
    assert!(timeline.contains("Статус отозван") && timeline.contains("officer (сотрудник)"));
    a.close().await.unwrap();

    // The family's card: a QR that decodes, from a screenshot, to the family's verify address.
    let holder = app.holder_token(family_id_of(&granted)).await;
    let h = browser(&driver, 390, 844, false).await;
    sign_in(&h, &app, &holder).await;
    assert!(h.current_url().await.unwrap().path().ends_with("/me"));
    let shot = h.screenshot().await.unwrap();
    assert_eq!(zbar(&shot), granted["verify_url"].as_str().unwrap());
    // Below the card, who looked at the family's record, and when: the officer whose search
    // named it.
    let card = text(&h).await;
    let when = registry_domain::time::moscow_display(app.now());
    assert!(card.contains("Кто просматривал сведения о семье"), "{card}");
    assert!(
        card.contains(&format!(
            "{when} — сотрудник officer ({OFFICER_OFFICE}): результат поиска"
        )),
        "{card}"
    );
    h.close().await.unwrap();
}

on_both_backends!(an_officer_an_auditor_and_a_family_use_the_console);

#[tokio::test]
async fn with_scripts_on_the_card_shows_the_apps_live_code() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let Some(driver) = driver().await else {
        return;
    };
    let granted = app.grant_family().await;
    let holder = app.holder_token(family_id_of(&granted)).await;
    let c = browser(&driver, 390, 844, true).await;
    sign_in(&c, &app, &holder).await;
    c.wait()
        .for_element(Locator::Css("img#qr[data-kind=live]"))
        .await
        .unwrap();
    let note = c
        .find(Locator::Id("qr-note"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        note.starts_with("Динамический код: обновится через"),
        "{note}"
    );
    let shot = c.screenshot().await.unwrap();
    let url = zbar(&shot);
    assert_ne!(url, granted["verify_url"].as_str().unwrap());
    let scan = app
        .get(&app.path_of(&url).replace("/v/", "/api/v1/verify/"), None)
        .await;
    assert_eq!(scan.body["qr_kind"], "live", "{}", scan.text);
    assert_eq!(scan.body["valid"], true);
    c.close().await.unwrap();
}

/// The badge's width against its box, and the page's against the window.
async fn fits(c: &Client) -> (bool, String) {
    let v = c
        .execute(
            "const b = document.getElementById('badge'); \
             return [b.scrollWidth, b.clientWidth, document.documentElement.scrollWidth, \
                     window.innerWidth, b.textContent];",
            vec![],
        )
        .await
        .unwrap();
    let n = |i: usize| v[i].as_i64().unwrap();
    (
        n(0) <= n(1) && n(2) <= n(3),
        format!("badge {}/{} page {}/{} {:?}", n(0), n(1), n(2), n(3), v[4]),
    )
}

#[tokio::test]
async fn the_verifier_badge_fits_phones_from_320_px() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let Some(driver) = driver().await else {
        return;
    };
    let valid = app.grant_family().await;
    let revoked = app.grant_family().await;
    let id = revoked["family_id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/families/{id}/revocation"),
            &app.officer,
            json!({"reason": "проверка"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    for width in [320, 360, 390] {
        let c = browser(&driver, width, 740, false).await;
        for url in [
            valid["verify_url"].as_str().unwrap().to_string(),
            revoked["verify_url"].as_str().unwrap().to_string(),
            format!("{}/v/not-a-token", app.base),
        ] {
            c.goto(&url).await.unwrap();
            let (ok, how) = fits(&c).await;
            assert!(ok, "at {width} px: {how}");
        }
        c.close().await.unwrap();
    }
}

/// Writes the screenshots of `docs/screenshots/` (run by hand, see the README).
#[tokio::test]
#[ignore = "writes docs/screenshots; run by hand"]
async fn screenshots() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let driver: Driver = driver().await.expect("chromedriver");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let granted = app.grant_family().await;
    let family = format!(
        "{}/console/families/{}",
        app.base,
        granted["family_id"].as_str().unwrap()
    );
    let holder = app.holder_token(family_id_of(&granted)).await;
    for (w, h, size) in [(390, 844, "phone"), (1280, 800, "desktop")] {
        let c = browser(&driver, w, h, false).await;
        let shoot = |name: &'static str| {
            let c = c.clone();
            let dir = dir.clone();
            async move {
                // The whole page: the window grown to the document's height for the shot.
                let tall = c
                    .execute("return document.documentElement.scrollHeight;", vec![])
                    .await
                    .unwrap()
                    .as_u64()
                    .unwrap_or(u64::from(h));
                let tall = u32::try_from(tall).unwrap_or(h).max(h);
                c.set_window_size(w, tall).await.unwrap();
                let png = c.screenshot().await.unwrap();
                c.set_window_size(w, h).await.unwrap();
                std::fs::write(dir.join(format!("{name}-{size}.png")), png).unwrap();
            }
        };
        c.goto(&format!("{}/console/login", app.base))
            .await
            .unwrap();
        shoot("login").await;
        sign_in(&c, &app, &app.officer).await;
        type_into(
            &c,
            "certificate_number",
            granted["certificate_number"].as_str().unwrap(),
        )
        .await;
        submit(&c, "/console/search").await;
        shoot("search").await;
        c.goto(&family).await.unwrap();
        shoot("family").await;
        c.goto(&format!("{}/console/families/new", app.base))
            .await
            .unwrap();
        fill_family_of_five(&c, "2027-02-01").await;
        submit(&c, "/console/families/new").await;
        shoot("grant-error").await;
        c.goto(granted["verify_url"].as_str().unwrap())
            .await
            .unwrap();
        shoot("verify-valid").await;
        c.goto(&format!("{}/v/not-a-token", app.base))
            .await
            .unwrap();
        shoot("verify-not-found").await;
        c.close().await.unwrap();
        let c = browser(&driver, w, h, false).await;
        sign_in(&c, &app, &holder).await;
        let png = c.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("me-{size}.png")), png).unwrap();
        c.close().await.unwrap();
        let c = browser(&driver, w, h, false).await;
        sign_in(&c, &app, &app.auditor).await;
        c.goto(&family).await.unwrap();
        let tall = c
            .execute("return document.documentElement.scrollHeight;", vec![])
            .await
            .unwrap()
            .as_u64()
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(h)
            .max(h);
        c.set_window_size(w, tall).await.unwrap();
        let png = c.screenshot().await.unwrap();
        std::fs::write(dir.join(format!("auditor-family-{size}.png")), png).unwrap();
        c.close().await.unwrap();
    }
}

#[tokio::test]
async fn console_pages_fit_a_320_px_phone_without_sideways_scrolling() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let Some(driver) = driver().await else {
        return;
    };
    let granted = app.grant_family().await;
    let family = format!(
        "{}/console/families/{}",
        app.base,
        granted["family_id"].as_str().unwrap()
    );
    let c = browser(&driver, 320, 640, false).await;
    let wide = |c: Client| async move {
        let v = c
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await
            .unwrap();
        (v[0].as_i64().unwrap(), v[1].as_i64().unwrap())
    };
    c.goto(&format!("{}/console/login", app.base))
        .await
        .unwrap();
    let (page, window) = wide(c.clone()).await;
    assert!(page <= window, "login: {page} > {window}");
    sign_in(&c, &app, &app.officer).await;
    for url in [
        format!("{}/console/search", app.base),
        family.clone(),
        format!("{}/console/families/new", app.base),
    ] {
        c.goto(&url).await.unwrap();
        let (page, window) = wide(c.clone()).await;
        assert!(page <= window, "{url}: {page} > {window}");
    }
    c.close().await.unwrap();
}

#[tokio::test]
async fn in_the_browser_a_form_without_its_csrf_token_is_refused_and_an_idle_session_ends() {
    let app = spawn_app_with(
        Db::Sqlite,
        Config {
            session_idle: chrono::Duration::seconds(2),
            ..Config::default()
        },
    )
    .await
    .unwrap();
    let Some(driver) = driver().await else {
        return;
    };
    let granted = app.grant_family().await;
    let c = browser(&driver, 390, 844, false).await;
    sign_in(&c, &app, &app.officer).await;

    // The revocation form with its CSRF token taken out (as a page of another site would send it).
    let family = format!(
        "{}/console/families/{}",
        app.base,
        granted["family_id"].as_str().unwrap()
    );
    c.goto(&family).await.unwrap();
    c.execute(
        "document.querySelector('form[action$=\"/revocation\"] [name=csrf]').remove();",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Css("form[action$=\"/revocation\"] #reason"))
        .await
        .unwrap()
        .send_keys("Проверка")
        .await
        .unwrap();
    let before = app.event_count().await;
    submit(&c, "/revocation").await;
    assert!(text(&c).await.contains("Запрос отклонён"));
    assert_eq!(app.event_count().await, before);

    // Past its idle time the session sends the person to the login page.
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    c.goto(&family).await.unwrap();
    assert!(c
        .current_url()
        .await
        .unwrap()
        .path()
        .ends_with("/console/login"));
    assert!(text(&c).await.contains("Сеанс завершён"));
    c.close().await.unwrap();
}

/// Waits (without asserting how long) until the browser's address has `path`; the address then.
async fn arrive(c: &Client, path: &str) -> String {
    for _ in 0..400 {
        let url = c.current_url().await.unwrap();
        if url.path() == path {
            return url.to_string();
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    c.current_url().await.unwrap().to_string()
}

/// Signs `login` in at the identity provider's own login page, from the registry's login page.
async fn provider_sign_in(c: &Client, app: &TestApp, provider: &str, login: &str) {
    c.goto(&format!("{}/console/login", app.base))
        .await
        .unwrap();
    let button = c.find(Locator::Id("provider-sign-in")).await.unwrap();
    click_and_wait(c, &button).await;
    assert!(c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with(provider));
    type_into(c, "login", login).await;
    type_into(c, "password", "secret").await;
    let sign_in = c.find(Locator::Css("button[type=submit]")).await.unwrap();
    sign_in.click().await.unwrap();
}

/// Logs out from a console page and confirms at the provider's logout form.
async fn provider_sign_out(c: &Client, app: &TestApp, provider: &str) {
    let logout = c
        .find(Locator::Css("form[action=\"/console/logout\"] button"))
        .await
        .unwrap();
    logout.click().await.unwrap();
    let confirm = arrive(c, "/session/end").await;
    assert!(
        confirm.starts_with(&format!("{provider}/session/end")),
        "{confirm}: {}",
        text(c).await
    );
    let yes = c
        .find(Locator::Css("button[name=logout][value=yes]"))
        .await
        .unwrap();
    yes.click().await.unwrap();
    let back = arrive(c, "/console/login").await;
    assert!(
        back.starts_with(&format!("{}/console/login", app.base)),
        "{back}"
    );
}

/// In a real browser, scripts off, against a real identity provider: an officer signs in at the
/// provider's own login page and lands signed in on the console (the provider's redirect is a
/// navigation from another site, on which a SameSite=Strict cookie is not sent: the registry's
/// page moves on by itself); a parent whose СНИЛС is on record sees the family's card; a person
/// with no family reads a clear page; each logout ends both sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_the_browser_people_sign_in_through_the_provider_and_out_of_both() {
    let Some(world) = registry_e2e::oidc::world().await else {
        return;
    };
    let Some(driver) = driver().await else {
        return;
    };
    let (app, provider) = (&world.app, world.provider.url.as_str());
    let c = browser(&driver, 390, 844, false).await;

    // The officer signs in and grants a family, the mother's СНИЛС in the form.
    provider_sign_in(&c, app, provider, "officer1").await;
    let at = arrive(&c, "/console/search").await;
    assert_eq!(
        at,
        format!("{}/console/search", app.base),
        "{}",
        text(&c).await
    );
    assert!(text(&c).await.contains("Петрова Анна Сергеевна"));
    c.goto(&format!("{}/console/families/new", app.base))
        .await
        .unwrap();
    fill_family_of_five(&c, "2021-04-04").await;
    type_into(&c, "members[0].snils", registry_e2e::oidc::PARENT_SNILS).await;
    submit(&c, "/console/families/new").await;
    let page = text(&c).await;
    assert!(
        page.contains("Статус многодетной семьи предоставлен"),
        "{page}"
    );
    let family = c
        .current_url()
        .await
        .unwrap()
        .path()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let view = app
        .get(&format!("/api/v1/families/{family}"), Some(&app.officer))
        .await;
    let number = view.body["certificate_number"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        view.body["members"][0]["snils"],
        registry_e2e::oidc::PARENT_SNILS
    );
    provider_sign_out(&c, app, provider).await;
    c.goto(&format!("{}/console/search", app.base))
        .await
        .unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/console/login");

    provider_sign_in(&c, app, provider, "parent1").await;
    let at = arrive(&c, "/me").await;
    assert_eq!(at, format!("{}/me", app.base), "{}", text(&c).await);
    assert!(text(&c).await.contains(&number), "{}", text(&c).await);
    provider_sign_out(&c, app, provider).await;

    provider_sign_in(&c, app, provider, "plain").await;
    for _ in 0..400 {
        if text(&c).await.contains("Семья не найдена") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        text(&c).await.contains("Семья не найдена"),
        "{}",
        text(&c).await
    );
    c.goto(&format!("{}/me", app.base)).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/console/login");
    c.close().await.unwrap();
}
