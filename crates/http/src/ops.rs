//! Operations: liveness, readiness, Prometheus metrics, the OpenAPI document.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::sync::OnceLock;
use utoipa::OpenApi;

static METRICS: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder (installed once, shared by every server of the process).
pub fn metrics_handle() -> Option<&'static PrometheusHandle> {
    METRICS
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(&[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ])
                .ok()?
                .install_recorder()
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", content_type = "application/json", body = Object)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the stores answer and the projections are caught up within a bound.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Stores reachable, projections caught up", content_type = "application/json", body = Object),
        (status = 503, description = "Not ready: a store does not answer, or the projections lag", content_type = "application/json", body = Object)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.registry().store();
    let head = store.head().await;
    let read = state.read().ping().await;
    let applied = state.projections().certificate_view_checkpoint().await;
    let max_lag = state.config().ready_max_lag;
    let lag = match &applied {
        Ok(applied) => Some(store.count_after(*applied, max_lag.saturating_add(1)).await),
        Err(_) => None,
    };
    let (ok, body) = match (head, read, applied, lag) {
        (Ok(head), Ok(()), Ok(applied), Some(Ok(lag))) => {
            let ok = lag <= max_lag;
            (
                ok,
                json!({"status": if ok {"ready"} else {"lagging"}, "log_head": head, "certificate_view": applied, "lag": lag}),
            )
        }
        (head, read, applied, lag) => {
            let head = head.and_then(|_| lag.unwrap_or(Ok(0)));
            tracing::warn!(
                event_store = head.is_ok(),
                read_store = read.is_ok() && applied.is_ok(),
                "not ready"
            );
            (
                false,
                json!({"status": "unavailable", "event_store": head.is_ok(), "read_store": read.is_ok() && applied.is_ok()}),
            )
        }
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// `projection_lag_events` counts this far and no further: a scrape stays cheap on every backend
/// (on KurrentDB counting reads the events), and a lag this long is an alarm either way.
pub const METRICS_LAG_COUNTED_TO: u64 = 10_000;

/// A cache's size, entries, hits and misses, under `cache="<name>"`.
#[allow(clippy::cast_precision_loss)]
fn report_cache(figures: &registry_read_store::CacheFigures) {
    let name = figures.name;
    metrics::gauge!("cache_capacity_entries", "cache" => name).set(figures.capacity as f64);
    metrics::gauge!("cache_entries", "cache" => name).set(figures.entries as f64);
    metrics::counter!("cache_hits_total", "cache" => name).absolute(figures.hits);
    metrics::counter!("cache_misses_total", "cache" => name).absolute(figures.misses);
}

/// Prometheus metrics (text format).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, content_type = "text/plain", description = "Prometheus text format")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let store = state.registry().store();
    if let (Ok(head), Ok(applied)) = (
        store.head().await,
        state.projections().certificate_view_checkpoint().await,
    ) {
        if let Ok(lag) = store.count_after(applied, METRICS_LAG_COUNTED_TO).await {
            #[allow(clippy::cast_precision_loss)]
            metrics::gauge!("projection_lag_events").set(lag as f64);
        }
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("event_log_head_position").set(head as f64);
    }
    report_cache(&state.verified_tokens().figures());
    report_cache(&state.verify_answers().figures());
    if let Some(figures) = state.read().cache() {
        report_cache(&figures);
    }
    let text = metrics_handle()
        .map(PrometheusHandle::render)
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::ApiDoc::openapi())
}
