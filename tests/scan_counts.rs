//! Every QR scan is counted once in `/metrics` by what it showed, whether a phone opened the page
//! or a program asked for JSON, and whether the answer was made afresh or kept from before. A
//! test binary of its own: the metrics recorder is one per process, and another test's scans
//! would move the same counters.
#![allow(clippy::unwrap_used)]

use registry_e2e::*;

fn scans(metrics: &str, state: &str) -> f64 {
    metric_series(
        metrics,
        &format!("verify_outcomes_total{{state=\"{state}\"}}"),
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scan_is_counted_once_by_what_it_showed() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let granted = app.grant_family().await;
    let page = app.path_of(granted["verify_url"].as_str().unwrap());
    let api = page.replace("/v/", "/api/v1/verify/");
    let before = app.get("/metrics", None).await.text;

    let shown = app.get(&page, None).await;
    assert_eq!(shown.status, 200);
    assert!(shown.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    // The first JSON answer is made afresh, the second is the one kept.
    for _ in 0..2 {
        assert_eq!(app.get(&api, None).await.body["state"], "active");
    }
    assert_eq!(app.get("/v/not-a-token", None).await.status, 404);
    assert_eq!(
        app.get("/api/v1/verify/not-a-token", None).await.status,
        404
    );

    let after = app.get("/metrics", None).await.text;
    assert_eq!(scans(&after, "active"), scans(&before, "active") + 3.0);
    assert_eq!(
        scans(&after, "not_found"),
        scans(&before, "not_found") + 2.0
    );
}
