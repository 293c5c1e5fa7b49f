//! The QR credential over HTTP: forged and garbled tokens, the QR images, the published keys,
//! rotation, live codes, the verifier page and disclosure levels.
#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use futures::StreamExt;
use rand::{Rng, RngCore};
use registry_credential::{issue_token, verify_token, KeyRing, PublicKeys};
use registry_domain::CertificateId;
use registry_e2e::*;
use registry_http::Disclosure;
use reqwest::StatusCode;
use serde_json::json;

fn token_of(url: &str) -> String {
    url.rsplit("/v/").next().unwrap().to_string()
}

/// Sends every path and returns the statuses.
async fn statuses(app: &TestApp, paths: Vec<String>) -> Vec<StatusCode> {
    futures::stream::iter(paths)
        .map(|path| {
            let client = app.client.clone();
            let url = format!("{}{path}", app.base);
            async move {
                client
                    .get(url)
                    .header("accept", "application/json")
                    .send()
                    .await
                    .unwrap()
                    .status()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await
}

async fn ten_thousand_random_and_ten_thousand_bit_flipped_tokens_are_all_not_found(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let genuine = URL_SAFE_NO_PAD
        .decode(token_of(granted["verify_url"].as_str().unwrap()))
        .unwrap();
    let mut rng = rand::thread_rng();
    let mut paths = Vec::with_capacity(20_000);
    for i in 0..10_000 {
        // Random tokens of random lengths, some of the genuine length.
        let len = if i % 2 == 0 {
            genuine.len()
        } else {
            rng.gen_range(0..140)
        };
        let mut bytes = vec![0u8; len];
        rng.fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(&bytes);
        paths.push(if token.is_empty() {
            "/api/v1/verify/%20".into()
        } else {
            format!("/api/v1/verify/{token}")
        });
    }
    for i in 0..10_000 {
        let mut bytes = genuine.clone();
        let bit = i % (bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let prefix = if i % 2 == 0 { "/api/v1/verify/" } else { "/v/" };
        paths.push(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(&bytes)));
    }
    let answers = statuses(&app, paths).await;
    assert_eq!(answers.len(), 20_000);
    assert!(
        answers.iter().all(|s| *s == StatusCode::NOT_FOUND),
        "{:?}",
        answers.iter().find(|s| **s != StatusCode::NOT_FOUND)
    );
    // The genuine token still answers.
    let ok = app
        .get(
            &format!("/api/v1/verify/{}", URL_SAFE_NO_PAD.encode(&genuine)),
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
}

async fn a_token_signed_by_an_unknown_key_for_a_real_certificate_is_not_found_like_any_other(
    db: Db,
) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let certificate = CertificateId(granted["certificate_id"].as_str().unwrap().parse().unwrap());
    let forged = issue_token(&KeyRing::generate(), certificate);
    let r = app.get(&format!("/api/v1/verify/{forged}"), None).await;
    r.assert_problem(404, "not_found");
    let page = app.get(&format!("/v/{forged}"), None).await;
    let garbled = app.get("/v/garbled", None).await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert_eq!(page.text, garbled.text, "the same page whatever the reason");
}

async fn the_png_qr_decodes_to_exactly_the_verify_url_and_the_svg_is_served(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let holder = app.holder_token(family_id_of(&granted)).await;
    let png = app
        .client
        .get(format!("{}/api/v1/me/certificate/qr.png", app.base))
        .bearer_auth(&holder)
        .send()
        .await
        .unwrap();
    assert_eq!(png.headers()["content-type"], "image/png");
    let bytes = png.bytes().await.unwrap();
    let image = image::load_from_memory(&bytes).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1);
    let (_, text) = grids[0].decode().unwrap();
    assert_eq!(text, granted["verify_url"].as_str().unwrap());

    let svg = app
        .client
        .get(format!("{}/api/v1/me/certificate/qr.svg", app.base))
        .bearer_auth(&holder)
        .send()
        .await
        .unwrap();
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().await.unwrap().contains("<svg"));
}

async fn published_keys_prove_a_qr_offline_and_rotation_keeps_old_qrs_working(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let jwks = app.get("/.well-known/registry-keys.json", None).await;
    assert_eq!(jwks.status, StatusCode::OK);
    let key = &jwks.body["keys"][0];
    assert_eq!(
        (
            key["kty"].clone(),
            key["crv"].clone(),
            key["status"].clone()
        ),
        (json!("OKP"), json!("Ed25519"), json!("active"))
    );
    let public = PublicKeys::from_jwks(&jwks.text).unwrap();
    let old_token = token_of(granted["verify_url"].as_str().unwrap());
    assert!(verify_token(&public, &old_token).is_ok());

    // Rotate on disk (what `registry keys rotate` does) and load it (what the server's reload
    // task does when it sees the change).
    let keys_dir = app.data_dir.join("keys");
    KeyRing::rotate(&keys_dir).unwrap();
    app.running
        .state
        .set_keys(KeyRing::load(&keys_dir).unwrap());

    let jwks = app.get("/.well-known/registry-keys.json", None).await;
    let statuses: Vec<&str> = jwks.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 2);
    assert_eq!(statuses.iter().filter(|s| **s == "active").count(), 1);
    let old = app.get(&format!("/api/v1/verify/{old_token}"), None).await;
    assert_eq!(
        old.body["valid"], true,
        "a QR signed by the retired key still verifies"
    );
    let family = granted["family_id"].as_str().unwrap();
    let view = app
        .get(&format!("/api/v1/families/{family}"), Some(&app.officer))
        .await;
    let new_url = view.body["verify_url"].as_str().unwrap();
    assert_ne!(
        token_of(new_url),
        old_token,
        "new QRs are signed with the new key"
    );
    assert_eq!(
        app.get(
            &app.path_of(new_url).replace("/v/", "/api/v1/verify/"),
            None
        )
        .await
        .body["valid"],
        true
    );
}

