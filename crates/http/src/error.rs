//! One error type for the API, answered as `application/problem+json` (RFC 9457) with a stable
//! machine `code`. Internal details are logged, never sent.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use registry_app::AppError;
use registry_domain::{DomainError, FieldError};
use serde::Serialize;
use utoipa::ToSchema;

/// The problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type: `/problems/{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine code: `malformed_request`, `unauthenticated`, `forbidden`, `not_found`,
    /// `conflict`, `precondition_failed`, `payload_too_large`, `validation_failed`,
    /// `not_eligible`, `rate_limited`, `method_not_allowed`, `unavailable`, `internal`.
    pub code: String,
    /// The invalid fields, for `validation_failed` and `malformed_request`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

/// One invalid field.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

impl From<FieldError> for ProblemField {
    fn from(e: FieldError) -> Self {
        Self {
            field: e.field,
            message: e.message,
        }
    }
}

/// Every way a request can fail.
#[derive(Debug)]
pub enum ApiError {
    Malformed(String, Vec<ProblemField>),
    Unauthenticated,
    Forbidden(&'static str),
    NotFound(&'static str),
    Conflict(String),
    PreconditionFailed(String),
    PayloadTooLarge,
    Validation(Vec<ProblemField>),
    NotEligible(String),
    RateLimited,
    /// Too many unknown bearer tokens from this address: refused for a minute.
    TooManyUnknownTokens,
    MethodNotAllowed,
    Unavailable(String),
    Internal(String),
}

impl ApiError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Malformed(..) => (
                StatusCode::BAD_REQUEST,
                "malformed_request",
                "Malformed request",
            ),
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "Authentication required",
            ),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found", "Not found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::PreconditionFailed(_) => (
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "Precondition failed",
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
            ),
            ApiError::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "Validation failed",
            ),
            ApiError::NotEligible(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_eligible",
                "Not eligible",
            ),
            ApiError::RateLimited | ApiError::TooManyUnknownTokens => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "Method not allowed",
            ),
            ApiError::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "Service unavailable",
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }

    pub fn problem(self) -> Problem {
        let (status, code, title) = self.parts();
        let (detail, errors) = match self {
            ApiError::Malformed(detail, errors) => (detail, errors),
            ApiError::Unauthenticated => ("a valid bearer token is required".into(), vec![]),
            ApiError::Forbidden(why) | ApiError::NotFound(why) => (why.to_string(), vec![]),
            ApiError::Conflict(d) | ApiError::PreconditionFailed(d) | ApiError::NotEligible(d) => {
                (d, vec![])
            }
            ApiError::PayloadTooLarge => ("the request body is over the limit".into(), vec![]),
            ApiError::Validation(errors) => {
                ("one or more fields are invalid; see errors".into(), errors)
            }
            ApiError::RateLimited => ("too many requests; try again shortly".into(), vec![]),
            ApiError::TooManyUnknownTokens => (
                "too many unknown bearer tokens from this address; try again in a minute".into(),
                vec![],
            ),
            ApiError::MethodNotAllowed => {
                ("this method is not allowed on this path".into(), vec![])
            }
            ApiError::Unavailable(d) => (d, vec![]),
            ApiError::Internal(d) => {
                tracing::error!(error = %d, "internal error");
                (
                    "an internal error occurred; it has been logged".into(),
                    vec![],
                )
            }
        };
        Problem {
            kind: format!("/problems/{code}"),
            title: title.into(),
            status: status.as_u16(),
            detail,
            code: code.into(),
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _, _) = self.parts();
        let retry_after = match self {
            ApiError::RateLimited | ApiError::Unavailable(_) => Some(1),
            ApiError::TooManyUnknownTokens => Some(crate::ratelimit::FAILED_TOKENS_PAUSE.as_secs()),
            _ => None,
        };
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Domain(DomainError::Validation(errors)) => {
                ApiError::Validation(errors.into_iter().map(Into::into).collect())
            }
            AppError::Domain(DomainError::NotEligible { counted, required }) => ApiError::NotEligible(
                format!("{counted} children count under the policy; at least {required} are required"),
            ),
            AppError::Domain(DomainError::Conflict(why)) => ApiError::Conflict(why),
            AppError::Domain(DomainError::NotFound(_)) => ApiError::NotFound("no such family or member"),
            AppError::RevisionMismatch { expected, actual } => ApiError::PreconditionFailed(format!(
                "If-Match revision {expected} does not match the current revision {}",
                actual.map_or_else(|| "(none)".to_string(), |a| a.to_string())
            )),
            AppError::IdempotencyMismatch => ApiError::Validation(vec![ProblemField {
                field: "Idempotency-Key".into(),
                message: "this key was already used with a different request".into(),
            }]),
            AppError::Contention => ApiError::Conflict(
                "the family kept changing concurrently; reload and try again".into(),
            ),
            AppError::NotYetVisible(d) => ApiError::Unavailable(format!(
                "the change was recorded but the views are lagging ({d}); retry with the same Idempotency-Key to get its result"
            )),
            AppError::Store(e) => ApiError::internal(e),
            AppError::Corrupt(e) => ApiError::internal(e),
        }
    }
}

impl From<registry_projections::ProjectionError> for ApiError {
    fn from(e: registry_projections::ProjectionError) -> Self {
        ApiError::internal(e)
    }
}

impl From<registry_read_store::ReadStoreError> for ApiError {
    fn from(e: registry_read_store::ReadStoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<registry_access::TokenStoreError> for ApiError {
    fn from(e: registry_access::TokenStoreError) -> Self {
        ApiError::internal(e)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
