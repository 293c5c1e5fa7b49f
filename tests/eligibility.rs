//! The reason of a certificate's last day, as an officer and a family read it (issue 11): in the
//! family view and in the PDF, under the federal preset and under Moscow's rule.
#![allow(clippy::unwrap_used)]

use registry_domain::PolicyBook;
use registry_e2e::*;

async fn the_view_and_the_pdf_say_why_the_certificate_ends_when_it_does(db: Db) {
    for (policy, until, reason) in [
        (
            PolicyBook::by_name("federal-2024").unwrap(),
            "2028-04-30",
            "до 01.05.2028 — в этот день старший из трёх младших детей, Кирилл, достигает возраста 18 лет",
        ),
        (
            PolicyBook::moscow(),
            "2035-03-09",
            "до 10.03.2035 — в этот день младший ребёнок, Марк, достигает возраста 16 лет",
        ),
    ] {
        let Some(app) = spawn_app_with(
            db,
            Config {
                policy,
                ..Config::default()
            },
        )
        .await
        else {
            return;
        };
        let granted = app.grant_family().await;
        assert_eq!(granted["valid_until"], until);
        let family = granted["family_id"].as_str().unwrap();
        let view = app
            .get(&format!("/api/v1/families/{family}"), Some(&app.officer))
            .await;
        assert_eq!(view.body["valid_until_reason"], reason, "{}", view.text);
        assert_eq!(view.body["valid_until_basis"]["kind"], "age_limit");
        assert!(view.body["policy_source"].as_str().unwrap().contains("№"));
        if pdf_tools_present() {
            let bytes = app
                .client
                .get(format!("{}/api/v1/families/{family}/certificate.pdf", app.base))
                .bearer_auth(&app.officer)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            let (_, text) = read_pdf(&bytes);
            let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(flat.contains(&format!("Основание срока: {reason}")), "{text}");
        }
    }
}

registry_e2e::on_both_backends!(the_view_and_the_pdf_say_why_the_certificate_ends_when_it_does,);
