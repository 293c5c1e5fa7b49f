//! The transparency log over HTTP: the public checkpoint and key, witnesses' cosignatures, and
//! the auditors' proofs. Thin adapters over `registry_tlog::TransparencyLog`.

use crate::error::{ApiError, ApiResult, ProblemField};
use crate::extract::Caller;
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use registry_access::Role;
use registry_tlog::LogError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

fn field(name: &str, message: &str) -> ApiError {
    ApiError::Validation(vec![ProblemField {
        field: name.into(),
        message: message.into(),
    }])
}

fn problem(e: LogError, size_field: &str) -> ApiError {
    match e {
        LogError::NoCheckpoint => {
            ApiError::Unavailable("the log has not signed a checkpoint yet; try again".into())
        }
        LogError::UnknownEvent(_) => ApiError::NotFound("the log has no such event"),
        LogError::NotYetSigned => ApiError::Conflict(
            "the event is not in a signed checkpoint yet; ask again in a second".into(),
        ),
        LogError::BadSize(why) => field(size_field, &why),
        LogError::BadCosignature(why) => field("body", &why),
        other => {
            tracing::error!(error = %other, "the transparency log could not answer");
            ApiError::Unavailable("the transparency log could not be read; try again".into())
        }
    }
}

fn text(body: String, cache: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

/// The latest signed checkpoint (C2SP tlog-checkpoint in a signed note), with witnesses'
/// cosignatures after the log's signature.
#[utoipa::path(get, path = "/log/checkpoint", tag = "log",
    responses(
        (status = 200, description = "The signed checkpoint", content_type = "text/plain", body = String),
        (status = 503, description = "No checkpoint signed yet", body = crate::error::Problem)))]
pub async fn checkpoint(State(state): State<AppState>) -> ApiResult<Response> {
    let note = state
        .log()
        .checkpoint()
        .await
        .map_err(|e| problem(e, "size"))?;
    Ok(text(note, "no-cache"))
}

/// A kept checkpoint of the given tree size, with the cosignatures witnesses gave it.
#[utoipa::path(get, path = "/log/checkpoints/{size}", tag = "log",
    params(("size" = u64, Path, description = "The tree size")),
    responses(
        (status = 200, description = "The signed checkpoint", content_type = "text/plain", body = String),
        (status = 404, description = "No checkpoint of that size was kept", body = crate::error::Problem),
        (status = 503, body = crate::error::Problem)))]
pub async fn checkpoint_of(
    State(state): State<AppState>,
    crate::extract::Segments(size): crate::extract::Segments<String>,
) -> ApiResult<Response> {
    let size: u64 = size
        .parse()
        .map_err(|_| ApiError::NotFound("no checkpoint of that size"))?;
    let note = state
        .log()
        .checkpoint_of(size)
        .await
        .map_err(|e| problem(e, "size"))?
        .ok_or(ApiError::NotFound("no checkpoint of that size"))?;
    Ok(text(note, "public, max-age=60"))
}

/// The log's public key in the signed-note format (`origin+keyid+base64`).
#[utoipa::path(get, path = "/log/key", tag = "log",
    responses((status = 200, description = "The log's verifier key", content_type = "text/plain", body = String)))]
pub async fn key(State(state): State<AppState>) -> Response {
    text(
        format!("{}\n", state.log().verifier_key()),
        "public, max-age=300",
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CosignaturesAccepted {
    /// The witnesses whose cosignatures were kept.
    pub accepted: Vec<String>,
}

/// A witness's cosignature: the body is the checkpoint note as the witness returns it (the
/// checkpoint, the log's signature line, the witness's C2SP tlog-cosignature line). Only
/// cosignatures of configured witness keys over a checkpoint the log signed are kept.
#[utoipa::path(post, path = "/log/cosignatures", tag = "log",
    request_body(content = String, content_type = "text/plain"),
    responses(
        (status = 200, body = CosignaturesAccepted),
        (status = 422, description = "Not a cosigned checkpoint of this log", body = crate::error::Problem),
        (status = 413, body = crate::error::Problem)))]
