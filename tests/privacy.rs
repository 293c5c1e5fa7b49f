//! Personal data never appears in logs or metrics; neither do access tokens or QR tokens.
#![allow(clippy::unwrap_used)]

use registry_e2e::*;
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Everything the process logs, for every test of this binary.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

static CAPTURED: std::sync::OnceLock<Captured> = std::sync::OnceLock::new();

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn logs_and_metrics_carry_no_names_birth_dates_or_tokens(db: Db) {
    let captured = CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            tracing_subscriber::fmt()
                .with_env_filter("debug")
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .init();
            captured
        })
        .clone();

    let Some(app) = spawn_app(db).await else {
        return;
    };
    let granted = app.grant_family().await;
    let family = granted["family_id"].as_str().unwrap();
    let verify_url = granted["verify_url"].as_str().unwrap();
    let qr_token = verify_url.rsplit("/v/").next().unwrap();
    app.get(&app.path_of(verify_url), None).await;
    app.get(
        &app.path_of(verify_url).replace("/v/", "/api/v1/verify/"),
        None,
    )
    .await;
    app.post(
        &format!("/api/v1/families/{family}/members"),
        &app.officer,
        json!({"member": {"last_name": "Смирнова", "first_name": "Ева", "birth_date": "2026-11-01", "relation": "child"}}),
    )
    .await;
    // Failures are logged too; they must not echo the input either.
    let mut bad = family_body();
    bad["members"][0]["birth_date"] = json!("2099-12-31");
    app.post("/api/v1/families", &app.officer, bad).await;
    app.get(
        &format!("/api/v1/families/{family}/history"),
        Some(&app.auditor),
    )
    .await;
    let metrics = app.get("/metrics", None).await.text;

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("/api/v1/families"),
        "the request log names route templates"
    );
    let secrets = [
        "Смирнова",
        "Ольга",
        "Кирилл",
        "Алиса",
        "Ева",
        "Игоревна",
        "1986-04-12",
        "2010-05-01",
        "2026-11-01",
        "2099-12-31",
        app.officer.as_str(),
        app.auditor.as_str(),
        qr_token,
        "rgt_",
    ];
    for secret in secrets {
        assert!(!logs.contains(secret), "the logs contain {secret:?}");
        assert!(!metrics.contains(secret), "the metrics contain {secret:?}");
    }
    assert!(metrics.contains("http_requests_total"));
    assert!(metrics.contains("route=\"/api/v1/verify/{token}\""));
    assert!(metrics.contains("verify_outcomes_total{state=\"active\"}"));
    assert!(metrics.contains("http_request_duration_seconds"));
    assert!(metrics.contains("projection_lag_events"));
}

registry_e2e::on_both_backends!(logs_and_metrics_carry_no_names_birth_dates_or_tokens,);
