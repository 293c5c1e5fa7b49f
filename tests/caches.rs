//! Every cache is bounded and shows in `/metrics` how well it serves: its configured size, its
//! entries, its hits and its misses. One backend is enough here: the caches sit above the stores.
#![allow(clippy::unwrap_used)]

use registry_e2e::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_scan_of_a_code_is_a_cache_hit_and_every_cache_shows_its_size() {
    let app = spawn_app(Db::Sqlite).await.unwrap();
    let granted = app.grant_family().await;
    let verify = app
        .path_of(granted["verify_url"].as_str().unwrap())
        .replace("/v/", "/api/v1/verify/");
    let hits = r#"cache_hits_total{cache="verified_tokens"}"#;
    let misses = r#"cache_misses_total{cache="verified_tokens"}"#;

    assert_eq!(app.get(&verify, None).await.status, 200);
    let first = app.get("/metrics", None).await.text;
    assert_eq!(app.get(&verify, None).await.status, 200);
    let second = app.get("/metrics", None).await.text;

    let (hits_1, hits_2) = (
        metric_series(&first, hits).unwrap(),
        metric_series(&second, hits).unwrap(),
    );
    let (misses_1, misses_2) = (
        metric_series(&first, misses).unwrap(),
        metric_series(&second, misses).unwrap(),
    );
    assert_eq!(hits_2, hits_1 + 1.0, "the second scan is a hit:\n{second}");
    assert_eq!(misses_2, misses_1, "the second scan is no miss:\n{second}");
    assert!(misses_1 >= 1.0, "the first scan was a miss:\n{first}");
    let answers = r#"cache_hits_total{cache="verify_answers"}"#;
    assert_eq!(
        metric_series(&second, answers).unwrap(),
        metric_series(&first, answers).unwrap() + 1.0,
        "the second scan is answered as encoded before:\n{second}"
    );
    for cache in [
        "verified_tokens",
        "certificate_rows",
        "family_keys",
        "verify_answers",
    ] {
        let size = metric_series(
            &second,
            &format!(r#"cache_capacity_entries{{cache="{cache}"}}"#),
        );
        let held = metric_series(&second, &format!(r#"cache_entries{{cache="{cache}"}}"#));
        let (size, held) = (size.unwrap(), held.unwrap());
        assert!(size > 0.0 && held <= size, "{cache}: {held} of {size}");
    }
}
