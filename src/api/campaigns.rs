//! Campaigns (extension): call a list with one script, paced, with do-not-call skipping, a
//! circuit breaker and a log. The rules are the campaigns service's (`crate::campaigns`).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{
    auth::TeamCtx,
    error::{ApiError, ApiResult, ErrorBody},
    extract::{field_id, parse_id, ApiJson, ApiQuery},
    pagination::{Page, PageMeta, PageParams},
    AppState,
};
use crate::{
    calls::TeamScope,
    campaigns::{self, CampaignError, NewCampaign, Preview},
    domain::{
        call::{CallingWindow, RetryPolicy},
        now, FieldError,
    },
    store::campaigns::{Campaign, LogEntry},
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCampaignRequest {
    #[schema(min_length = 1, max_length = 255, example = "February appraisals")]
    pub name: String,
    pub list_id: String,
    /// An outbound script of your team.
    pub script_id: String,
    /// One caller id of your team...
    pub from_number: Option<String>,
    /// ...or several (up to 20), used in turn.
    pub from_numbers: Option<Vec<String>>,
    /// When the campaign starts (absent or past: now).
    pub scheduled_time: Option<DateTime<Utc>>,
    /// Hours its calls may ring, in each callee's zone (default: the team's window).
    pub calling_window: Option<CallingWindow>,
    /// Its calls not yet over at any time, 1 to 100 (default 5).
    #[schema(minimum = 1, maximum = 100)]
    pub max_concurrent_calls: Option<u32>,
    /// Calls it starts per minute at most, 1 to 600 (default: no limit beyond concurrency).
    #[schema(minimum = 1, maximum = 600)]
    pub calls_per_minute: Option<u32>,
    pub retry_policy: Option<RetryPolicy>,
    /// `{{custom.*}}` variables for every call.
    pub variables: Option<Map<String, Value>>,
    /// Whether contacts added to the list later join while it runs (default false).
    pub join_new_members: Option<bool>,
    /// Redial: call again the members of this finished campaign whose calls ended `rang-out`,
    /// `User unavailable` or `voicemail` (nobody it reached).
    pub redial_of: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CreateCampaignParams {
    /// Only say who would be called (and who skipped); create nothing.
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    pub id: String,
    pub name: String,
    /// `scheduled`, `running`, `paused`, `completed` or `cancelled`.
    pub status: String,
    /// Why it is paused (by the API, or its circuit breaker) or cancelled.
    pub status_reason: Option<String>,
    pub list_id: String,
    pub script_id: String,
    pub from_numbers: Vec<String>,
    pub scheduled_time: DateTime<Utc>,
    pub max_concurrent_calls: i32,
    pub calls_per_minute: Option<i32>,
    pub join_new_members: bool,
    pub redial_of: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Live counts (on get).
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<CampaignCountsView>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct CampaignCountsView {
    /// Members in all.
    pub total: i64,
    /// Members not called yet.
    pub pending: i64,
    /// Members skipped because their number is on the do-not-call list.
    pub suppressed: i64,
    /// Members skipped for another reason (cancelled, no longer callable).
    pub skipped: i64,
    /// Calls waiting for their time, window or retry.
    pub scheduled: i64,
    /// Calls due, waiting for a free line.
    pub queued: i64,
    /// Calls dialling, ringing or under way.
    pub in_progress: i64,
    /// Calls over, by status.
    pub ended: std::collections::BTreeMap<String, i64>,
}

impl From<Campaign> for CampaignView {
    fn from(c: Campaign) -> Self {
        CampaignView {
            id: c.id.to_string(),
            name: c.name,
            status: c.status,
            status_reason: c.status_reason,
            list_id: c.list_id.to_string(),
            script_id: c.script_id.to_string(),
            from_numbers: c.from_numbers.0,
            scheduled_time: c.scheduled_time,
            max_concurrent_calls: c.max_concurrent_calls,
            calls_per_minute: c.calls_per_minute,
            join_new_members: c.join_new_members,
            redial_of: c.redial_of.map(|r| r.to_string()),
            created_at: c.created_at,
            updated_at: c.updated_at,
            counts: None,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CampaignResponse {
    pub success: bool,
    pub campaign: CampaignView,
    /// On create: who it starts with.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<Preview>,
}

#[derive(Serialize, ToSchema)]
pub struct DryRunResponse {
    pub success: bool,
    pub dry_run: bool,
    pub preview: Preview,
}

#[derive(Serialize, ToSchema)]
pub struct ListCampaignsResponse {
    pub success: bool,
    pub campaigns: Vec<CampaignView>,
    pub meta: PageMeta,
}

#[derive(Serialize, ToSchema)]
pub struct LogEntryView {
    pub at: DateTime<Utc>,
    /// `created`, `running` (started), `paused`, `resumed`, `members_skipped`, `member_skipped`,
    /// `members_joined`, `completed`, `cancelled`.
    pub kind: String,
    pub message: String,
}

impl From<LogEntry> for LogEntryView {
    fn from(e: LogEntry) -> Self {
        LogEntryView {
            at: e.at,
            kind: e.kind,
            message: e.message,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CampaignLogResponse {
    pub success: bool,
    pub log: Vec<LogEntryView>,
    pub meta: PageMeta,
}

fn campaign_error(e: CampaignError) -> ApiError {
    match e {
        CampaignError::Invalid(f) => f.into(),
        e @ CampaignError::NotFound(_) => ApiError::NotFound(e.to_string()),
        CampaignError::Refused(status, why) => {
            ApiError::conflict(format!("the campaign is {status}; {why}")).with("status", status)
        }
        CampaignError::Store(s) => s.into(),
    }
}

/// Create campaign (extension)
///
/// Calls every member of the list with the script: one call per member (members on the
/// do-not-call list are skipped, and checked again when their turn comes), created by the
/// campaign worker only while the campaign has fewer than `max_concurrent_calls` calls not over
/// (and within `calls_per_minute`), so it never crowds out other calls. Each call follows the
/// calling window and retry policy; `GET /api/v1/calls?campaign_id=` lists them. The campaign
/// pauses itself when at least half of its last 10 calls failed. `?dry_run=true` says who would
/// be called without creating anything.
#[utoipa::path(post, path = "/api/v1/campaigns", tag = "Campaigns", operation_id = "createCampaign",
    params(CreateCampaignParams),
    request_body = CreateCampaignRequest,
    responses(
        (status = 201, description = "Campaign created.", body = CampaignResponse),
        (status = 200, description = "Dry run: who it would call.", body = DryRunResponse),
        (status = 404, description = "No such list, script or campaign (`redial_of`) in your team.", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<CreateCampaignParams>,
    ApiJson(req): ApiJson<CreateCampaignRequest>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let from_numbers = match (req.from_number, req.from_numbers) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "send either `from_number` or `from_numbers`, not both",
            ))
        }
        (None, None) => return Err(FieldError::new("from_number", "is required (or `from_numbers`)").into()),
        (Some(one), None) => vec![one],
        (None, Some(many)) => many,
    };
    let new = NewCampaign {
        name: req.name,
        list_id: field_id("list_id", &req.list_id)?,
        script_id: field_id("script_id", &req.script_id)?,
        from_numbers,
        scheduled_time: req.scheduled_time,
        calling_window: req.calling_window,
        max_concurrent_calls: req.max_concurrent_calls,
        calls_per_minute: req.calls_per_minute,
        retry_policy: req.retry_policy,
        variables: req.variables.unwrap_or_default(),
        join_new_members: req.join_new_members.unwrap_or(false),
        redial_of: req.redial_of.as_deref().map(|r| field_id("redial_of", r)).transpose()?,
    };
    let scope = TeamScope::from(&team);
    if q.dry_run == Some(true) {
        let preview = campaigns::preview(&state.db, &scope, &new)
            .await
            .map_err(campaign_error)?;
        return Ok(Json(DryRunResponse {
            success: true,
            dry_run: true,
            preview,
        })
        .into_response());
    }
    let (c, preview) = campaigns::create(&state.db, &scope, new, now())
        .await
        .map_err(campaign_error)?;
    Ok((
        StatusCode::CREATED,
        Json(CampaignResponse {
            success: true,
            campaign: c.into(),
            preview: Some(preview),
        }),
    )
        .into_response())
}

/// List campaigns (extension)
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "Campaigns", operation_id = "listCampaigns",
    params(PageParams),
    responses((status = 200, description = "A page of campaigns, oldest first (order=desc: newest first).", body = ListCampaignsResponse)))]
pub async fn list(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<ListCampaignsResponse>> {
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    let rows = state.db.page_campaigns(team.team_id, page.seek()).await?;
    let (rows, meta) = page.finish(rows, |c| c.id);
    Ok(Json(ListCampaignsResponse {
        success: true,
        campaigns: rows.into_iter().map(Into::into).collect(),
        meta,
    }))
}

async fn find(state: &AppState, team: &TeamCtx, id: &str) -> ApiResult<Campaign> {
    let id = parse_id(id, "Campaign")?;
    state
        .db
        .get_campaign(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Campaign not found".into()))
}

/// Get campaign with live counts (extension)
#[utoipa::path(get, path = "/api/v1/campaigns/{campaign_id}", tag = "Campaigns", operation_id = "getCampaign",
    params(("campaign_id" = String, Path, description = "Campaign id")),
    responses((status = 200, description = "The campaign and its counts.", body = CampaignResponse)))]
pub async fn get(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<CampaignResponse>> {
    let c = find(&state, &team, &id).await?;
    let raw = state.db.campaign_counts(c.id).await?;
    let mut counts = CampaignCountsView::default();
    for (state, reason, n) in raw.members {
        counts.total += n;
        match (state.as_str(), reason.as_deref()) {
            ("pending", _) => counts.pending += n,
            ("skipped", Some("do_not_call")) => counts.suppressed += n,
            ("skipped", _) => counts.skipped += n,
            _ => {}
        }
    }
    for (progress, status, n) in raw.calls {
        match progress.as_str() {
            "scheduled" => counts.scheduled += n,
            "queued" => counts.queued += n,
            "ended" | "cancelled" => {
                *counts
                    .ended
                    .entry(status.unwrap_or_else(|| progress.clone()))
                    .or_default() += n;
            }
            _ => counts.in_progress += n,
        }
    }
    let mut view = CampaignView::from(c);
    view.counts = Some(counts);
    Ok(Json(CampaignResponse {
        success: true,
        campaign: view,
        preview: None,
    }))
}

macro_rules! action {
    ($name:ident, $service:path, $path:literal, $op:literal, $summary:literal, $what:literal) => {
        #[doc = $summary]
        #[utoipa::path(post, path = $path, tag = "Campaigns", operation_id = $op,
            params(("campaign_id" = String, Path, description = "Campaign id")),
            responses(
                (status = 200, description = $what, body = CampaignResponse),
                (status = 409, description = "Not possible in the campaign's status.", body = ErrorBody),
            ))]
        pub async fn $name(
            State(state): State<AppState>,
            team: TeamCtx,
            Path(id): Path<String>,
        ) -> ApiResult<Json<CampaignResponse>> {
            let c = find(&state, &team, &id).await?;
            let c = $service(&state.db, team.team_id, c.id, now())
                .await
                .map_err(campaign_error)?;
            tracing::info!(campaign_id = %c.id, status = %c.status, "campaign changed");
            Ok(Json(CampaignResponse {
                success: true,
                campaign: c.into(),
                preview: None,
            }))
        }
    };
}

action!(
    pause,
    campaigns::pause,
    "/api/v1/campaigns/{campaign_id}/pause",
    "pauseCampaign",
    "Pause campaign (extension)\n\nNo new calls; those placed already finish.",
    "Paused."
);
action!(
    resume,
    campaigns::resume,
    "/api/v1/campaigns/{campaign_id}/resume",
    "resumeCampaign",
    "Resume campaign (extension)",
    "Running again."
);
action!(
    cancel,
    campaigns::cancel,
    "/api/v1/campaigns/{campaign_id}/cancel",
    "cancelCampaign",
    "Cancel campaign (extension)\n\nMembers not called are skipped; its calls not started are cancelled.",
    "Cancelled."
);

/// Campaign log (extension)
///
/// What the campaign did and why: created (with whom), started, paused (by whom, or by its
/// circuit breaker and why), resumed, members skipped and why, completed, cancelled.
#[utoipa::path(get, path = "/api/v1/campaigns/{campaign_id}/log", tag = "Campaigns", operation_id = "getCampaignLog",
    params(("campaign_id" = String, Path, description = "Campaign id"), PageParams),
    responses((status = 200, description = "A page of the log, oldest first.", body = CampaignLogResponse)))]
pub async fn log(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<CampaignLogResponse>> {
    let c = find(&state, &team, &id).await?;
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    let rows = state.db.page_campaign_log(c.id, page.seek()).await?;
    let (rows, meta) = page.finish(rows, |e| e.id);
    Ok(Json(CampaignLogResponse {
        success: true,
        log: rows.into_iter().map(Into::into).collect(),
        meta,
    }))
}
