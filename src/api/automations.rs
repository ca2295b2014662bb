//! Automations as team resources (extension) and their execution log.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::{
    auth::TeamCtx,
    error::{ApiError, ApiResult, ErrorBody},
    extract::{parse_id, ApiJson, ApiQuery},
    pagination::{Page, PageMeta, PageParams, SortOrder, TimeBound},
    AppState,
};
use crate::{
    domain::{
        automation::{self, AutomationDef, HookSignature, Step, Trigger},
        new_id, now,
        signature::new_standard_secret,
    },
    store::automations::{Automation, Execution, ExecutionFilter, ExecutionStep},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct AutomationView {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub trigger: Trigger,
    /// The pipeline, as given.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<Value>,
    /// Whether the inbound hook needs `X-Webhook-Signature`.
    pub signed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Automation> for AutomationView {
    fn from(a: Automation) -> Self {
        let def = a.definition.0;
        AutomationView {
            id: a.id.to_string(),
            name: a.name,
            enabled: a.enabled,
            signed: a.hook_secret.is_some(),
            steps: def
                .steps
                .iter()
                .map(|s| serde_json::to_value(s).unwrap_or_default())
                .collect(),
            trigger: def.trigger,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// Where to send inbound webhooks. Shown once: voxd keeps only a hash of the token.
#[derive(Debug, Serialize, ToSchema)]
pub struct HookCredentials {
    /// `/api/v1/hooks/{token}` on this server (absent when the token was kept).
    pub path: Option<String>,
    pub token: Option<String>,
    /// The signing secret, when the trigger is signed: `whsec_…` for Standard Webhooks signatures
    /// (`trigger.signature: standard`, the default), `hks_…` for the body-only `X-Webhook-Signature`.
    pub secret: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AutomationResponse {
    pub success: bool,
    pub automation_id: String,
    pub automation: AutomationView,
    /// Present when new hook credentials were made (create, a change to a webhook trigger,
    /// signing turned on, rotation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hook: Option<HookCredentials>,
}

fn random_token(prefix: &str) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Reads a definition, with errors naming the step and field.
fn definition(body: Value, allow_private: bool) -> ApiResult<AutomationDef> {
    let def = automation::parse(body).map_err(|e| {
        let message = if e.field.is_empty() {
            format!("invalid automation: {}", e.reason)
        } else {
            format!("invalid automation: {}: {}", e.field, e.reason)
        };
        ApiError::bad_request(message).with("field", e.field)
    })?;
    // A step that would call a private address is refused now, not on its first run.
    for (at, step) in automation::walk(&def.steps, "steps") {
        if let Step::Destination { url, .. } | Step::Source { url, .. } = step {
            crate::outbound::check_saved_url(url, allow_private).map_err(|e| {
                ApiError::bad_request(format!("invalid automation: {at}.url: {e}")).with("field", format!("{at}.url"))
            })?;
        }
    }
    Ok(def)
}

/// Fills token and secret for the trigger, keeping those of `old` where they still apply; returns
/// the credentials to show when something new was made.
fn credentials(a: &mut Automation, old: Option<&Automation>) -> Option<HookCredentials> {
    let Trigger::Webhook { signed, signature } = a.definition.0.trigger else {
        a.hook_token_hash = None;
        a.hook_secret = None;
        return None;
    };
    // A token or secret that already exists is kept (and not shown again); a missing one is made.
    let token = match old.and_then(|o| o.hook_token_hash.clone()) {
        Some(hash) => {
            a.hook_token_hash = Some(hash);
            None
        }
        None => {
            let t = random_token("hk_");
            a.hook_token_hash = Some(token_hash(&t));
            Some(t)
        }
    };
    // A secret is kept while the scheme stays: each scheme has its own form of secret.
    let same_scheme =
        |o: &&Automation| matches!(o.definition.0.trigger, Trigger::Webhook { signature: s, .. } if s == signature);
    a.hook_secret = signed
        .then(|| old.filter(same_scheme).and_then(|o| o.hook_secret.clone()))
        .flatten();
    let secret = if signed && a.hook_secret.is_none() {
        let s = match signature {
            HookSignature::Standard => new_standard_secret(),
            HookSignature::Body => random_token("hks_"),
        };
        a.hook_secret = Some(s.clone());
        Some(s)
    } else {
        None
    };
    (token.is_some() || secret.is_some()).then(|| HookCredentials {
        path: token.as_ref().map(|t| format!("/api/v1/hooks/{t}")),
        token,
        secret,
    })
}

fn respond(a: Automation, hook: Option<HookCredentials>) -> AutomationResponse {
    AutomationResponse {
        success: true,
        automation_id: a.id.to_string(),
        automation: a.into(),
        hook,
    }
}

/// Checks that the scripts a definition names are the team's: a create-call step needs an outbound
/// one; a call trigger's filter, any.
async fn check_references(db: &crate::store::Db, team_id: uuid::Uuid, def: &AutomationDef) -> ApiResult<()> {
    let missing = |field: String, id: &uuid::Uuid| {
        ApiError::bad_request(format!(
            "invalid automation: {field}: script {id} is not one of your team's"
        ))
        .with("field", field)
    };
    if let Trigger::CallCompleted { script_ids, .. } | Trigger::CallScheduled { script_ids } = &def.trigger {
        for (i, id) in script_ids.iter().enumerate() {
            if db.get_script(team_id, *id).await?.is_none() {
                return Err(missing(format!("trigger.script_ids[{i}]"), id));
            }
        }
    }
    for (field, step) in automation::walk(&def.steps, "steps") {
        if let automation::Step::CreateCall { script_id, .. } = step {
            let field = format!("{field}.script_id");
            match db.get_script(team_id, *script_id).await? {
                None => return Err(missing(field, script_id)),
                Some(s) if s.definition.0.script_type != crate::conversation::script::ScriptType::Outbound => {
                    return Err(ApiError::bad_request(format!(
                        "invalid automation: {field}: script {script_id} is inbound; calls need an outbound one"
                    ))
                    .with("field", field))
                }
                Some(_) => {}
            }
        }
    }
    Ok(())
}

/// Creates an automation from a validated definition (the API and `voxd automation import`).
pub async fn create_automation(
    db: &crate::store::Db,
    team_id: uuid::Uuid,
    def: AutomationDef,
) -> ApiResult<(Automation, Option<HookCredentials>)> {
    check_references(db, team_id, &def).await?;
    let at = now();
    let mut a = Automation {
        id: new_id(),
        team_id,
        name: def.name.trim().to_owned(),
        enabled: def.enabled,
        trigger_type: def.trigger.kind().into(),
        definition: sqlx::types::Json(def),
        hook_token_hash: None,
        hook_secret: None,
        created_at: at,
        updated_at: at,
    };
    let hook = credentials(&mut a, None);
    db.insert_automation(&a).await?;
    tracing::info!(automation_id = %a.id, trigger = %a.trigger_type, "automation created");
    Ok((a, hook))
}

/// Create automation (extension)
///
/// A trigger (`webhook`, `call_completed`, `call_scheduled`) and up to 20 steps (`transform`,
/// `upsert_contact`, `condition`, `upsert_object`, `create_call`, `destination`, `source`,
/// `notification`), branches included. Paths into the context are checked: one into a namespace
/// that cannot exist at that step (`contact.*` before any step makes a contact) is a 400 naming
/// the step. A webhook trigger returns its hook URL (and secret, when signed) once.
#[utoipa::path(post, path = "/api/v1/automations", tag = "Automations", operation_id = "createAutomation",
    request_body = AutomationDef,
    responses((status = 201, description = "Automation created.", body = AutomationResponse)))]
pub async fn create(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<(StatusCode, Json<AutomationResponse>)> {
    let def = definition(body, state.settings.allow_private_network)?;
    let (a, hook) = create_automation(&state.db, team.team_id, def).await?;
    Ok((StatusCode::CREATED, Json(respond(a, hook))))
}

async fn find(state: &AppState, team: &TeamCtx, raw: &str) -> ApiResult<Automation> {
    let id = parse_id(raw, "Automation")?;
    state
        .db
        .get_automation(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Automation not found".into()))
}

/// Get automation (extension)
#[utoipa::path(get, path = "/api/v1/automations/{automation_id}", tag = "Automations", operation_id = "getAutomation",
    params(("automation_id" = String, Path, description = "Automation id")),
    responses((status = 200, description = "Automation found.", body = AutomationResponse)))]
pub async fn get(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<AutomationResponse>> {
    Ok(Json(respond(find(&state, &team, &id).await?, None)))
}

/// Replace automation (extension)
///
/// Replaces name, trigger and steps. A webhook trigger keeps its token (and secret while signing
/// stays on); executions already started keep the steps they started with.
#[utoipa::path(put, path = "/api/v1/automations/{automation_id}", tag = "Automations", operation_id = "replaceAutomation",
    params(("automation_id" = String, Path, description = "Automation id")),
    request_body = AutomationDef,
    responses((status = 200, description = "Automation replaced.", body = AutomationResponse)))]
pub async fn replace(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> ApiResult<Json<AutomationResponse>> {
    let old = find(&state, &team, &id).await?;
    let def = definition(body, state.settings.allow_private_network)?;
    check_references(&state.db, team.team_id, &def).await?;
    let mut a = Automation {
        name: def.name.trim().to_owned(),
        enabled: def.enabled,
        trigger_type: def.trigger.kind().into(),
        definition: sqlx::types::Json(def),
        updated_at: now(),
        ..old.clone()
    };
    let hook = credentials(&mut a, Some(&old));
    if !state.db.replace_automation(&a).await? {
        return Err(ApiError::NotFound("Automation not found".into()));
    }
    tracing::info!(automation_id = %a.id, "automation replaced");
    Ok(Json(respond(a, hook)))
}

async fn set_enabled(state: &AppState, team: &TeamCtx, id: &str, enabled: bool) -> ApiResult<Json<AutomationResponse>> {
    let id = parse_id(id, "Automation")?;
    let a = state
        .db
        .set_automation_enabled(team.team_id, id, enabled, now())
        .await?
        .ok_or_else(|| ApiError::NotFound("Automation not found".into()))?;
    tracing::info!(automation_id = %a.id, enabled, "automation switched");
    Ok(Json(respond(a, None)))
}

/// Enable automation (extension)
#[utoipa::path(post, path = "/api/v1/automations/{automation_id}/enable", tag = "Automations", operation_id = "enableAutomation",
    params(("automation_id" = String, Path, description = "Automation id")),
    responses((status = 200, description = "Enabled.", body = AutomationResponse)))]
pub async fn enable(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<AutomationResponse>> {
    set_enabled(&state, &team, &id, true).await
}

/// Disable automation (extension)
///
/// A disabled automation ignores its triggers (its hook answers 404) until enabled again.
#[utoipa::path(post, path = "/api/v1/automations/{automation_id}/disable", tag = "Automations", operation_id = "disableAutomation",
    params(("automation_id" = String, Path, description = "Automation id")),
    responses((status = 200, description = "Disabled.", body = AutomationResponse)))]
pub async fn disable(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<AutomationResponse>> {
    set_enabled(&state, &team, &id, false).await
}

/// Rotate hook credentials (extension)
///
/// A new token (and a new secret when signed); the old ones stop working at once.
#[utoipa::path(post, path = "/api/v1/automations/{automation_id}/rotate-hook", tag = "Automations", operation_id = "rotateAutomationHook",
    params(("automation_id" = String, Path, description = "Automation id")),
    responses(
        (status = 200, description = "New credentials, shown once.", body = AutomationResponse),
        (status = 409, description = "The trigger is not a webhook.", body = ErrorBody),
    ))]
