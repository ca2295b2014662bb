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
    store::scripts::{ScheduledCalls, StoredScript},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct ScriptView {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub script_type: ScriptType,
    pub definition: Script,
    /// The current version: 1 at creation, one more at each replace or restore.
    pub version: i32,
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
            version: s.version,
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
    let s = own_script(&state, &team, &id).await?;
    Ok(Json(ScriptResponse {
        success: true,
        script_id: s.id.to_string(),
        script: s.into(),
    }))
}

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReplaceParams {
    /// `true`: calls not yet started (scheduled or queued) move to the new version. By default
    /// they keep the version they were created with.
    pub move_scheduled_calls: Option<bool>,
}

impl ReplaceParams {
    fn scheduled(&self) -> ScheduledCalls {
        match self.move_scheduled_calls {
            Some(true) => ScheduledCalls::Move,
            _ => ScheduledCalls::Keep,
        }
    }
}

/// Replace script (extension)
///
/// Stores the definition as the script's next version. Calls already scheduled keep running the
/// version they were created with unless `move_scheduled_calls=true`.
#[utoipa::path(put, path = "/api/v1/scripts/{script_id}", tag = "Scripts", operation_id = "replaceScript",
    params(("script_id" = String, Path, description = "Script id"), ReplaceParams),
    request_body = Script,
    responses(
        (status = 200, description = "Script replaced.", body = ScriptResponse),
        (status = 404, description = "No such script in your team.", body = ErrorBody),
    ))]
pub async fn replace(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ReplaceParams>,
    ApiJson(script): ApiJson<Script>,
) -> ApiResult<Json<ScriptResponse>> {
    let id = parse_id(&id, "Script")?;
    check(&script)?;
    store_version(&state, &team, id, &script, q.scheduled()).await
}

