//! Outbound event webhooks (extension): a team's endpoints, their delivery log, redelivery and
//! secret rotation.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{
    auth::TeamCtx,
    error::{ApiError, ApiResult, ErrorBody},
    extract::{parse_id, ApiJson, ApiOptionalJson, ApiQuery},
    pagination::{Page, PageMeta, PageParams, SortOrder},
    AppState,
};
use crate::{
    automations::{delivery::message_id, events::EVENT_TYPES},
    domain::{new_id, now, signature::new_standard_secret as new_secret, FieldError},
    store::webhooks::{Attempt, Delivery, DeliveryFilter, Endpoint},
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndpointRequest {
    /// Where events are POSTed (http or https).
    #[schema(example = "https://crm.example.com/voxd-events")]
    pub url: String,
    /// Any of call.scheduled, call.started, call.ended, call.analyzed, execution.failed.
    pub events: Vec<String>,
    pub description: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub enabled: bool,
    /// Until when deliveries also carry a signature made with the previous secret.
    pub previous_secret_valid_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Endpoint> for EndpointView {
    fn from(e: Endpoint) -> Self {
        EndpointView {
            id: e.id.to_string(),
            url: e.url,
            events: e.events.0,
            description: e.description,
            enabled: e.enabled,
            previous_secret_valid_until: e.previous_secret_until,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct EndpointResponse {
    pub success: bool,
    pub endpoint_id: String,
    pub endpoint: EndpointView,
    /// The signing secret (`whsec_…`), shown when made (create, rotation) and never again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn checked(
    req: EndpointRequest,
    allow_private: bool,
) -> Result<(String, Vec<String>, Option<String>, bool), FieldError> {
    let url = req.url.trim().to_owned();
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
        _ => return Err(FieldError::new("url", "must be an http(s) URL")),
    }
    crate::outbound::check_saved_url(&url, allow_private).map_err(|e| FieldError::new("url", e))?;
    if url.len() > 2000 {
        return Err(FieldError::new("url", "must be at most 2000 characters"));
    }
    if req.events.is_empty() {
        return Err(FieldError::new("events", "must name at least one event"));
    }
    let mut events = Vec::new();
    for (i, e) in req.events.into_iter().enumerate() {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(FieldError::new(
                format!("events[{i}]"),
                format!("`{e}` is not an event ({})", EVENT_TYPES.join(", ")),
            ));
        }
        if !events.contains(&e) {
            events.push(e);
        }
    }
    let description = crate::domain::optional_text("description", req.description, 500)?;
    Ok((url, events, description, req.enabled.unwrap_or(true)))
}

fn respond(e: Endpoint, secret: Option<String>) -> EndpointResponse {
    EndpointResponse {
        success: true,
        endpoint_id: e.id.to_string(),
        endpoint: e.into(),
        secret,
    }
}

/// Create webhook endpoint (extension)
///
/// Subscribes a URL to events. Deliveries are JSON `{type, timestamp, data}` signed the Standard
/// Webhooks way (`webhook-id`, `webhook-timestamp`, `webhook-signature`) with the secret returned
/// here once. Private and loopback addresses are refused at delivery unless the server allows them.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints", tag = "Webhooks", operation_id = "createWebhookEndpoint",
    request_body = EndpointRequest,
    responses((status = 201, description = "Endpoint created; the secret is shown this once.", body = EndpointResponse)))]
pub async fn create(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiJson(req): ApiJson<EndpointRequest>,
) -> ApiResult<(StatusCode, Json<EndpointResponse>)> {
    let (url, events, description, enabled) = checked(req, state.settings.allow_private_network)?;
    let at = now();
    let secret = new_secret();
    let e = Endpoint {
        id: new_id(),
        team_id: team.team_id,
        url,
        description,
        events: sqlx::types::Json(events),
        secret: secret.clone(),
        previous_secret: None,
        previous_secret_until: None,
        enabled,
        created_at: at,
        updated_at: at,
    };
    state.db.insert_endpoint(&e).await?;
    tracing::info!(endpoint_id = %e.id, "webhook endpoint created");
    Ok((StatusCode::CREATED, Json(respond(e, Some(secret)))))
}

async fn find(state: &AppState, team: &TeamCtx, raw: &str) -> ApiResult<Endpoint> {
    let id = parse_id(raw, "Webhook endpoint")?;
    state
        .db
        .get_endpoint(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Webhook endpoint not found".into()))
}

/// Get webhook endpoint (extension)
#[utoipa::path(get, path = "/api/v1/webhook-endpoints/{endpoint_id}", tag = "Webhooks", operation_id = "getWebhookEndpoint",
    params(("endpoint_id" = String, Path, description = "Endpoint id")),
    responses((status = 200, description = "Endpoint found.", body = EndpointResponse)))]
