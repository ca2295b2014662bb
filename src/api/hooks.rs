//! `POST /api/v1/hooks/{token}`: inbound webhooks start automation executions. The token in the
//! path stands in for an API key; a signed automation also wants a signature, by its scheme:
//! Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`; replay-safe) or the
//! Voxworks-style body-only `X-Webhook-Signature`.

use std::time::Instant;

use axum::{
    extract::{Path, Request, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{
    auth::{failed_authentication, guard_unauthenticated},
    automations::token_hash,
    error::{ApiError, ApiResult, ErrorBody},
    extract::{parse_json, read_body, require_json},
    idempotency::idempotency_key,
    rate_limit::client_key,
    AppState,
};
use crate::{
    domain::{
        automation::{HookSignature, Trigger},
        now,
        signature::{body_verify, standard_verify, StandardHeaders},
    },
    store::automations::{Execution, HookOutcome},
};

#[derive(Serialize, ToSchema)]
pub struct HookAccepted {
    pub success: bool,
    pub execution_id: String,
    /// `Pending` when new; a replay reports the original execution's id.
    pub status: String,
    /// True when the idempotency key (or Standard Webhooks `webhook-id`) was seen with this body in
    /// the last 24 hours: nothing new was started.
    pub duplicate: bool,
}

/// Trigger automation webhook
///
/// Starts an execution of the automation the token belongs to; the JSON body becomes `trigger.*`.
/// No API key: the token is the credential. A signed automation checks, by its
/// `trigger.signature`:
///
/// - `standard` (the default for new hooks): Standard Webhooks headers `webhook-id`,
///   `webhook-timestamp` (unix seconds, within 5 minutes of now) and `webhook-signature`
///   (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` with the `whsec_` secret). The
///   `webhook-id` is the idempotency key: a replay starts nothing.
/// - `body`: `X-Webhook-Signature`, the hex HMAC-SHA256 of the raw body (`sha256=` prefix
///   optional), as Voxworks senders sign. The signature does not expire: a captured request can be
///   sent again, so send `Idempotency-Key` with each.
///
/// `Idempotency-Key` (or `X-Idempotency-Key`) makes retries safe for 24 hours: a repeat with the
/// same body answers 200 with the first execution's id and starts nothing; the same key with
/// another body is a 409. Each hook is rate-limited at its team's request rate, and a client
/// address that keeps sending unknown tokens or bad signatures is refused for a while (429).
#[utoipa::path(post, path = "/api/v1/hooks/{token}", tag = "Webhooks", operation_id = "triggerAutomationWebhook",
    security(()),
    params(
        ("token" = String, Path, description = "The automation's hook token."),
        ("webhook-id" = Option<String>, Header, description = "Standard Webhooks message id (signed hooks, `standard` scheme); dedupes for 24 hours."),
        ("webhook-timestamp" = Option<String>, Header, description = "Standard Webhooks timestamp, unix seconds, within 5 minutes of now."),
        ("webhook-signature" = Option<String>, Header, description = "Standard Webhooks signatures: `v1,<base64>`, space-separated."),
        ("X-Webhook-Signature" = Option<String>, Header, description = "Hex HMAC-SHA256 of the body (signed hooks, `body` scheme)."),
        ("Idempotency-Key" = Option<String>, Header, description = "Dedupes retries for 24 hours (1 to 255 characters); `X-Idempotency-Key` is the same."),
    ),
    request_body(content = Object, description = "Any JSON object."),
    responses(
        (status = 202, description = "Execution queued.", body = HookAccepted),
        (status = 200, description = "Replay of an idempotency key: the first execution.", body = HookAccepted),
        (status = 400, description = "Not a JSON object, or a bad idempotency key.", body = ErrorBody),
        (status = 401, description = "Missing, wrong or expired signature (signed automations).", body = ErrorBody),
        (status = 404, description = "Unknown token, or the automation is disabled.", body = ErrorBody),
        (status = 409, description = "The idempotency key was used with another body.", body = ErrorBody),
        (status = 413, description = "Body too large.", body = ErrorBody),
        (status = 415, description = "A Content-Type other than JSON.", body = ErrorBody),
        (status = 429, description = "Too many requests for this hook, or too many failures from this address; see Retry-After.", body = ErrorBody),
        (status = 500, description = "Internal error.", body = ErrorBody),
    ))]
