//! Scripts as team resources (extension): create, get, list, replace, delete.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{
    auth::TeamCtx,
    error::{ApiError, ApiResult, ErrorBody},
    extract::{parse_id, ApiJson, ApiQuery},
    pagination::{Page, PageMeta, SortOrder},
    AppState,
};
use crate::{
    conversation::script::{Script, ScriptType},
    domain::{new_id, now},
    store::scripts::StoredScript,
};

#[derive(Debug, Serialize, ToSchema)]
pub struct ScriptView {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub script_type: ScriptType,
    pub definition: Script,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<StoredScript> for ScriptView {
    fn from(s: StoredScript) -> Self {
        ScriptView {
            id: s.id.to_string(),
            name: s.name,
            script_type: s.definition.0.script_type,
            definition: s.definition.0,
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ScriptResponse {
    pub success: bool,
    pub script_id: String,
    pub script: ScriptView,
}

/// Refuses a script that cannot run, listing every problem (`errors: [{at, problem}]`).
pub fn check(script: &Script) -> ApiResult<()> {
    let problems = script.validate();
    if problems.is_empty() {
        return Ok(());
    }
    let first = problems[0].to_string();
    let count = problems.len();
    Err(ApiError::bad_request(if count == 1 {
        format!("invalid script: {first}")
    } else {
        format!("invalid script ({count} problems), first: {first}")
    })
    .with("errors", serde_json::to_value(&problems).unwrap_or_default()))
}

/// Create script (extension)
///
/// Stores a script after validating it: unknown step or flow ids, no reachable ending, a sub-flow
/// that ends the call, undefined variable namespaces and unknown functions are refused with 400,
/// each problem named in `errors`.
#[utoipa::path(post, path = "/api/v1/scripts", tag = "Scripts", operation_id = "createScript",
    request_body = Script,
    responses((status = 201, description = "Script created.", body = ScriptResponse)))]
pub async fn create(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiJson(script): ApiJson<Script>,
) -> ApiResult<(StatusCode, Json<ScriptResponse>)> {
    check(&script)?;
    let stored = state.db.insert_script(team.team_id, new_id(), &script, now()).await?;
    tracing::info!(script_id = %stored.id, "script created");
    Ok((
        StatusCode::CREATED,
        Json(ScriptResponse {
            success: true,
            script_id: stored.id.to_string(),
            script: stored.into(),
        }),
    ))
}

/// Get script (extension)
#[utoipa::path(get, path = "/api/v1/scripts/{script_id}", tag = "Scripts", operation_id = "getScript",
    params(("script_id" = String, Path, description = "Script id")),
    responses(
        (status = 200, description = "Script found.", body = ScriptResponse),
        (status = 404, description = "No such script in your team.", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<ScriptResponse>> {
    let id = parse_id(&id, "Script")?;
    let s = state
        .db
        .get_script(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Script not found".into()))?;
    Ok(Json(ScriptResponse {
        success: true,
        script_id: s.id.to_string(),
        script: s.into(),
    }))
}

/// Replace script (extension)
#[utoipa::path(put, path = "/api/v1/scripts/{script_id}", tag = "Scripts", operation_id = "replaceScript",
    params(("script_id" = String, Path, description = "Script id")),
    request_body = Script,
    responses(
        (status = 200, description = "Script replaced.", body = ScriptResponse),
        (status = 404, description = "No such script in your team.", body = ErrorBody),
    ))]
pub async fn replace(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    ApiJson(script): ApiJson<Script>,
) -> ApiResult<Json<ScriptResponse>> {
    let id = parse_id(&id, "Script")?;
    check(&script)?;
    let s = state
        .db
        .replace_script(team.team_id, id, &script, now())
        .await?
        .ok_or_else(|| ApiError::NotFound("Script not found".into()))?;
    Ok(Json(ScriptResponse {
        success: true,
        script_id: s.id.to_string(),
        script: s.into(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct DeleteScriptResponse {
    pub success: bool,
    pub script_id: String,
    pub deleted: bool,
}

/// Delete script (extension)
///
/// Refused with a 409 once calls were made with the script: they keep it for their results.
#[utoipa::path(delete, path = "/api/v1/scripts/{script_id}", tag = "Scripts", operation_id = "deleteScript",
    params(("script_id" = String, Path, description = "Script id")),
    responses(
        (status = 200, description = "Script deleted.", body = DeleteScriptResponse),
        (status = 404, description = "No such script in your team.", body = ErrorBody),
        (status = 409, description = "Calls were made with the script.", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<DeleteScriptResponse>> {
    let id = parse_id(&id, "Script")?;
    let deleted = state
        .db
        .delete_script(team.team_id, id)
        .await
        .map_err(|e| e.refused_as(|r| ApiError::conflict(r.to_string())))?;
    if !deleted {
        return Err(ApiError::NotFound("Script not found".into()));
    }
    Ok(Json(DeleteScriptResponse {
        success: true,
        script_id: id.to_string(),
        deleted: true,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListScriptsParams {
    /// Only `inbound` or `outbound` scripts.
    #[serde(rename = "type")]
    #[param(rename = "type", value_type = Option<ScriptType>)]
    pub script_type: Option<ScriptType>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `meta.next_cursor` of the previous page.
    #[param(value_type = Option<uuid::Uuid>)]
    pub cursor: Option<String>,
    /// `asc` (default): oldest first; `desc`: newest first.
    pub order: Option<SortOrder>,
}

#[derive(Serialize, ToSchema)]
pub struct ListScriptsResponse {
    pub success: bool,
    pub scripts: Vec<ScriptView>,
    pub meta: PageMeta,
}

/// List scripts (extension)
#[utoipa::path(get, path = "/api/v1/scripts", tag = "Scripts", operation_id = "listScripts",
    params(ListScriptsParams),
    responses((status = 200, description = "A page of scripts, oldest first (order=desc: newest first).", body = ListScriptsResponse)))]
pub async fn list(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<ListScriptsParams>,
) -> ApiResult<Json<ListScriptsResponse>> {
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    let script_type = q.script_type.map(|t| match t {
        ScriptType::Inbound => "inbound",
        ScriptType::Outbound => "outbound",
    });
    let rows = state.db.list_scripts(team.team_id, script_type, page.seek()).await?;
    let (rows, meta) = page.finish(rows, |s| s.id);
    Ok(Json(ListScriptsResponse {
        success: true,
        scripts: rows.into_iter().map(Into::into).collect(),
        meta,
    }))
}
