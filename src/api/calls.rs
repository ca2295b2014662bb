//! Calls: create (scheduled through the dispatcher), get, list, cancel, reschedule, result and
//! timeline.

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
    extract::{field_id, parse_id, ApiJson, ApiOptionalJson, ApiQuery},
    pagination::{Page, PageMeta, SortOrder, TimeBound},
    AppState,
};
use crate::{
    calls::{self, CallObject, Callee, Kind, NewCall, TeamScope},
    domain::{
        call::{id_bound, CallStatus, CallingWindow, Progress, RetryPolicy},
        contact::ContactInput,
        now, FieldError,
    },
    store::calls::{Call, CallFilter, NotChanged},
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePhoneCallRequest {
    /// One of your team's numbers (`voxd number add`), any format.
    #[schema(example = "+61291234567")]
    pub from_number: String,
    /// An outbound script of your team.
    pub script_id: String,
    /// Upserted by normalised phone number: an existing contact is updated with the fields given.
    pub contact: ContactInput,
    /// When to call; absent or in the past means now.
    pub scheduled_time: Option<DateTime<Utc>>,
    /// After this the call expires (status `failed`, end reason `expired`) instead of ringing late.
    pub latest_time: Option<DateTime<Utc>>,
    /// Default: one attempt.
    pub retry_policy: Option<RetryPolicy>,
    /// Hours the call may ring, in the callee's time zone (see `timezone` on the call). Default: the
    /// team's default window (`voxd team set-calling-window`), else any time.
    pub calling_window: Option<CallingWindow>,
    /// Free-form JSON kept with the call.
    pub metadata: Option<Map<String, Value>>,
    /// `{{custom.*}}` values for the script.
    pub variables: Option<Map<String, Value>>,
    /// An object to keep with the call: upserted like `upsert-object` does (checked against its
    /// type's schema by the type's `validation_mode`), linked to the contact and to the call, and
    /// given to the script as `{{objects.<type_name>.*}}`. Nothing is written if it is refused.
    pub object: Option<CallObjectInput>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallObjectInput {
    /// The object's type by name (or give `object_type_id`).
    pub type_name: Option<String>,
    /// The object's type by id (or give `type_name`).
    pub object_type_id: Option<String>,
    /// The object's JSON (at most 256 KiB).
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    /// JSONPath into `data` of the value identifying the object (as in `upsert-object`); an object
    /// with the same value is updated instead of duplicated.
    pub upsert_key: Option<String>,
}

/// The object a call carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallObjectView {
    pub id: String,
    pub object_type_id: String,
    pub type_name: String,
    #[schema(value_type = Object)]
    pub data: Value,
    /// Schema violations of `data` when the type's mode is `warn` (create-phone-call only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub violations: Option<Vec<crate::domain::object_schema::Violation>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallView {
    pub id: String,
    /// outbound, inbound or web.
    #[serde(rename = "type")]
    pub call_type: String,
    /// scheduled, queued, dialing, ringing, in_progress, processing, ended, cancelled.
    pub progress: String,
    /// The outcome of the latest attempt: completed, failed, voicemail, dropout, hang-up, rang-out,
    /// User unavailable, User rejected (null before the first attempt ends).
    pub status: Option<String>,
    pub end_reason: Option<String>,
    pub script_id: String,
    /// The version of the script this call runs: the script's current one when the call was
    /// created (a later replace leaves it unless asked to move scheduled calls).
    pub script_version: i32,
    pub contact_id: Option<String>,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    /// The callee's time zone, used for the calling window: the contact's, else the zone of the
    /// number's country when it has one zone, else the team's.
    pub timezone: String,
    pub scheduled_time: DateTime<Utc>,
    pub latest_time: Option<DateTime<Utc>>,
    /// Attempts made so far.
    pub attempts: i32,
    pub retry_policy: RetryPolicy,
    /// The call's own window; null when it follows the team's default (or rings any time).
    pub calling_window: Option<CallingWindow>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    #[schema(value_type = Object)]
    pub variables: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The object the call was created with (see `object` on get-call).
    pub object_id: Option<String>,
    /// For a call not dialled yet (scheduled or queued): when the dispatcher will next try it.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// Why it waits until then: `scheduled_time`, `calling_window` (held until its window opens),
    /// `free_line` (the team's concurrent-call limit) or `retry_backoff` (after a failed attempt).
    pub waiting_for: Option<String>,
    /// A live call's recording (both sides, FLAC): a link that works for an hour (get-call and
    /// get-call-result mint a fresh one); null when nothing was recorded.
    pub recording_url: Option<String>,
}

impl From<Call> for CallView {
    fn from(c: Call) -> Self {
        let waiting = c.progress.not_started();
        // `due_ms` keeps milliseconds; when it is the scheduled time, say that time exactly.
        let due = match c.due_ms == c.scheduled_time.timestamp_millis() {
            true => Some(c.scheduled_time),
            false => DateTime::from_timestamp_millis(c.due_ms),
        };
        let next_attempt_at = due.filter(|_| waiting);
        // What moved the due time: a retry's back-off, a window (held past its scheduled time), or
        // nothing yet; a queued call waits for a line.
        let waiting_for = waiting.then(|| {
            match (
                c.progress,
                c.attempts > 0,
                c.due_ms > c.scheduled_time.timestamp_millis(),
            ) {
                (Progress::Queued, _, _) => "free_line",
                (_, true, _) => "retry_backoff",
                (_, false, true) => "calling_window",
                _ => "scheduled_time",
            }
            .to_owned()
        });
        CallView {
            next_attempt_at,
            waiting_for,
            recording_url: None,
            id: c.id.to_string(),
            call_type: c.call_type,
            progress: c.progress.to_string(),
            status: c.status.map(|s| s.to_string()),
            end_reason: c.end_reason,
            script_id: c.script_id.to_string(),
            script_version: c.script_version,
            contact_id: c.contact_id.map(|i| i.to_string()),
            from_number: c.from_number,
            to_number: c.to_number,
            timezone: c.timezone,
            scheduled_time: c.scheduled_time,
            latest_time: c.latest_time,
            attempts: c.attempts,
            retry_policy: c.retry_policy.0,
            calling_window: c.calling_window.map(|w| w.0),
            metadata: c.metadata.0,
            variables: c.variables.0,
            created_at: c.created_at,
            updated_at: c.updated_at,
            started_at: c.started_at,
            ended_at: c.ended_at,
            object_id: c.object_id.map(|i| i.to_string()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CallResponse {
    pub success: bool,
    pub call_id: String,
    pub call: CallView,
    /// The call's object, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub object: Option<CallObjectView>,
}

/// The call's object as stored now (`None` when it has none, or it was deleted).
async fn call_object(state: &AppState, call: &Call) -> ApiResult<Option<CallObjectView>> {
    let Some(id) = call.object_id else { return Ok(None) };
    Ok(state.db.get_object(call.team_id, id).await?.map(|o| CallObjectView {
        id: o.id.to_string(),
        object_type_id: o.object_type_id.to_string(),
        type_name: o.type_name,
        data: o.data.0,
        violations: None,
    }))
}

/// Create phone call
///
/// Schedules an outbound call. The contact is upserted by normalised phone number; a
/// `scheduled_time` in the past (or none) means now. The dispatcher places the call when it is due,
/// within the calling window and the team's concurrent-call limit.
#[utoipa::path(post, path = "/api/v1/create-phone-call", tag = "Calls", operation_id = "createPhoneCall",
    request_body = CreatePhoneCallRequest,
    responses(
        (status = 201, description = "Call scheduled.", body = CallResponse),
        (status = 404, description = "Unknown script.", body = ErrorBody),
    ))]
pub async fn create_phone_call(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiJson(req): ApiJson<CreatePhoneCallRequest>,
) -> ApiResult<(StatusCode, Json<CallResponse>)> {
    let script_id = parse_id(&req.script_id, "Script")?;
    let new = NewCall {
        object: req.object.map(|o| CallObject::Upsert {
            type_name: o.type_name,
            object_type_id: o.object_type_id,
            data: o.data,
            upsert_key: o.upsert_key,
        }),
        scheduled_time: req.scheduled_time,
        latest_time: req.latest_time,
        calling_window: req.calling_window,
        retry_policy: req.retry_policy,
        metadata: req.metadata.unwrap_or_default(),
        variables: req.variables.unwrap_or_default(),
        ..NewCall::new(
            Kind::Outbound {
                from_number: req.from_number,
            },
            script_id,
            Callee::Upsert(Box::new(req.contact)),
        )
    };
    let created = calls::create(&state.db, &TeamScope::from(&team), new, now()).await?;
    let object = match call_object(&state, &created.call).await? {
        Some(view) => Some(CallObjectView {
            violations: created.violations,
            ..view
        }),
        None => None,
    };
    Ok((
        StatusCode::CREATED,
        Json(CallResponse {
            success: true,
            call_id: created.call.id.to_string(),
            call: created.call.into(),
            object,
        }),
    ))
}

impl From<&TeamCtx> for TeamScope {
    fn from(t: &TeamCtx) -> Self {
        TeamScope {
            id: t.team_id,
            region: t.region,
            timezone: t.timezone.clone(),
        }
    }
}

async fn find(state: &AppState, team: &TeamCtx, raw: &str) -> ApiResult<Call> {
    let id = parse_id(raw, "Call")?;
    state
        .db
        .get_call(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Call not found".into()))
}

/// Get call
#[utoipa::path(get, path = "/api/v1/get-call/{call_id}", tag = "Calls", operation_id = "getCall",
    params(("call_id" = String, Path, description = "Unique call ID.")),
    responses(
        (status = 200, description = "Call found.", body = CallResponse),
        (status = 404, description = "No such call in your team.", body = ErrorBody),
    ))]
pub async fn get_call(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<CallResponse>> {
    let call = find(&state, &team, &id).await?;
    let object = call_object(&state, &call).await?;
    let recording_url = super::voice::recording_url(&state, &call);
    let mut view: CallView = call.into();
    view.recording_url = recording_url;
    Ok(Json(CallResponse {
        success: true,
        call_id: view.id.clone(),
        call: view,
        object,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCallsParams {
    /// A call status (exact string, e.g. `rang-out`, `User unavailable`).
    pub status: Option<String>,
    /// outbound, inbound or web.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub call_type: Option<String>,
    pub progress: Option<String>,
    pub contact_id: Option<String>,
    pub script_id: Option<String>,
    /// Only the calls a campaign placed.
    pub campaign_id: Option<String>,
    /// Created at or after this time: RFC 3339, or a date (its start, UTC).
    #[param(value_type = Option<String>, example = "2026-12-01")]
    pub created_after: Option<TimeBound>,
    /// Created before this time: RFC 3339, or a date (its start, UTC).
    #[param(value_type = Option<String>, example = "2026-12-01T09:00:00Z")]
    pub created_before: Option<TimeBound>,
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
pub struct ListCallsResponse {
    pub success: bool,
    pub calls: Vec<CallView>,
    pub meta: PageMeta,
}

fn optional_id(field: &str, raw: Option<&str>) -> ApiResult<Option<uuid::Uuid>> {
    raw.filter(|s| !s.is_empty()).map(|s| field_id(field, s)).transpose()
}

/// List calls
///
/// Calls oldest first (`order=desc`: newest first) with every documented filter; `meta.next_cursor` pages through them.
/// Calls created while paging appear after the cursor, never inside pages already read.
#[utoipa::path(get, path = "/api/v1/calls", tag = "Calls", operation_id = "listCalls",
    params(ListCallsParams),
    responses((status = 200, description = "A page of calls.", body = ListCallsResponse)))]
pub async fn list_calls(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<ListCallsParams>,
) -> ApiResult<Json<ListCallsResponse>> {
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    let filter = call_filter(q, page.seek())?;
    let rows = state.db.list_calls(team.team_id, &filter).await?;
    let (rows, meta) = page.finish(rows, |c| c.id);
    Ok(Json(ListCallsResponse {
        success: true,
        calls: rows.into_iter().map(Into::into).collect(),
        meta,
    }))
}

/// The listing's filters, checked (the export reads the same ones).
pub fn call_filter(q: ListCallsParams, page: crate::store::Seek) -> ApiResult<CallFilter> {
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        CallStatus::parse(s).ok_or_else(|| FieldError::new("status", format!("`{s}` is not a call status")))?;
    }
    if let Some(p) = q.progress.as_deref().filter(|s| !s.is_empty()) {
        Progress::parse(p).ok_or_else(|| FieldError::new("progress", format!("`{p}` is not a call progress")))?;
    }
    if let Some(t) = q.call_type.as_deref().filter(|s| !s.is_empty()) {
        if !["outbound", "inbound", "web"].contains(&t) {
            return Err(FieldError::new("type", "must be outbound, inbound or web").into());
        }
    }
    let filter = CallFilter {
        status: q.status.filter(|s| !s.is_empty()),
        call_type: q.call_type.filter(|s| !s.is_empty()),
        progress: q.progress.filter(|s| !s.is_empty()),
        contact_id: optional_id("contact_id", q.contact_id.as_deref())?,
        script_id: optional_id("script_id", q.script_id.as_deref())?,
        created_after: q.created_after.map(|t| id_bound(t.0)),
        created_before: q.created_before.map(|t| id_bound(t.0)),
        campaign_id: optional_id("campaign_id", q.campaign_id.as_deref())?,
        page,
    };
    Ok(filter)
}

#[derive(Serialize, ToSchema)]
pub struct CallActionResponse {
    pub success: bool,
    pub call_id: String,
    /// The call's progress after the action (`cancelled`, `scheduled`).
    pub status: String,
}

fn refused(n: NotChanged, action: &str) -> ApiError {
    match n {
        NotChanged::NotFound => ApiError::NotFound("Call not found".into()),
        NotChanged::AlreadyStarted(progress) => ApiError::bad_request(format!(
            "the call can no longer be {action}: its progress is `{progress}` (only scheduled or queued calls can be)"
        ))
        .with("progress", progress.as_str()),
    }
}

/// Cancel call
///
/// Only while the call has not started (progress `scheduled` or `queued`); otherwise 400 with the
/// call's progress.
#[utoipa::path(post, path = "/api/v1/cancel-call/{call_id}", tag = "Calls", operation_id = "cancelCall",
    params(("call_id" = String, Path, description = "Unique call ID.")),
    responses(
        (status = 200, description = "Call cancelled.", body = CallActionResponse),
        (status = 400, description = "The call has started.", body = ErrorBody),
        (status = 404, description = "No such call in your team.", body = ErrorBody),
    ))]
pub async fn cancel_call(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<CallActionResponse>> {
    let id = parse_id(&id, "Call")?;
    let call = state
        .db
        .cancel_call(team.team_id, id, now())
        .await?
        .map_err(|n| refused(n, "cancelled"))?;
    Ok(Json(CallActionResponse {
        success: true,
        call_id: call.id.to_string(),
        status: call.progress.to_string(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleRequest {
    /// The new time; in the past means now.
    pub scheduled_time: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct RescheduleResponse {
    pub success: bool,
    pub call_id: String,
    pub status: String,
    pub scheduled_time: DateTime<Utc>,
}

/// Reschedule call
///
/// Only while the call has not started; otherwise 400 with the call's progress.
#[utoipa::path(patch, path = "/api/v1/reschedule-call/{call_id}", tag = "Calls", operation_id = "rescheduleCall",
    params(("call_id" = String, Path, description = "Unique call ID.")),
    request_body = RescheduleRequest,
    responses(
        (status = 200, description = "Call rescheduled.", body = RescheduleResponse),
        (status = 400, description = "The call has started, or the body is invalid.", body = ErrorBody),
        (status = 404, description = "No such call in your team.", body = ErrorBody),
    ))]
pub async fn reschedule_call(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RescheduleRequest>,
) -> ApiResult<Json<RescheduleResponse>> {
    let id = parse_id(&id, "Call")?;
    let at = now();
    let when = req.scheduled_time.max(at);
    let call = state
        .db
        .reschedule_call(team.team_id, id, when, at)
        .await?
        .map_err(|n| refused(n, "rescheduled"))?;
    if call.latest_ms.is_some_and(|l| l <= when.timestamp_millis()) {
        tracing::info!(call_id = %call.id, "rescheduled past its latest_time: it will expire");
    }
    Ok(Json(RescheduleResponse {
        success: true,
        call_id: call.id.to_string(),
        status: call.progress.to_string(),
        scheduled_time: call.scheduled_time,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TurnView {
    /// assistant or user.
    pub role: String,
    pub text: String,
    /// Milliseconds from the start of the call.
    pub start_ms: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallResult {
    pub call_id: String,
    pub progress: String,
    pub status: Option<String>,
    pub end_reason: Option<String>,
    /// False until the latest attempt has ended; the other fields are then null or empty.
    pub available: bool,
    pub summary: Option<String>,
    pub transcript: Vec<TurnView>,
    /// Null for simulated calls (nothing was recorded).
    pub recording_url: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub structured_data: Option<Value>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub objectives: Option<Value>,
    /// 1 to 5.
    pub rating: Option<u8>,
    /// successful, partially_successful, unsuccessful.
    pub success_evaluation: Option<String>,
    pub duration_seconds: Option<i64>,
    /// True when the `sim` carrier placed the call: nothing rang anywhere.
    pub simulated: Option<bool>,
    /// The brain that analysed the call.
    pub analysed_by: Option<String>,
    /// The script and the version of it that ran.
    pub script_id: String,
    pub script_version: i32,
}

#[derive(Serialize, ToSchema)]
pub struct CallResultResponse {
    pub success: bool,
    pub call: CallResult,
}

/// Get call result
///
/// Summary, transcript, recording URL, structured data, objectives, rating and success evaluation of
/// the latest attempt. Before an attempt has ended the answer is 200 with `available: false`.
#[utoipa::path(get, path = "/api/v1/get-call-result/{call_id}", tag = "Calls", operation_id = "getCallResult",
    params(("call_id" = String, Path, description = "Unique call ID.")),
    responses(
        (status = 200, description = "Call result returned.", body = CallResultResponse),
        (status = 404, description = "No such call in your team.", body = ErrorBody),
    ))]
pub async fn get_call_result(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<CallResultResponse>> {
    let call = find(&state, &team, &id).await?;
    let r = call.result.as_ref().map(|r| r.0.clone()).unwrap_or(Value::Null);
    let a = &r["analysis"];
    let transcript = r["transcript"]
        .as_array()
        .map(|turns| {
            turns
                .iter()
                .map(|t| TurnView {
                    role: t["role"].as_str().unwrap_or_default().to_owned(),
                    text: t["text"].as_str().unwrap_or_default().to_owned(),
                    start_ms: t["start_ms"].as_i64().unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default();
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let recording_url = super::voice::recording_url(&state, &call);
    let result = CallResult {
        call_id: call.id.to_string(),
        available: call.result.is_some(),
        progress: call.progress.to_string(),
        status: call.status.map(|s| s.to_string()),
        end_reason: call.end_reason,
        summary: text(&a["summary"]),
        transcript,
        recording_url,
        structured_data: a.get("structured_data").cloned(),
        objectives: a.get("objectives").cloned(),
        rating: a["rating"].as_u64().map(|n| n as u8),
        success_evaluation: text(&a["success_evaluation"]),
        duration_seconds: r["duration_seconds"].as_i64(),
        simulated: r["simulated"].as_bool(),
        analysed_by: text(&a["brain"]),
        script_id: call.script_id.to_string(),
        script_version: call.script_version,
    };
    Ok(Json(CallResultResponse {
        success: true,
        call: result,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CallEventView {
    pub at: DateTime<Utc>,
    /// The attempt the event belongs to (0 before the first).
    pub attempt: i32,
    pub progress: String,
    pub status: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub detail: Option<Value>,
}

#[derive(Serialize, ToSchema)]
pub struct CallEventsResponse {
    pub success: bool,
    pub call_id: String,
    pub events: Vec<CallEventView>,
}

/// Call timeline (extension)
///
/// Every transition of the call, in order, with its time.
#[utoipa::path(get, path = "/api/v1/calls/{call_id}/events", tag = "Calls", operation_id = "getCallEvents",
    params(("call_id" = String, Path, description = "Unique call ID.")),
    responses(
        (status = 200, description = "The call's timeline.", body = CallEventsResponse),
        (status = 404, description = "No such call in your team.", body = ErrorBody),
    ))]
pub async fn call_events(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<CallEventsResponse>> {
    let call = find(&state, &team, &id).await?;
    let events = state
        .db
        .call_events(call.id)
        .await?
        .into_iter()
        .map(|e| CallEventView {
            at: e.at,
            attempt: e.attempt,
            progress: e.progress.to_string(),
            status: e.status.map(|s| s.to_string()),
            detail: e.detail.map(|d| d.0),
        })
        .collect();
    Ok(Json(CallEventsResponse {
        success: true,
        call_id: call.id.to_string(),
        events,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebCallRequest {
    pub script_id: String,
    pub contact_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IceServer {
    pub urls: String,
    /// For TURN servers: the same ephemeral credentials as SIP.
    pub username: Option<String>,
    pub credential: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebCallDetails {
    /// voxd's SIP-over-WebSocket endpoint (`/sip` on the API port, RFC 7118) unless configured.
    pub websocket_url: String,
    pub sip_domain: String,
    /// The URI to INVITE for this call.
    pub call_uri: String,
    pub ice_servers: Vec<IceServer>,
    /// Ephemeral SIP credentials: `<unix expiry>:<call id>` and base64(HMAC-SHA1(secret, username)).
    pub username: String,
    pub password: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct CreateWebCallResponse {
    pub success: bool,
    pub call_id: String,
    pub call: CallView,
    pub web_call: WebCallDetails,
}

/// Create web call
///
/// Creates an in-browser call with the script and contact, and returns what a SIP-over-WebSocket
/// softphone (JsSIP, SIP.js) needs to join it: voxd's own `/sip` endpoint, the URI to INVITE, and
/// credentials minted for this call (valid for a few minutes, refused for any other call and once
/// the call has ended). The call waits `ringing` until the browser joins; the assistant then
/// speaks and listens over WebRTC (PCMU), and the call is recorded unless the script says not.
/// `/softphone` is a page that does all this.
#[utoipa::path(post, path = "/api/v1/create-web-call", tag = "Calls", operation_id = "createWebCall",
    request_body = CreateWebCallRequest,
    responses(
        (status = 201, description = "Web call created.", body = CreateWebCallResponse),
        (status = 404, description = "Unknown script or contact.", body = ErrorBody),
        (status = 503, description = "This server cannot hold a live call: voice is disabled or a speech engine is missing (the message says which).", body = ErrorBody),
    ))]
pub async fn create_web_call(
    State(state): State<AppState>,
    team: TeamCtx,
    headers: axum::http::HeaderMap,
    ApiJson(req): ApiJson<CreateWebCallRequest>,
) -> ApiResult<(StatusCode, Json<CreateWebCallResponse>)> {
    let web = &state.settings.web_calls;
    let script_id = parse_id(&req.script_id, "Script")?;
    let contact_id = parse_id(&req.contact_id, "Contact")?;
    if let Some(gateway) = &state.voice {
        // Fail now, not when the browser joins: the engines this script's calls would use.
        let script = state.db.get_script(team.team_id, script_id).await?;
        let settings = script.map(|s| s.definition.0.settings).unwrap_or_default();
        let engines = gateway.engines().clone();
        let picked = tokio::task::spawn_blocking(move || {
            engines
                .pick(settings.stt.map(|e| e.name()), settings.tts.map(|e| e.name()))
                .map(|_| ())
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))?;
        if let Err(why) = picked {
            return Err(ApiError::Unavailable(format!(
                "web calls cannot run on this server: {why}"
            )));
        }
    }
    if web.secret.is_empty() {
        return Err(ApiError::Unavailable(
            "web calls are not configured: live voice is off here and no web_call_secret is set for an external gateway"
                .into(),
        ));
    }
    // The browser reaches voxd's own gateway where it reached the API, unless configured.
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            let public = url::Url::parse(&state.voice.as_ref()?.settings().public_url).ok()?;
            Some(format!("{}:{}", public.host_str()?, public.port_or_known_default()?))
        })
        .unwrap_or_else(|| "localhost".into());
    let websocket_url = web.websocket_url.clone().unwrap_or_else(|| format!("ws://{host}/sip"));
    let sip_domain = web.sip_domain.clone().unwrap_or_else(|| {
        url::Url::parse(&format!("http://{host}"))
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "localhost".into())
    });
    let at = now();
    // Waiting for the browser to join through the gateway.
    let new = NewCall::new(Kind::Web, script_id, Callee::Existing(contact_id));
    let call = calls::create(&state.db, &TeamScope::from(&team), new, at).await?.call;
    let expires_at = at + chrono::Duration::from_std(web.credential_ttl).unwrap_or(chrono::Duration::minutes(5));
    let creds = crate::domain::web_call::credentials(&web.secret, &call.id.to_string(), expires_at);
    let ice_servers = web
        .ice_servers
        .iter()
        .map(|url| {
            let turn = url.starts_with("turn:") || url.starts_with("turns:");
            IceServer {
                urls: url.clone(),
                username: turn.then(|| creds.username.clone()),
                credential: turn.then(|| creds.password.clone()),
            }
        })
        .collect();
    let details = WebCallDetails {
        websocket_url,
        call_uri: format!("sip:{}@{sip_domain}", call.id),
        sip_domain,
        ice_servers,
        username: creds.username,
        password: creds.password,
        expires_at,
    };
    Ok((
        StatusCode::CREATED,
        Json(CreateWebCallResponse {
            success: true,
            call_id: call.id.to_string(),
            call: call.into(),
            web_call: details,
        }),
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndWebCallRequest {
    /// A call status (default `completed`).
    pub status: Option<String>,
    /// Default `api_ended`.
    #[schema(max_length = 64)]
    pub end_reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EndWebCallResponse {
    pub success: bool,
    pub call_id: String,
    pub status: String,
    pub end_reason: String,
    pub progress: String,
}

/// End web call
///
/// Marks an active web call as ended, for when the browser or SIP path cannot report the hang-up.
/// The body is optional.
#[utoipa::path(post, path = "/api/v1/end-web-call/{call_id}", tag = "Calls", operation_id = "endWebCall",
    params(("call_id" = String, Path, description = "Unique call ID.")),
    request_body(content = Option<EndWebCallRequest>, description = "Optional: status and end_reason."),
    responses(
        (status = 200, description = "Web call ended.", body = EndWebCallResponse),
        (status = 400, description = "Not an active web call, or a bad status.", body = ErrorBody),
        (status = 404, description = "No such call in your team.", body = ErrorBody),
    ))]
pub async fn end_web_call(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    ApiOptionalJson(req): ApiOptionalJson<EndWebCallRequest>,
) -> ApiResult<Json<EndWebCallResponse>> {
    let id = parse_id(&id, "Call")?;
    let req = req.unwrap_or_default();
    let status = req.status.unwrap_or_else(|| "completed".into());
    CallStatus::parse(&status).ok_or_else(|| FieldError::new("status", format!("`{status}` is not a call status")))?;
    let end_reason =
        crate::domain::optional_text("end_reason", req.end_reason, 64)?.unwrap_or_else(|| "api_ended".into());
    // A call live here ends through its pipeline: the goodbye is cut, the analysis runs on what
    // was said, and the outcome is the one asked for.
    if let (Some(gateway), Some(parsed)) = (&state.voice, CallStatus::parse(&status)) {
        if gateway.end(team.team_id, id, parsed, &end_reason).await {
            let call = find(&state, &team, &id.to_string()).await?;
            return Ok(Json(EndWebCallResponse {
                success: true,
                call_id: call.id.to_string(),
                status,
                end_reason,
                progress: call.progress.to_string(),
            }));
        }
    }
    match state
        .db
        .end_web_call(team.team_id, id, &status, &end_reason, now())
        .await?
    {
        Ok(call) => Ok(Json(EndWebCallResponse {
            success: true,
            call_id: call.id.to_string(),
            status,
            end_reason,
            progress: call.progress.to_string(),
        })),
        Err(None) => Err(ApiError::NotFound("Call not found".into())),
        Err(Some(call)) if call.call_type != "web" => Err(ApiError::bad_request("this call is not a web call")),
        Err(Some(call)) => Err(ApiError::bad_request(format!(
            "this web call is no longer active (progress `{}`)",
            call.progress
        ))
        .with("progress", call.progress.as_str())),
    }
}