/// Makes `script` the script's next version: the one place replace and restore write.
async fn store_version(
    state: &AppState,
    team: &TeamCtx,
    id: uuid::Uuid,
    script: &Script,
    scheduled: ScheduledCalls,
) -> ApiResult<Json<ScriptResponse>> {
    let s = state
        .db
        .replace_script(team.team_id, id, script, scheduled, now())
        .await?
        .ok_or_else(|| ApiError::NotFound("Script not found".into()))?;
    tracing::info!(script_id = %s.id, version = s.version, "script version stored");
    Ok(Json(ScriptResponse {
        success: true,
        script_id: s.id.to_string(),
        script: s.into(),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScriptVersionSummary {
    pub version: i32,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct ListVersionsResponse {
    pub success: bool,
    pub script_id: String,
    /// Oldest first (order=desc: newest first).
    pub versions: Vec<ScriptVersionSummary>,
    pub meta: PageMeta,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListVersionsParams {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `meta.next_cursor` of the previous page.
    #[param(value_type = Option<uuid::Uuid>)]
    pub cursor: Option<String>,
    /// `asc` (default): oldest first; `desc`: newest first.
    pub order: Option<SortOrder>,
}

/// The team's script, or a 404.
async fn own_script(state: &AppState, team: &TeamCtx, id: &str) -> ApiResult<StoredScript> {
    let id = parse_id(id, "Script")?;
    state
        .db
        .get_script(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Script not found".into()))
}

/// List script versions (extension)
#[utoipa::path(get, path = "/api/v1/scripts/{script_id}/versions", tag = "Scripts", operation_id = "listScriptVersions",
    params(("script_id" = String, Path, description = "Script id"), ListVersionsParams),
    responses(
        (status = 200, description = "A page of versions.", body = ListVersionsResponse),
        (status = 404, description = "No such script in your team.", body = ErrorBody),
    ))]
pub async fn versions(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListVersionsParams>,
) -> ApiResult<Json<ListVersionsResponse>> {
    let script = own_script(&state, &team, &id).await?;
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    let rows = state
        .db
        .list_script_versions(team.team_id, script.id, page.seek())
        .await?;
    let (rows, meta) = page.finish(rows, |v| v.id);
    Ok(Json(ListVersionsResponse {
        success: true,
        script_id: script.id.to_string(),
        versions: rows
            .into_iter()
            .map(|v| ScriptVersionSummary {
                version: v.version,
                name: v.name,
                created_at: v.created_at,
            })
            .collect(),
        meta,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScriptVersionView {
    pub version: i32,
    pub name: String,
    pub definition: Script,
    pub created_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct ScriptVersionResponse {
    pub success: bool,
    pub script_id: String,
    pub version: ScriptVersionView,
}

/// A version number from the path: a positive integer.
fn parse_version(text: &str) -> ApiResult<i32> {
    text.parse::<i32>()
        .ok()
        .filter(|v| *v >= 1)
        .ok_or_else(|| ApiError::bad_request(format!("version `{text}` is not a positive whole number")))
}

async fn find_version(
    state: &AppState,
    team: &TeamCtx,
    id: &str,
    version: &str,
) -> ApiResult<crate::store::scripts::ScriptVersion> {
    let script = own_script(state, team, id).await?;
    let version = parse_version(version)?;
    state
        .db
        .get_script_version(team.team_id, script.id, version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Script has no version {version} (it is at {})", script.version)))
}

/// Get script version (extension)
#[utoipa::path(get, path = "/api/v1/scripts/{script_id}/versions/{version}", tag = "Scripts", operation_id = "getScriptVersion",
    params(("script_id" = String, Path, description = "Script id"), ("version" = i32, Path, description = "Version number, from 1")),
    responses(
        (status = 200, description = "The version.", body = ScriptVersionResponse),
        (status = 400, description = "The version is not a positive whole number.", body = ErrorBody),
        (status = 404, description = "No such script in your team, or no such version.", body = ErrorBody),
    ))]
pub async fn version(
    State(state): State<AppState>,
    team: TeamCtx,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult<Json<ScriptVersionResponse>> {
    let v = find_version(&state, &team, &id, &version).await?;
    Ok(Json(ScriptVersionResponse {
        success: true,
        script_id: v.script_id.to_string(),
        version: ScriptVersionView {
            version: v.version,
            name: v.name,
            definition: v.definition.0,
            created_at: v.created_at,
        },
    }))
}

/// Restore script version (extension)
///
/// Rolls back: the old version's definition becomes the script's next version (history is kept).
/// Calls already scheduled keep their version unless `move_scheduled_calls=true`.
#[utoipa::path(post, path = "/api/v1/scripts/{script_id}/versions/{version}/restore", tag = "Scripts",
    operation_id = "restoreScriptVersion",
    params(("script_id" = String, Path, description = "Script id"), ("version" = i32, Path, description = "Version number, from 1"), ReplaceParams),
    responses(
        (status = 200, description = "The script, now at a new version with the old definition.", body = ScriptResponse),
        (status = 400, description = "The version is not a positive whole number.", body = ErrorBody),
        (status = 404, description = "No such script in your team, or no such version.", body = ErrorBody),
    ))]
pub async fn restore(
    State(state): State<AppState>,
    team: TeamCtx,
    Path((id, version)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<ReplaceParams>,
) -> ApiResult<Json<ScriptResponse>> {
    let v = find_version(&state, &team, &id, &version).await?;
    // Stored versions were valid when stored; checking again keeps the rule in one place should
    // validation have grown stricter since.
    check(&v.definition.0)?;
    store_version(&state, &team, v.script_id, &v.definition.0, q.scheduled()).await
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

#[derive(Serialize, ToSchema)]
pub struct TestScriptResponse {
    pub success: bool,
    pub script_id: String,
    /// The version the cases ran against (the current one).
    pub script_version: i32,
    pub passed: usize,
    pub failed: usize,
    pub cases: Vec<crate::conversation::suite::CaseResult>,
}

/// Test script (extension)
///
/// Runs simulated conversations against the script's current version, offline and deterministic
/// (the `rules` brain; tool steps run as on a call, SMS are recorded and not sent): each case is a
/// stock persona, a persona object or a list of lines, with what it must do (path, outcome,
/// end_reason, data, words the assistant says). Answers 200 with every case's result whether it
/// passed or not; `failed` counts the cases that did not. At most 50 cases.
#[utoipa::path(post, path = "/api/v1/scripts/{script_id}/test", tag = "Scripts", operation_id = "testScript",
    params(("script_id" = String, Path, description = "Script id")),
    request_body = crate::conversation::suite::TestRun,
    responses(
        (status = 200, description = "Every case's result.", body = TestScriptResponse),
        (status = 400, description = "No cases, too many, or a bad persona or outcome.", body = ErrorBody),
        (status = 404, description = "No such script in your team.", body = ErrorBody),
    ))]
pub async fn test(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    ApiJson(run): ApiJson<crate::conversation::suite::TestRun>,
) -> ApiResult<Json<TestScriptResponse>> {
    use crate::conversation::{brain::rules::RulesBrain, context::CallContext, suite, tools};
    let script = own_script(&state, &team, &id).await?;
    run.check().map_err(|e| ApiError::bad_request(e.to_string()))?;
    let team_row = state.db.get_team(team.team_id).await?;
    let context = team_row.map_or_else(CallContext::default, |t| {
        CallContext::from_settings(&t.region, &t.timezone, &t.timezone)
    });
    let tools = std::sync::Arc::new(tools::Tools::new(
        state.settings.allow_private_network,
        std::sync::Arc::new(tools::RecordingSms::default()),
    ));
    let results = suite::run(
        std::sync::Arc::new(script.definition.0.clone()),
        &run,
        std::sync::Arc::new(RulesBrain),
        tools,
        context,
    )
    .await
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let failed = results.iter().filter(|r| !r.passed).count();
    Ok(Json(TestScriptResponse {
        success: true,
        script_id: script.id.to_string(),
        script_version: script.version,
        passed: results.len() - failed,
        failed,
        cases: results,
    }))
}
