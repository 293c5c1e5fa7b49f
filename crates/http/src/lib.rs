//! The registry's HTTP API (API.md) on axum.
//!
//! Why a crate of its own: the transport depends on traits and the read store only, never on an
//! event-store backend; the binary builds the state from the configured URLs and hands this crate
//! a listener and a shutdown signal (so tests bind port 0).

mod access_log;
mod api;
mod console;
pub mod document;
pub mod dto;
pub mod error;
mod extract;
mod history;
mod log;
pub mod openapi;
mod ops;
mod ratelimit;
mod request_metrics;
mod search;
pub mod server;
mod state;
mod verified_tokens;
mod verify;
mod verify_answers;
pub mod wire;

pub use error::{ApiError, Problem};
pub use ops::metrics_handle;
pub use state::{AppState, Disclosure, HttpConfig, ReadSide};
pub use verified_tokens::DEFAULT_CAPACITY as VERIFY_CACHE_DEFAULT;
pub use verify_answers::DEFAULT_CAPACITY as VERIFY_ANSWER_CACHE_DEFAULT;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use std::future::Future;
use std::time::Instant;
use tower_http::catch_panic::CatchPanicLayer;

/// The whole API.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config().body_limit;
    let routes = Router::new()
        .route(
            "/api/v1/families",
            post(api::grant).get(search::search_by_query),
        )
        .route("/api/v1/families/search", post(search::search_by_body))
        .route("/api/v1/families/{family_id}", get(api::get_family))
        .route("/api/v1/families/{family_id}/renewals", post(api::renew))
        .route(
            "/api/v1/families/{family_id}/members",
            post(api::add_member),
        )
        .route(
            "/api/v1/families/{family_id}/members/{member_id}",
            patch(api::correct_member),
        )
        .route(
            "/api/v1/families/{family_id}/members/{member_id}/removal",
            post(api::remove_member),
        )
        .route("/api/v1/families/{family_id}/revocation", post(api::revoke))
        .route("/api/v1/families/{family_id}/erasure", post(api::erase))
        .route(
            "/api/v1/families/{family_id}/certificate/reissue",
            post(api::reissue),
        )
        .route("/api/v1/families/{family_id}/history", get(api::history))
        .route(
            "/api/v1/families/{family_id}/access-log",
            get(access_log::of_family),
        )
        .route("/api/v1/access-log", get(access_log::of_actor))
        .route("/api/v1/me/access-log", get(access_log::mine))
        .route("/api/v1/me/certificate", get(api::my_certificate))
        .route("/api/v1/me/certificate/qr.svg", get(api::my_qr_svg))
        .route("/api/v1/me/certificate/qr.png", get(api::my_qr_png))
        .route("/api/v1/me/certificate/live-qr", get(api::my_live_qr))
        .route("/api/v1/me/certificate.pdf", get(document::my_pdf))
        .route(
            "/api/v1/families/{family_id}/certificate.pdf",
            get(document::family_pdf),
        )
        .route("/api/v1/verify/{token}", get(verify::verify_json))
        .route("/v/{token}", get(verify::verify_page))
        .route("/.well-known/registry-keys.json", get(verify::keys))
        .route("/log/checkpoint", get(log::checkpoint))
        .route("/log/checkpoints/{size}", get(log::checkpoint_of))
        .route("/log/key", get(log::key))
        .route("/log/cosignatures", post(log::cosign))
        .route("/api/v1/log/inclusion", get(log::inclusion))
        .route("/api/v1/log/consistency", get(log::consistency))
        .route("/assets/verify.css", get(verify::stylesheet))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .route("/", get(index))
        .merge(console::routes())
        .fallback(|| async { ApiError::NotFound("no such endpoint") })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state);
    routes
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn(track))
        .layer(middleware::map_response(security_headers))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("a handler panicked").into_response()
        }))
}

/// The headers every answer carries, unless its handler set its own: one layer for all of them
/// (a layer each cost a service and a future per request).
async fn security_headers(mut response: Response) -> Response {
    const HEADERS: [(HeaderName, &str); 6] = [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (HeaderName::from_static("x-robots-tag"), "noindex, nofollow"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    ];
    let headers = response.headers_mut();
    for (name, value) in HEADERS {
        headers
            .entry(name)
            .or_insert_with(|| HeaderValue::from_static(value));
    }
    response
}

async fn index() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Реестр многодетных семей города Москвы. API: /openapi.json\n",
    )
        .into_response()
}

/// A metric label for a method: the standard ones by name, anything else `other` (a label per
/// made-up method let anyone grow `/metrics` without bound).
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Each request in a `request` span (method, route template, and the actor once known), and
/// counted with its latency by route template (`unmatched` for none) and status: one layer for
/// both (a tracing layer of its own cost a service, a body wrapper and its callbacks per request).
async fn track(request: Request, next: Next) -> Response {
    use tracing::Instrument;
    let started = Instant::now();
    let matched = request.extensions().get::<MatchedPath>().cloned();
    // The route template only: raw paths carry QR tokens and ids.
    let route = matched.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = method_label(request.method());
    let span = tracing::info_span!("request", method, route, actor = tracing::field::Empty);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    let took = started.elapsed();
    request_metrics::record(route, method, status.as_u16(), took);
    let _in_span = span.enter();
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        tracing::warn!(latency_ms = took.as_millis(), "answered 500");
    } else {
        tracing::debug!(
            status = status.as_u16(),
            latency_ms = took.as_millis(),
            "answered"
        );
    }
    response
}

/// Serves `router` on `listener` until `shutdown` resolves, then drains open requests, with the
/// default [`server::ConnectionLimits`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(
        listener,
        router,
        server::ConnectionLimits::default(),
        shutdown,
    )
    .await
}

/// [`serve`] with the given header-read and idle timeouts and connection cap.
pub async fn serve_with_limits(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: server::ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    metrics_handle();
    server::serve_with_limits(listener, router, limits, shutdown).await
}