async fn a_live_code_works_until_it_expires_and_the_pdf_code_keeps_working(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let holder = app.holder_token(family_id_of(&granted)).await;
    let live = app
        .get("/api/v1/me/certificate/live-qr", Some(&holder))
        .await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.text);
    let live_path = app.path_of(live.body["verify_url"].as_str().unwrap());
    let scan = app
        .get(&live_path.replace("/v/", "/api/v1/verify/"), None)
        .await;
    assert_eq!(
        (scan.body["valid"].clone(), scan.body["qr_kind"].clone()),
        (json!(true), json!("live"))
    );
    assert!(app
        .get(&live_path, None)
        .await
        .text
        .contains("Динамический код"));

    app.clock.advance(chrono::Duration::seconds(61));
    let scan = app
        .get(&live_path.replace("/v/", "/api/v1/verify/"), None)
        .await;
    assert_eq!(scan.body["valid"], false);
    assert_eq!(scan.body["reason"], "live_code_expired");
    assert_eq!(scan.body["members"].as_array().unwrap().len(), 0);
    // Its own amber state: the family's status is not what failed.
    let stale = app.get(&live_path, None).await.text;
    assert!(stale.contains("КОД УСТАРЕЛ") && stale.contains("обновить код в приложении"));
    assert!(!stale.contains("НЕДЕЙСТВИТЕЛЬНО") && stale.contains("badge pending"));

    let pdf_qr = app.path_of(granted["verify_url"].as_str().unwrap());
    let page = app.get(&pdf_qr, None).await;
    assert!(page.text.contains("ДЕЙСТВИТЕЛЬНО") && page.text.contains("Код из PDF"));
}

async fn the_verifier_page_is_russian_private_and_self_contained(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let page = app
        .get(&app.path_of(granted["verify_url"].as_str().unwrap()), None)
        .await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert!(page.headers["x-robots-tag"]
        .to_str()
        .unwrap()
        .contains("noindex"));
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'") && !csp.contains("script-src"));
    assert!(
        page.text.contains("lang=\"ru\"")
            && page.text.contains("Проверено:")
            && page.text.contains("(МСК)")
    );
    assert!(page.text.contains("name=\"viewport\""));
    assert!(!page.text.contains("<script"), "no JavaScript");
    assert!(
        !page.text.contains("http://") && !page.text.contains("https://"),
        "nothing from third parties"
    );
    assert!(page
        .text
        .contains(granted["certificate_number"].as_str().unwrap()));
    assert!(page.text.contains("Смирнова Ольга И."));
    // Same answer as JSON on request.
    let json = app
        .raw(
            app.client
                .get(granted["verify_url"].as_str().unwrap())
                .header("accept", "application/json"),
        )
        .await;
    assert_eq!(json.body["state"], "active");
}

