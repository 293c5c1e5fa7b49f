//! Extractors that answer bad input in the API's own error format.

use crate::error::{ApiError, ProblemField};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, StatusCode};
use registry_access::TokenStoreExt;
use registry_app::Role;
use registry_domain::FamilyId;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// A JSON body, parsed with the path of the first offending field, and its raw bytes (which bind
/// an idempotency key).
#[derive(Debug)]
pub struct JsonBody<T> {
    pub value: T,
    pub raw: Bytes,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                let v = v.trim().to_ascii_lowercase();
                v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
            });
        let raw = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::Malformed("the request body could not be read".into(), vec![])
            }
        })?;
        if !json_type {
            return Err(ApiError::Malformed(
                "the body must be JSON with Content-Type: application/json".into(),
                vec![],
            ));
        }
        let mut de = serde_json::Deserializer::from_slice(&raw);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let message = clean_message(&inner);
            if let Some(why) = message.strip_prefix(crate::wire::MARKER) {
                // A string that is not a date in range: the field is invalid, not the body.
                return ApiError::Validation(vec![ProblemField {
                    field,
                    message: why.to_string(),
                }]);
            }
            let detail = if inner.is_syntax() || inner.is_eof() {
                "the body is not valid JSON".to_string()
            } else {
                "the body does not have the expected shape".to_string()
            };
            let errors = if field.is_empty() || field == "." {
                vec![ProblemField {
                    field: String::new(),
                    message,
                }]
            } else {
                vec![ProblemField { field, message }]
            };
            ApiError::Malformed(detail, errors)
        })?;
        de.end().map_err(|e| {
            ApiError::Malformed(
                "the body is not valid JSON".into(),
                vec![ProblemField {
                    field: String::new(),
                    message: clean_message(&e),
                }],
            )
        })?;
        Ok(Self { value, raw })
    }
}

/// serde's message without the echo of long input values.
fn clean_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = text.split(" at line ").next().unwrap_or(&text).to_string();
    if text.chars().count() > 200 {
        text.chars().take(200).collect::<String>() + "…"
    } else {
        text
    }
}

/// Path parameters. A segment that does not percent-decode to UTF-8 names nothing, so it is the
/// same 404 as an unknown id (axum alone answers `400 text/plain`).
#[derive(Debug)]
pub struct Segments<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Segments<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(|_| ApiError::NotFound("no such resource"))
    }
}

/// Parses a path id; anything that is not a UUID names nothing, so it is "not found".
pub fn parse_id(raw: &str, what: &'static str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::NotFound(what))
}

pub fn family_id(raw: &str) -> Result<FamilyId, ApiError> {
    parse_id(raw, "no such family").map(FamilyId)
}

/// The authenticated caller.
#[derive(Clone, Debug)]
pub struct Caller {
    pub token_id: Uuid,
    pub role: Role,
    pub family_id: Option<FamilyId>,
    /// The token's name (a person's name, for officers and auditors): the access record shows it.
    pub name: String,
    /// The office the token names (officers and auditors): the access record shows it.
    pub office: Option<String>,
}

impl Caller {
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this token's role does not allow this request",
            ))
        }
    }

    pub fn actor(&self) -> registry_app::Actor {
        registry_app::Actor {
            id: self.token_id.to_string(),
            role: self.role,
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or(ApiError::Unauthenticated)?;
        // Guessing tokens from one address: over the sign-in limit, nothing it sends is looked
        // up for a while (with no connection address, as in unit tests, nothing is counted).
        let client = parts
            .extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0.ip());
        let failures = state.failed_tokens().zip(client);
        if failures.is_some_and(|(f, client)| f.refuses(client)) {
            return Err(ApiError::TooManyUnknownTokens);
        }
        let Some(record) = state.tokens().find_access_token(token).await? else {
            return Err(match failures {
                Some((f, client)) if f.failed(client) => ApiError::TooManyUnknownTokens,
                _ => ApiError::Unauthenticated,
            });
        };
        tracing::Span::current().record("actor", tracing::field::display(record.id));
        Ok(Caller {
            token_id: record.id,
            role: record.role,
            family_id: record.family_id,
            name: record.name,
            office: record.office,
        })
    }
}