pub async fn cosign(
    State(state): State<AppState>,
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<CosignaturesAccepted>> {
    let body = body.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            field("body", "a signed note")
        }
    })?;
    let body =
        std::str::from_utf8(&body).map_err(|_| field("body", "a signed note (UTF-8 text)"))?;
    let accepted = state
        .log()
        .add_cosignatures(body)
        .await
        .map_err(|e| problem(e, "body"))?;
    Ok(Json(CosignaturesAccepted { accepted }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct InclusionQuery {
    /// The event whose inclusion is to be proved.
    event_id: String,
    /// The tree size to prove against (default: the latest checkpoint's).
    tree_size: Option<String>,
}

/// An inclusion proof (RFC 9162 §2.1.3), hashes in standard base64.
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionResponse {
    pub event_id: Uuid,
    pub leaf_index: u64,
    pub position: u64,
    pub tree_size: u64,
    /// The entry bytes that were hashed (base64): the event as stored, sealed fields sealed.
    pub entry: String,
    pub proof: Vec<String>,
    /// The signed checkpoint of `tree_size`, when the log kept one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<String>,
}

fn size(raw: Option<&str>, name: &str) -> ApiResult<Option<u64>> {
    raw.map(|s| {
        s.trim()
            .parse::<u64>()
            .map_err(|_| field(name, "a tree size (a whole number)"))
    })
    .transpose()
}

/// Proves that an event is in the log (auditors).
#[utoipa::path(get, path = "/api/v1/log/inclusion", tag = "auditor",
    params(InclusionQuery),
    responses(
        (status = 200, body = InclusionResponse),
        (status = 404, body = crate::error::Problem),
        (status = 409, description = "Not in a signed checkpoint yet", body = crate::error::Problem),
        (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn inclusion(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<InclusionQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<InclusionResponse>> {
    caller.require(&[Role::Auditor])?;
    let Query(query) = query.map_err(|_| field("event_id", "an event id (a UUID)"))?;
    let event_id: Uuid = query
        .event_id
        .trim()
        .parse()
        .map_err(|_| field("event_id", "an event id (a UUID)"))?;
    let tree_size = size(query.tree_size.as_deref(), "tree_size")?;
    let p = state
        .log()
        .inclusion(event_id, tree_size)
        .await
        .map_err(|e| problem(e, "tree_size"))?;
    // The entry is the event as stored: sealed personal fields stay sealed, but events from
    // before sealing (schema version 1) hold them in the clear, so this is a read of the
    // family's personal data and goes into the access record like the history.
    if let Some(family) = registry_domain::FamilyId::from_stream_name(&p.stream) {
        state
            .record_access(&caller, [family], registry_access::AccessKind::History)
            .await?;
    }
    Ok(Json(InclusionResponse {
        event_id,
        leaf_index: p.leaf.index,
        position: p.leaf.position,
        tree_size: p.size,
        entry: STANDARD.encode(&p.entry),
        proof: p.proof.iter().map(|h| STANDARD.encode(h.0)).collect(),
        checkpoint: p.checkpoint,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ConsistencyQuery {
    /// The earlier tree size.
    from: String,
    /// The later tree size.
    to: String,
}

/// A consistency proof (RFC 9162 §2.1.4), hashes in standard base64.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyResponse {
    pub from: u64,
    pub to: u64,
    pub proof: Vec<String>,
}

/// Proves that the tree of `from` entries is a prefix of the tree of `to` (auditors).
#[utoipa::path(get, path = "/api/v1/log/consistency", tag = "auditor",
    params(ConsistencyQuery),
    responses(
        (status = 200, body = ConsistencyResponse),
        (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn consistency(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ConsistencyQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<ConsistencyResponse>> {
    caller.require(&[Role::Auditor])?;
    let Query(query) = query.map_err(|_| field("from", "two tree sizes, from and to"))?;
    let from = size(Some(&query.from), "from")?.unwrap_or_default();
    let to = size(Some(&query.to), "to")?.unwrap_or_default();
    let proof = state
        .log()
        .consistency(from, to)
        .await
        .map_err(|e| problem(e, "to"))?;
    Ok(Json(ConsistencyResponse {
        from,
        to,
        proof: proof.iter().map(|h| STANDARD.encode(h.0)).collect(),
    }))
}