async fn disclosure_levels_show_what_they_promise(db: Db) {
    for (level, parent, child, child_birth) in [
        (
            Disclosure::Standard,
            "Смирнова Ольга И.",
            "Смирнов Кирилл Д.",
            Some("2010-05-01"),
        ),
        (
            Disclosure::Full,
            "Смирнова Ольга Игоревна",
            "Смирнов Кирилл Дмитриевич",
            Some("2010-05-01"),
        ),
        (Disclosure::Minimal, "Ольга С.", "Кирилл С.", None),
    ] {
        let Some(app) = spawn_app_with(
            db,
            Config {
                disclosure: level,
                ..Config::default()
            },
        )
        .await
        else {
            return;
        };
        let granted = app.grant_family().await;
        let scan = app
            .get(
                &app.path_of(granted["verify_url"].as_str().unwrap())
                    .replace("/v/", "/api/v1/verify/"),
                None,
            )
            .await;
        let members = scan.body["members"].as_array().unwrap();
        assert_eq!(members[0]["display_name"], parent, "{level:?}");
        assert_eq!(members[2]["display_name"], child, "{level:?}");
        assert_eq!(members[2]["birth_date"].as_str(), child_birth, "{level:?}");
        let parent_birth = members[0].get("birth_date").is_some();
        assert_eq!(
            parent_birth,
            level == Disclosure::Full,
            "{level:?}: parents' birth dates only at full"
        );
        if level == Disclosure::Minimal {
            assert_eq!(members[2]["birth_year"], 2010);
        }
    }
}

async fn the_pdf_the_svg_and_the_png_carry_the_same_qr(db: Db) {
    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let url = granted["verify_url"].as_str().unwrap().to_string();
    let holder = app.holder_token(family_id_of(&granted)).await;
    let fetch = |path: String, token: String| {
        let client = app.client.clone();
        let base = app.base.clone();
        async move {
            let r = client
                .get(format!("{base}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            (
                r.status(),
                r.headers().clone(),
                r.bytes().await.unwrap().to_vec(),
            )
        }
    };
    let (status, headers, pdf) = fetch("/api/v1/me/certificate.pdf".into(), holder.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/pdf");
    let family = granted["family_id"].as_str().unwrap();
    let (status, _, officer_pdf) = fetch(
        format!("/api/v1/families/{family}/certificate.pdf"),
        app.officer.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, _, svg) = fetch("/api/v1/me/certificate/qr.svg".into(), holder.clone()).await;
    assert_eq!(
        String::from_utf8(svg).unwrap(),
        registry_credential::qr_svg(&url),
        "the SVG is the QR of verify_url"
    );
    let (status, _, _) = fetch(
        format!("/api/v1/families/{family}/certificate.pdf"),
        holder.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    if !pdf_tools_present() {
        return;
    }
    for document in [pdf, officer_pdf] {
        let (qr, text) = read_pdf(&document);
        assert_eq!(qr, url, "the PDF's QR is the verify URL");
        assert!(text.contains("Удостоверение многодетной семьи"));
        assert!(text.contains(granted["certificate_number"].as_str().unwrap()));
        for name in [
            "Смирнова Ольга Игоревна",
            "Смирнов Дмитрий Олегович",
            "Смирнов Кирилл Дмитриевич",
            "Смирнова Алиса Дмитриевна",
            "Смирнов Марк Дмитриевич",
        ] {
            assert!(text.contains(name), "{name} missing");
        }
    }
}

registry_e2e::on_both_backends!(
    the_pdf_the_svg_and_the_png_carry_the_same_qr,
    ten_thousand_random_and_ten_thousand_bit_flipped_tokens_are_all_not_found,
    a_token_signed_by_an_unknown_key_for_a_real_certificate_is_not_found_like_any_other,
    the_png_qr_decodes_to_exactly_the_verify_url_and_the_svg_is_served,
    published_keys_prove_a_qr_offline_and_rotation_keeps_old_qrs_working,
    a_live_code_works_until_it_expires_and_the_pdf_code_keeps_working,
    the_verifier_page_is_russian_private_and_self_contained,
    disclosure_levels_show_what_they_promise,
);
