//! The access record over HTTP: a family sees who read its personal data; an auditor asks by
//! family and by official. The entries name who, when and what, never the data.

use crate::error::{ApiError, ApiResult};
use crate::extract::{family_id, Caller, Segments};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::Json;
use chrono::{DateTime, Utc};
use registry_access::{AccessEntry, Role, ACCESS_PAGE};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// One read of a family's personal data.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AccessLogEntry {
    pub at: DateTime<Utc>,
    pub family_id: Uuid,
    pub actor: AccessActor,
    /// `family_view`, `family_as_of`, `history`, `pdf` or `search_result`.
    pub what: String,
    /// The same in Russian («сведения о семье», …).
    pub what_ru: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AccessActor {
    pub id: Uuid,
    pub name: String,
    pub role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub office: Option<String>,
}

/// Newest first, at most 200.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct AccessLog {
    pub entries: Vec<AccessLogEntry>,
}

impl From<AccessEntry> for AccessLogEntry {
    fn from(e: AccessEntry) -> Self {
        Self {
            at: e.at,
            family_id: e.family_id.0,
            actor: AccessActor {
                id: e.actor_id,
                name: e.actor_name,
                role: e.actor_role.as_str().to_string(),
                office: e.office,
            },
            what: e.kind.as_str().to_string(),
            what_ru: e.kind.russian().to_string(),
        }
    }
}

fn log(entries: Vec<AccessEntry>) -> Json<AccessLog> {
    Json(AccessLog {
        entries: entries.into_iter().map(Into::into).collect(),
    })
}

fn unavailable(e: registry_access::AccessRecordError) -> ApiError {
    tracing::error!(error = %e, "the access record could not be read");
    ApiError::Unavailable("the access record could not be read; try again".into())
}

/// Who read my family's personal data (holders).
#[utoipa::path(get, path = "/api/v1/me/access-log", tag = "holder",
    responses((status = 200, body = AccessLog)),
    security(("bearer" = [])))]
pub async fn mine(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<AccessLog>> {
    caller.require(&[Role::Holder])?;
    let family = caller
        .family_id
        .ok_or(ApiError::Forbidden("this token is not a family's"))?;
    let entries = state
        .access()
        .by_family(family, ACCESS_PAGE)
        .await
        .map_err(unavailable)?;
    Ok(log(entries))
}

/// Who read this family's personal data (auditors).
#[utoipa::path(get, path = "/api/v1/families/{family_id}/access-log", tag = "auditor",
    params(("family_id" = Uuid, Path)),
    responses((status = 200, body = AccessLog)),
    security(("bearer" = [])))]
pub async fn of_family(
    State(state): State<AppState>,
    caller: Caller,
    Segments(family): Segments<String>,
) -> ApiResult<Json<AccessLog>> {
    caller.require(&[Role::Auditor])?;
    let family_id = family_id(&family)?;
    let entries = state
        .access()
        .by_family(family_id, ACCESS_PAGE)
        .await
        .map_err(unavailable)?;
    Ok(log(entries))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ActorQuery {
    /// The official's access-token id (as the entries and the history name it).
    actor: String,
}

/// What one official read (auditors).
#[utoipa::path(get, path = "/api/v1/access-log", tag = "auditor",
    params(ActorQuery),
    responses((status = 200, body = AccessLog)),
    security(("bearer" = [])))]
pub async fn of_actor(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ActorQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<AccessLog>> {
    caller.require(&[Role::Auditor])?;
    let invalid = || {
        ApiError::Malformed(
            "invalid query".into(),
            vec![crate::error::ProblemField {
                field: "actor".into(),
                message: "an actor id (a UUID)".into(),
            }],
        )
    };
    let Query(query) = query.map_err(|_| invalid())?;
    let actor: Uuid = query.actor.trim().parse().map_err(|_| invalid())?;
    let entries = state
        .access()
        .by_actor(actor, ACCESS_PAGE)
        .await
        .map_err(unavailable)?;
    Ok(log(entries))
}