/// `Idempotency-Key` and `If-Match` of a command.
#[derive(Clone, Debug, Default)]
pub struct CommandHeaders {
    pub idempotency_key: Option<String>,
    pub if_match: Option<u64>,
    pub correlation_id: Option<Uuid>,
}

impl<S: Send + Sync> FromRequestParts<S> for CommandHeaders {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let bad = |field: &str, message: &str| {
            ApiError::Malformed(
                format!("invalid {field} header"),
                vec![ProblemField {
                    field: field.into(),
                    message: message.into(),
                }],
            )
        };
        let idempotency_key = match parts.headers.get("idempotency-key") {
            None => None,
            Some(v) => {
                let key = v
                    .to_str()
                    .ok()
                    .map(str::trim)
                    .filter(|k| {
                        !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic())
                    })
                    .ok_or_else(|| bad("Idempotency-Key", "1 to 255 visible ASCII characters"))?;
                Some(key.to_string())
            }
        };
        let if_match = match parts.headers.get(header::IF_MATCH) {
            None => None,
            Some(v) => {
                let text = v.to_str().unwrap_or_default().trim();
                let text = text.strip_prefix("W/").unwrap_or(text);
                let revision = text
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .and_then(|t| t.parse::<u64>().ok())
                    .ok_or_else(|| bad("If-Match", "a quoted revision, like \"3\""))?;
                Some(revision)
            }
        };
        let correlation_id = parts
            .headers
            .get("x-correlation-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Uuid::parse_str(v).ok());
        Ok(Self {
            idempotency_key,
            if_match,
            correlation_id,
        })
    }
}

/// An officer's command: the caller (checked to be an officer before the body is read), the
/// command headers, the JSON body, and what binds an idempotency key (method, path, raw body).
#[derive(Debug)]
pub struct OfficerCommand<T> {
    pub body: T,
    caller: Caller,
    headers: CommandHeaders,
    request_hash: String,
}

impl<T: DeserializeOwned> FromRequest<AppState> for OfficerCommand<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state).await?;
        caller.require(&[Role::Officer])?;
        let headers = CommandHeaders::from_request_parts(&mut parts, state).await?;
        let method = parts.method.clone();
        let path = parts.uri.path().to_string();
        let JsonBody { value, raw } =
            JsonBody::from_request(Request::from_parts(parts, body), state).await?;
        // Only an idempotency key needs the request's meaning.
        let request_hash = if headers.idempotency_key.is_some() {
            meaning_hash(method.as_str(), &path, &raw)
        } else {
            String::new()
        };
        Ok(Self {
            body: value,
            request_hash,
            caller,
            headers,
        })
    }
}

/// What an idempotency key binds: the request's meaning, not its bytes. The body as canonical
/// JSON (keys sorted, no whitespace) and the path in lower case (its only variable parts are
/// UUIDs, which do not care about case), so a client that re-sends a request pretty-printed, with
/// its keys in another order or with an upper-case id gets the original answer.
fn meaning_hash(method: &str, path: &str, raw: &[u8]) -> String {
    let body = serde_json::from_slice::<serde_json::Value>(raw)
        .map(|v| canonical_json(&v))
        .unwrap_or_else(|_| String::from_utf8_lossy(raw).into_owned());
    registry_app::request_hash(method, &path.to_ascii_lowercase(), body.as_bytes())
}

/// JSON with object keys in sorted order and no insignificant whitespace.
fn canonical_json(value: &serde_json::Value) -> String {
    fn write(out: &mut String, value: &serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String(key.clone()).to_string());
                    out.push(':');
                    write(out, &map[key]);
                }
                out.push('}');
            }
            serde_json::Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(out, item);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(&mut out, value);
    out
}

impl<T> OfficerCommand<T> {
    /// The command with its envelope, addressed to `family_id`.
    pub fn request(
        &self,
        family_id: FamilyId,
        command: registry_domain::Command,
    ) -> registry_app::CommandRequest {
        registry_app::CommandRequest {
            family_id,
            command,
            actor: self.caller.actor(),
            correlation_id: self.headers.correlation_id.unwrap_or_else(Uuid::now_v7),
            causation_id: None,
            idempotency_key: self.headers.idempotency_key.clone(),
            request_hash: self.request_hash.clone(),
            expected_revision: self.headers.if_match,
        }
    }
}