pub async fn get(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointResponse>> {
    Ok(Json(respond(find(&state, &team, &id).await?, None)))
}

/// Replace webhook endpoint (extension)
///
/// New URL, events, description and enabled flag; the secret stays.
#[utoipa::path(put, path = "/api/v1/webhook-endpoints/{endpoint_id}", tag = "Webhooks", operation_id = "replaceWebhookEndpoint",
    params(("endpoint_id" = String, Path, description = "Endpoint id")),
    request_body = EndpointRequest,
    responses((status = 200, description = "Endpoint replaced.", body = EndpointResponse)))]
pub async fn replace(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<EndpointRequest>,
) -> ApiResult<Json<EndpointResponse>> {
    let old = find(&state, &team, &id).await?;
    let (url, events, description, enabled) = checked(req, state.settings.allow_private_network)?;
    let e = Endpoint {
        url,
        events: sqlx::types::Json(events),
        description,
        enabled,
        updated_at: now(),
        ..old
    };
    state.db.update_endpoint(&e).await?;
    Ok(Json(respond(e, None)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateRequest {
    /// How long deliveries keep a second signature made with the old secret, 0 to 604800 seconds
    /// (default 86400, a day).
    pub overlap_seconds: Option<i64>,
}

/// Rotate webhook secret (extension)
///
/// Makes a new secret, returned once. During the overlap each delivery carries two signatures
/// (new and old), so receivers can switch without missing an event.
#[utoipa::path(post, path = "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret", tag = "Webhooks", operation_id = "rotateWebhookSecret",
    params(("endpoint_id" = String, Path, description = "Endpoint id")),
    request_body(content = Option<RotateRequest>, description = "Optional."),
    responses((status = 200, description = "New secret, shown this once.", body = EndpointResponse)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    ApiOptionalJson(req): ApiOptionalJson<RotateRequest>,
) -> ApiResult<Json<EndpointResponse>> {
    let overlap = req.and_then(|r| r.overlap_seconds).unwrap_or(86_400);
    if !(0..=604_800).contains(&overlap) {
        return Err(FieldError::new("overlap_seconds", "must be between 0 and 604800").into());
    }
    let old = find(&state, &team, &id).await?;
    let at = now();
    let secret = new_secret();
    let e = Endpoint {
        previous_secret: Some(old.secret.clone()),
        previous_secret_until: Some(at + Duration::seconds(overlap)),
        secret: secret.clone(),
        updated_at: at,
        ..old
    };
    state.db.update_endpoint(&e).await?;
    tracing::info!(endpoint_id = %e.id, overlap, "webhook secret rotated");
    Ok(Json(respond(e, Some(secret))))
}

#[derive(Serialize, ToSchema)]
pub struct DeleteEndpointResponse {
    pub success: bool,
    pub deleted: bool,
}

/// Delete webhook endpoint (extension)
///
/// Deletes it with its pending deliveries and its log.
#[utoipa::path(delete, path = "/api/v1/webhook-endpoints/{endpoint_id}", tag = "Webhooks", operation_id = "deleteWebhookEndpoint",
    params(("endpoint_id" = String, Path, description = "Endpoint id")),
    responses((status = 200, description = "Deleted.", body = DeleteEndpointResponse)))]
pub async fn delete(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<DeleteEndpointResponse>> {
    let id = parse_id(&id, "Webhook endpoint")?;
    if !state.db.delete_endpoint(team.team_id, id).await? {
        return Err(ApiError::NotFound("Webhook endpoint not found".into()));
    }
    Ok(Json(DeleteEndpointResponse {
        success: true,
        deleted: true,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ListEndpointsResponse {
    pub success: bool,
    pub endpoints: Vec<EndpointView>,
    pub meta: PageMeta,
}

/// List webhook endpoints (extension)
#[utoipa::path(get, path = "/api/v1/webhook-endpoints", tag = "Webhooks", operation_id = "listWebhookEndpoints",
    params(PageParams),
    responses((status = 200, description = "A page of endpoints, oldest first (order=desc: newest first).", body = ListEndpointsResponse)))]
pub async fn list(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<ListEndpointsResponse>> {
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    let rows = state.db.list_endpoints(team.team_id, page.seek()).await?;
    let (rows, meta) = page.finish(rows, |e| e.id);
    Ok(Json(ListEndpointsResponse {
        success: true,
        endpoints: rows.into_iter().map(Into::into).collect(),
        meta,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptView {
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status; null when no answer came (network error).
    pub status_code: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
}

impl From<Attempt> for AttemptView {
    fn from(a: Attempt) -> Self {
        AttemptView {
            at: a.at,
            status_code: a.status_code,
            error: a.error,
            duration_ms: a.duration_ms,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryView {
    pub id: String,
    /// The `webhook-id` header: the same on every try.
    pub webhook_id: String,
    pub endpoint_id: String,
    pub event_type: String,
    /// pending, delivered, failed (the receiver refused it) or dead_letter (out of tries).
    pub status: String,
    pub attempts: i32,
    /// When the next try is due (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    #[schema(value_type = Object)]
    pub payload: Value,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    /// Each try (only when reading one delivery).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tries: Option<Vec<AttemptView>>,
}

impl DeliveryView {
    fn new(d: Delivery, tries: Option<Vec<Attempt>>) -> Self {
        DeliveryView {
            webhook_id: message_id(d.id),
            id: d.id.to_string(),
            endpoint_id: d.endpoint_id.to_string(),
            event_type: d.event_type,
            next_attempt_at: (d.status == "pending")
                .then(|| DateTime::from_timestamp_millis(d.next_attempt_ms))
                .flatten(),
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status,
            last_error: d.last_error,
            payload: d.payload.0,
            created_at: d.created_at,
            delivered_at: d.delivered_at,
            tries: tries.map(|t| t.into_iter().map(Into::into).collect()),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryResponse {
    pub success: bool,
    pub delivery: DeliveryView,
}

#[derive(Serialize, ToSchema)]
pub struct ListDeliveriesResponse {
    pub success: bool,
    pub deliveries: Vec<DeliveryView>,
    pub meta: PageMeta,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListDeliveriesParams {
    /// pending, delivered, failed or dead_letter.
    pub status: Option<String>,
    pub event_type: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `meta.next_cursor` of the previous page.
    #[param(value_type = Option<uuid::Uuid>)]
    pub cursor: Option<String>,
    /// `asc` (default): oldest first; `desc`: newest first.
    pub order: Option<SortOrder>,
}

/// List deliveries (extension)
///
/// An endpoint's delivery log, oldest first (`order=desc`: newest first).
#[utoipa::path(get, path = "/api/v1/webhook-endpoints/{endpoint_id}/deliveries", tag = "Webhooks", operation_id = "listWebhookDeliveries",
    params(("endpoint_id" = String, Path, description = "Endpoint id"), ListDeliveriesParams),
    responses((status = 200, description = "A page of deliveries.", body = ListDeliveriesResponse)))]
pub async fn list_deliveries(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListDeliveriesParams>,
) -> ApiResult<Json<ListDeliveriesResponse>> {
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    if let Some(s) = &q.status {
        if !["pending", "delivered", "failed", "dead_letter"].contains(&s.as_str()) {
            return Err(FieldError::new("status", "must be pending, delivered, failed or dead_letter").into());
        }
    }
    let endpoint = find(&state, &team, &id).await?;
    let filter = DeliveryFilter {
        status: q.status,
        event_type: q.event_type,
        page: page.seek(),
    };
    let rows = state.db.list_deliveries(endpoint.id, &filter).await?;
    let (rows, meta) = page.finish(rows, |d| d.id);
    Ok(Json(ListDeliveriesResponse {
        success: true,
        deliveries: rows.into_iter().map(|d| DeliveryView::new(d, None)).collect(),
        meta,
    }))
}

/// Get delivery (extension)
///
/// One delivery with every try: time, HTTP status or network error, duration.
#[utoipa::path(get, path = "/api/v1/webhook-deliveries/{delivery_id}", tag = "Webhooks", operation_id = "getWebhookDelivery",
    params(("delivery_id" = String, Path, description = "Delivery id")),
    responses((status = 200, description = "Delivery found.", body = DeliveryResponse)))]
pub async fn get_delivery(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<DeliveryResponse>> {
    let id = parse_id(&id, "Delivery")?;
    let d = state
        .db
        .get_delivery(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Delivery not found".into()))?;
    let tries = state.db.delivery_attempts(d.id).await?;
    Ok(Json(DeliveryResponse {
        success: true,
        delivery: DeliveryView::new(d, Some(tries)),
    }))
}

/// Redeliver (extension)
///
/// Sends a delivered, failed or dead-lettered delivery again, with the same `webhook-id` and a
/// fresh retry budget.
#[utoipa::path(post, path = "/api/v1/webhook-deliveries/{delivery_id}/redeliver", tag = "Webhooks", operation_id = "redeliverWebhook",
    params(("delivery_id" = String, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "Queued again.", body = DeliveryResponse),
        (status = 409, description = "Still pending.", body = ErrorBody),
    ))]
pub async fn redeliver(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<DeliveryResponse>> {
    let id = parse_id(&id, "Delivery")?;
    match state.db.redeliver(team.team_id, id, now()).await? {
        Some(d) => {
            tracing::info!(delivery_id = %d.id, "redelivery queued");
            Ok(Json(DeliveryResponse {
                success: true,
                delivery: DeliveryView::new(d, None),
            }))
        }
        None => match state.db.get_delivery(team.team_id, id).await? {
            Some(_) => Err(ApiError::conflict("the delivery is still pending")),
            None => Err(ApiError::NotFound("Delivery not found".into())),
        },
    }
}