pub async fn rotate_hook(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<AutomationResponse>> {
    let mut a = find(&state, &team, &id).await?;
    if a.hook_token_hash.is_none() {
        return Err(ApiError::conflict("this automation's trigger is not a webhook"));
    }
    a.updated_at = now();
    let hook = credentials(&mut a, None);
    state.db.replace_automation(&a).await?;
    tracing::info!(automation_id = %a.id, "hook credentials rotated");
    Ok(Json(respond(a, hook)))
}

#[derive(Serialize, ToSchema)]
pub struct DeleteAutomationResponse {
    pub success: bool,
    pub deleted: bool,
}

/// Delete automation (extension)
///
/// Deletes it with its executions and their logs.
#[utoipa::path(delete, path = "/api/v1/automations/{automation_id}", tag = "Automations", operation_id = "deleteAutomation",
    params(("automation_id" = String, Path, description = "Automation id")),
    responses((status = 200, description = "Deleted.", body = DeleteAutomationResponse)))]
pub async fn delete(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<DeleteAutomationResponse>> {
    let id = parse_id(&id, "Automation")?;
    if !state.db.delete_automation(team.team_id, id).await? {
        return Err(ApiError::NotFound("Automation not found".into()));
    }
    tracing::info!(automation_id = %id, "automation deleted");
    Ok(Json(DeleteAutomationResponse {
        success: true,
        deleted: true,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ListAutomationsResponse {
    pub success: bool,
    pub automations: Vec<AutomationView>,
    pub meta: PageMeta,
}

/// List automations (extension)
#[utoipa::path(get, path = "/api/v1/automations", tag = "Automations", operation_id = "listAutomations",
    params(PageParams),
    responses((status = 200, description = "A page of automations, oldest first (order=desc: newest first).", body = ListAutomationsResponse)))]
pub async fn list(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<ListAutomationsResponse>> {
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    let rows = state.db.list_automations(team.team_id, page.seek()).await?;
    let (rows, meta) = page.finish(rows, |a| a.id);
    Ok(Json(ListAutomationsResponse {
        success: true,
        automations: rows.into_iter().map(Into::into).collect(),
        meta,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    /// Place in the pipeline: `2`, or `3.then.0` inside a condition's branch.
    pub key: String,
    #[serde(rename = "type")]
    pub step_type: String,
    pub name: Option<String>,
    /// Completed, Failed, Skipped or Processing.
    pub status: String,
    #[schema(value_type = Option<Object>)]
    pub input: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    pub error: Option<String>,
    pub attempts: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
}

impl From<ExecutionStep> for StepView {
    fn from(s: ExecutionStep) -> Self {
        StepView {
            key: s.step_key,
            step_type: s.step_type,
            name: s.name,
            status: s.status,
            input: s.input.map(|j| j.0),
            output: s.output.map(|j| j.0),
            error: s.error,
            attempts: s.attempts,
            started_at: s.started_at,
            finished_at: s.finished_at,
            duration_ms: s.duration_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExecutionView {
    pub id: String,
    pub automation_id: String,
    /// Pending, Processing, Completed, Failed or Dead Letter.
    pub status: String,
    /// What started it: webhook, call.ended, call.scheduled.
    pub trigger: String,
    pub steps_total: i32,
    pub steps_completed: i32,
    pub error: Option<String>,
    /// The call a create-call step is waiting for.
    pub waiting_for_call_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Wall-clock time from creation to the end, once ended.
    pub duration_ms: Option<i64>,
    /// The shared context (only when reading one execution).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    /// Each step touched, in order (only when reading one execution).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<StepView>>,
}

impl ExecutionView {
    fn new(e: Execution, steps: Option<Vec<ExecutionStep>>) -> Self {
        let detailed = steps.is_some();
        ExecutionView {
            id: e.id.to_string(),
            automation_id: e.automation_id.to_string(),
            status: e.status,
            trigger: e.trigger_kind,
            steps_total: e.steps_total,
            steps_completed: e.steps_done,
            error: e.error,
            waiting_for_call_id: e.waiting_call_id.map(|c| c.to_string()),
            duration_ms: e.finished_at.map(|f| (f - e.created_at).num_milliseconds()),
            created_at: e.created_at,
            started_at: e.started_at,
            finished_at: e.finished_at,
            context: detailed.then_some(e.context.0),
            steps: steps.map(|s| s.into_iter().map(Into::into).collect()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ExecutionResponse {
    pub success: bool,
    pub execution: ExecutionView,
}

#[derive(Serialize, ToSchema)]
pub struct ListExecutionsResponse {
    pub success: bool,
    pub executions: Vec<ExecutionView>,
    pub meta: PageMeta,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListExecutionsParams {
    pub automation_id: Option<String>,
    /// Pending, Processing, Completed, Failed or Dead Letter.
    pub status: Option<String>,
    /// Created at or after this time: RFC 3339, or a date (its start, UTC).
    #[param(value_type = Option<String>, example = "2026-12-01")]
    pub since: Option<TimeBound>,
    /// Created before this time: RFC 3339, or a date (its start, UTC).
    #[param(value_type = Option<String>, example = "2026-12-01T09:00:00Z")]
    pub until: Option<TimeBound>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `meta.next_cursor` of the previous page.
    #[param(value_type = Option<uuid::Uuid>)]
    pub cursor: Option<String>,
    /// `asc` (default): oldest first; `desc`: newest first.
    pub order: Option<SortOrder>,
}

const EXECUTION_STATUSES: [&str; 5] = ["Pending", "Processing", "Completed", "Failed", "Dead Letter"];

/// List executions (extension)
///
/// The execution log, oldest first (`order=desc`: newest first), filtered by automation, status and creation time.
#[utoipa::path(get, path = "/api/v1/executions", tag = "Automations", operation_id = "listExecutions",
    params(ListExecutionsParams),
    responses((status = 200, description = "A page of executions.", body = ListExecutionsResponse)))]
pub async fn list_executions(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<ListExecutionsParams>,
) -> ApiResult<Json<ListExecutionsResponse>> {
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    if let Some(s) = &q.status {
        if !EXECUTION_STATUSES.contains(&s.as_str()) {
            return Err(
                ApiError::bad_request(format!("status must be one of {}", EXECUTION_STATUSES.join(", ")))
                    .with("field", "status"),
            );
        }
    }
    let automation_id = match q.automation_id.as_deref() {
        Some(raw) => Some(
            uuid::Uuid::parse_str(raw)
                .map_err(|_| ApiError::bad_request("automation_id is not an id").with("field", "automation_id"))?,
        ),
        None => None,
    };
    let filter = ExecutionFilter {
        automation_id,
        status: q.status,
        since: q.since.map(|t| t.0),
        until: q.until.map(|t| t.0),
        page: page.seek(),
    };
    let rows = state.db.list_executions(team.team_id, &filter).await?;
    let (rows, meta) = page.finish(rows, |e| e.id);
    Ok(Json(ListExecutionsResponse {
        success: true,
        executions: rows.into_iter().map(|e| ExecutionView::new(e, None)).collect(),
        meta,
    }))
}

/// Get execution (extension)
///
/// One execution with its context and each step's status, input, output, error and duration.
#[utoipa::path(get, path = "/api/v1/executions/{execution_id}", tag = "Automations", operation_id = "getExecution",
    params(("execution_id" = String, Path, description = "Execution id")),
    responses((status = 200, description = "Execution found.", body = ExecutionResponse)))]
pub async fn get_execution(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<ExecutionResponse>> {
    let id = parse_id(&id, "Execution")?;
    let e = state
        .db
        .get_execution(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Execution not found".into()))?;
    let steps = state.db.execution_steps(e.id).await?;
    Ok(Json(ExecutionResponse {
        success: true,
        execution: ExecutionView::new(e, Some(steps)),
    }))
}

/// Retry execution (extension)
///
/// Puts a Failed or Dead Letter execution back in the queue. It resumes at the step that failed;
/// steps that completed are not run again.
#[utoipa::path(post, path = "/api/v1/executions/{execution_id}/retry", tag = "Automations", operation_id = "retryExecution",
    params(("execution_id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "Queued again.", body = ExecutionResponse),
        (status = 409, description = "The execution has not failed.", body = ErrorBody),
    ))]
pub async fn retry_execution(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<ExecutionResponse>> {
    let id = parse_id(&id, "Execution")?;
    match state.db.retry_execution(team.team_id, id, now()).await? {
        Some(e) => {
            tracing::info!(execution_id = %e.id, "execution retried");
            Ok(Json(ExecutionResponse {
                success: true,
                execution: ExecutionView::new(e, None),
            }))
        }
        None => match state.db.get_execution(team.team_id, id).await? {
            Some(e) => Err(ApiError::conflict(format!(
                "only Failed or Dead Letter executions can be retried; this one is {}",
                e.status
            ))),
            None => Err(ApiError::NotFound("Execution not found".into())),
        },
    }
}