pub async fn receive(State(state): State<AppState>, Path(token): Path<String>, req: Request) -> Response {
    match accept(&state, &token, req).await {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn accept(state: &AppState, token: &str, req: Request) -> ApiResult<(StatusCode, HookAccepted)> {
    let client = client_key(&req, state.settings.trusted_proxy_header.as_ref());
    guard_unauthenticated(state, client)?;
    let refuse = |e: ApiError| failed_authentication(state, client, e);
    let unknown = || ApiError::NotFound("no enabled automation has this hook token".into());
    if token.len() > 200 {
        return Err(refuse(unknown()));
    }
    let (automation, team_rate) = match state.db.hook_target(&token_hash(token)).await? {
        Some(t) if t.automation.enabled => (t.automation, t.team_rate),
        _ => return Err(refuse(unknown())),
    };
    // The team's own request rate, as for its API keys, counted per hook.
    let rate = team_rate.map_or(state.settings.requests_per_second, |r| r.max(1) as u32);
    let decision = state.limiter.check(automation.id, rate, Instant::now());
    if !decision.allowed {
        tracing::info!(automation_id = %automation.id, "hook rate limited");
        return Err(ApiError::RateLimited {
            retry_after_secs: decision.retry_after_secs,
        });
    }
    let headers: HeaderMap = req.headers().clone();
    require_json(&headers)?;
    let body = read_body(req, state).await?;
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = match automation.definition.0.trigger {
        Trigger::Webhook { signature, .. } => signature,
        _ => HookSignature::Body,
    };
    // The key a repeat is recognised by: with Standard Webhooks the signed message id (so a replay
    // is a duplicate whatever other headers say), otherwise the idempotency header if any.
    let mut idem_key = None;
    if let Some(secret) = &automation.hook_secret {
        let refused = match scheme {
            HookSignature::Standard => {
                let h = StandardHeaders {
                    id: text("webhook-id"),
                    timestamp: text("webhook-timestamp"),
                    signature: text("webhook-signature"),
                };
                idem_key = h.id.map(|id| format!("webhook-id:{id}"));
                standard_verify(secret, h, &body, now().timestamp()).err()
            }
            HookSignature::Body => {
                let given = text("x-webhook-signature");
                (!body_verify(secret, given, &body)).then(|| match given {
                    None => "X-Webhook-Signature is required for this hook".to_owned(),
                    Some(_) => "X-Webhook-Signature does not match the body".to_owned(),
                })
            }
        };
        if let Some(why) = refused {
            tracing::info!(automation_id = %automation.id, reason = %why, "hook refused: bad or missing signature");
            return Err(refuse(ApiError::Unauthorized(why)));
        }
    }
    let payload: Value = parse_json(&body)?;
    if idem_key.is_none() {
        idem_key = idempotency_key(&headers)?;
    }
    let body_hash = Sha256::digest(&body);
    let at = now();
    let execution = Execution::new(&automation, "webhook", json!({ "trigger": payload }), at);
    let idem = idem_key.as_deref().map(|k| (k, body_hash.as_slice()));
    let outcome = state.db.accept_hook(&execution, idem, at.timestamp_millis()).await?;
    Ok(match outcome {
        HookOutcome::Created(id) => {
            tracing::info!(automation_id = %automation.id, execution_id = %id, "hook accepted");
            (
                StatusCode::ACCEPTED,
                HookAccepted {
                    success: true,
                    execution_id: id.to_string(),
                    status: "Pending".into(),
                    duplicate: false,
                },
            )
        }
        HookOutcome::Mismatch => {
            return Err(ApiError::conflict(
                "this idempotency key was already used with a different body",
            ))
        }
        HookOutcome::Duplicate(id) => {
            let status = state
                .db
                .get_execution(automation.team_id, id)
                .await?
                .map_or_else(|| "Pending".to_owned(), |e| e.status);
            (
                StatusCode::OK,
                HookAccepted {
                    success: true,
                    execution_id: id.to_string(),
                    status,
                    duplicate: true,
                },
            )
        }
    })
}
