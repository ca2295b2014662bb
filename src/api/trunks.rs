//! SIP trunks (extension): where calls from a team's numbers ring out, and whose calls to them are
//! answered. The rules are the trunks service's (`crate::trunks`), shared with `voxd trunk`; a
//! trunk's password goes in and never comes back out.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    auth::TeamCtx,
    error::{ApiError, ApiResult, ErrorBody},
    extract::{parse_id, ApiJson, ApiQuery},
    pagination::{Page, PageMeta, PageParams},
    AppState,
};
use crate::{store::trunks::Trunk, trunks};

#[derive(Debug, Serialize, ToSchema)]
pub struct TrunkView {
    pub id: String,
    pub name: String,
    /// Where INVITEs go, and the only address calls to the team's numbers are taken from.
    #[schema(example = "sip:sip.provider.example:5060")]
    pub uri: String,
    #[schema(example = "udp")]
    pub transport: String,
    /// The digest username, if the trunk challenges.
    pub username: Option<String>,
    /// Whether a password is stored (it is never returned).
    pub has_password: bool,
    pub created_at: DateTime<Utc>,
}

impl From<Trunk> for TrunkView {
    fn from(t: Trunk) -> Self {
        let host = if t.host.contains(':') {
            format!("[{}]", t.host)
        } else {
            t.host
        };
        TrunkView {
            id: t.id.to_string(),
            uri: format!("sip:{host}:{}", t.port),
            name: t.name,
            transport: t.transport,
            username: t.username,
            has_password: t.password.is_some(),
            created_at: t.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TrunkResponse {
    pub success: bool,
    pub trunk: TrunkView,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddTrunkRequest {
    /// Unique in your team.
    #[schema(example = "main", max_length = 100)]
    pub name: String,
    /// `sip:HOST[:PORT]` (port 5060 by default).
    #[schema(example = "sip:sip.provider.example:5060", max_length = 255)]
    pub uri: String,
    /// `udp` (the default and, so far, the only one carried).
    #[schema(example = "udp")]
    pub transport: Option<String>,
    /// For the trunk's digest challenges.
    #[schema(max_length = 128)]
    pub username: Option<String>,
    /// Stored sealed (AES-256-GCM); needs a username.
    #[schema(max_length = 256, write_only)]
    pub password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ListTrunksResponse {
    pub success: bool,
    pub trunks: Vec<TrunkView>,
    pub meta: PageMeta,
}

#[derive(Serialize, ToSchema)]
pub struct DeleteTrunkResponse {
    pub success: bool,
    pub trunk_id: String,
    pub deleted: bool,
}

/// Add SIP trunk (extension)
///
/// Calls from the team's numbers on this trunk (`trunk_id` on a phone number) ring out through
/// it, and calls to them from its address are answered by the number's inbound script.
#[utoipa::path(post, path = "/api/v1/trunks", tag = "SIP trunks", operation_id = "addTrunk",
    request_body = AddTrunkRequest,
    responses(
        (status = 201, description = "Trunk added.", body = TrunkResponse),
        (status = 409, description = "Your team has a trunk by that name.", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiJson(req): ApiJson<AddTrunkRequest>,
) -> ApiResult<(StatusCode, Json<TrunkResponse>)> {
    let new = trunks::NewTrunk {
        name: req.name,
        uri: req.uri,
        transport: req.transport,
        username: req.username,
        password: req.password,
    };
    let trunk = trunks::add(&state.db, team.team_id, new).await.map_err(trunk_error)?;
    Ok((
        StatusCode::CREATED,
        Json(TrunkResponse {
            success: true,
            trunk: trunk.into(),
        }),
    ))
}

/// List SIP trunks (extension)
#[utoipa::path(get, path = "/api/v1/trunks", tag = "SIP trunks", operation_id = "listTrunks",
    params(PageParams),
    responses((status = 200, description = "A page of trunks, oldest first (order=desc: newest first).", body = ListTrunksResponse)))]
pub async fn list(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<ListTrunksResponse>> {
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    let rows = state.db.page_trunks(team.team_id, page.seek()).await?;
    let (rows, meta) = page.finish(rows, |t| t.id);
    Ok(Json(ListTrunksResponse {
        success: true,
        trunks: rows.into_iter().map(Into::into).collect(),
        meta,
    }))
}

/// Get SIP trunk (extension)
#[utoipa::path(get, path = "/api/v1/trunks/{trunk_id}", tag = "SIP trunks", operation_id = "getTrunk",
    params(("trunk_id" = String, Path, description = "Trunk id")),
    responses((status = 200, description = "The trunk (without its password).", body = TrunkResponse)))]
pub async fn get(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<TrunkResponse>> {
    let id = parse_id(&id, "Trunk")?;
    let trunk = state
        .db
        .get_trunk(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Trunk not found".into()))?;
    Ok(Json(TrunkResponse {
        success: true,
        trunk: trunk.into(),
    }))
}

/// Remove SIP trunk (extension)
///
/// Refused with a 409 while numbers ring through it.
#[utoipa::path(delete, path = "/api/v1/trunks/{trunk_id}", tag = "SIP trunks", operation_id = "deleteTrunk",
    params(("trunk_id" = String, Path, description = "Trunk id")),
    responses(
        (status = 200, description = "Trunk removed.", body = DeleteTrunkResponse),
        (status = 409, description = "Numbers ring through the trunk.", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<DeleteTrunkResponse>> {
    let id = parse_id(&id, "Trunk")?;
    trunks::remove(&state.db, team.team_id, id).await.map_err(trunk_error)?;
    Ok(Json(DeleteTrunkResponse {
        success: true,
        trunk_id: id.to_string(),
        deleted: true,
    }))
}

fn trunk_error(e: trunks::TrunkError) -> ApiError {
    use trunks::TrunkError as E;
    match e {
        E::Invalid(f) => f.into(),
        E::Taken(_) | E::InUse(_) => ApiError::conflict(e.to_string()),
        E::NotFound => ApiError::NotFound("Trunk not found".into()),
        E::SealKey(why) => ApiError::Internal(anyhow::anyhow!("seal key: {why}")),
        E::Store(s) => s.into(),
    }
}
