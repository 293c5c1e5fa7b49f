//! A QR code scanned again, answered from the server's caches, still shows what changed since
//! its last scan. A test binary of its own: the metrics recorder is one per process, and another
//! test's scans would move the same counters.
#![allow(clippy::unwrap_used)]

use registry_e2e::*;

/// A scan answered from the caches still shows what changed since the code was last scanned:
/// a new day's `checked_at`, a revocation, an expiry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_scanned_again_shows_what_changed_since_its_last_scan() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let verify_of = |granted: &serde_json::Value| {
        app.path_of(granted["verify_url"].as_str().unwrap())
            .replace("/v/", "/api/v1/verify/")
    };
    let revoked = app.grant_family().await;
    let expiring = app.grant_family().await;
    let (revoked_qr, expiring_qr) = (verify_of(&revoked), verify_of(&expiring));
    let row_hits = r#"cache_hits_total{cache="certificate_rows"}"#;
    let answer_hits = r#"cache_hits_total{cache="verify_answers"}"#;

    let first = app.get(&revoked_qr, None).await.body;
    assert_eq!(first["state"], "active");
    let before = app.get("/metrics", None).await.text;
    let same = app.get(&revoked_qr, None).await;
    let after = app.get("/metrics", None).await.text;
    for (hits, what) in [
        (row_hits, "the second scan read no database"),
        (
            answer_hits,
            "the second scan was answered as encoded before",
        ),
    ] {
        let (before, after) = (
            metric_series(&before, hits).unwrap(),
            metric_series(&after, hits).unwrap(),
        );
        assert_eq!(after, before + 1.0, "{what}");
    }
    assert_eq!(same.body, first, "the same answer, the same clock");
    assert_eq!(same.headers["content-type"], "application/json");

    app.advance_days(1);
    let next_day = app.get(&revoked_qr, None).await.body;
    assert_ne!(next_day["checked_at"], first["checked_at"]);
    assert_eq!(next_day["members"], first["members"]);

    let id = revoked["family_id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/api/v1/families/{id}/revocation"),
            &app.officer,
            serde_json::json!({"reason": "проверка"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let now_revoked = app.get(&revoked_qr, None).await.body;
    assert_eq!(now_revoked["state"], "revoked", "{now_revoked}");
    assert_eq!(now_revoked["valid"], false);
    assert_eq!(now_revoked["members"], serde_json::json!([]));

    assert_eq!(app.get(&expiring_qr, None).await.body["state"], "active");
    let until =
        chrono::NaiveDate::parse_from_str(expiring["valid_until"].as_str().unwrap(), "%Y-%m-%d")
            .unwrap();
    let today = registry_domain::time::moscow_date(app.now());
    app.advance_days((until - today).num_days() + 1);
    let expired = app.get(&expiring_qr, None).await.body;
    assert_eq!(expired["state"], "expired", "{expired}");
    assert_eq!(expired["members"], serde_json::json!([]));
}
