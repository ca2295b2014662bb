//! `POST /api/v1/hooks/{token}`: inbound webhooks start automation executions. The token in the
//! path stands in for an API key; a signed automation also wants `X-Webhook-Signature`.

use std::time::Instant;

use axum::{
    extract::{Path, Request, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::Sha256;
use utoipa::ToSchema;

use super::{
    automations::token_hash,
    error::{ApiError, ApiResult, ErrorBody},
    extract::read_body,
    AppState,
};
use crate::{
    domain::now,
    store::automations::{Execution, HookOutcome},
};

#[derive(Serialize, ToSchema)]
pub struct HookAccepted {
    pub success: bool,
    pub execution_id: String,
    /// `Pending` when new; a replay reports the original execution's id.
    pub status: String,
    /// True when `X-Idempotency-Key` was seen in the last 24 hours: nothing new was started.
    pub duplicate: bool,
}

/// Checks `X-Webhook-Signature`: hex HMAC-SHA256 of the raw body, `sha256=` prefix optional,
/// compared in constant time.
pub fn signature_ok(secret: &str, header: Option<&str>, body: &[u8]) -> bool {
    let Some(given) = header.map(str::trim) else {
        return false;
    };
    let given = given.strip_prefix("sha256=").unwrap_or(given);
    let Ok(bytes) = hex::decode(given) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    mac.verify_slice(&bytes).is_ok()
}

/// Trigger automation webhook
///
/// Starts an execution of the automation the token belongs to; the JSON body becomes `trigger.*`.
/// No API key: the token is the credential. When the automation is signed, `X-Webhook-Signature`
/// must be the hex HMAC-SHA256 of the raw body with its secret (`sha256=` prefix optional).
/// `X-Idempotency-Key` makes retries safe for 24 hours: a repeat answers 200 with the first
/// execution's id and starts nothing. Each hook is rate-limited at the team's request rate.
#[utoipa::path(post, path = "/api/v1/hooks/{token}", tag = "Webhooks", operation_id = "triggerAutomationWebhook",
    security(()),
    params(
        ("token" = String, Path, description = "The automation's hook token."),
        ("X-Webhook-Signature" = Option<String>, Header, description = "Hex HMAC-SHA256 of the body, when the automation is signed."),
        ("X-Idempotency-Key" = Option<String>, Header, description = "Dedupes retries for 24 hours (at most 255 characters)."),
    ),
    request_body(content = Object, description = "Any JSON object."),
    responses(
        (status = 202, description = "Execution queued.", body = HookAccepted),
        (status = 200, description = "Replay of an idempotency key: the first execution.", body = HookAccepted),
        (status = 400, description = "Not a JSON object, or a bad idempotency key.", body = ErrorBody),
        (status = 401, description = "Missing or wrong signature (signed automations).", body = ErrorBody),
        (status = 404, description = "Unknown token, or the automation is disabled.", body = ErrorBody),
        (status = 413, description = "Body too large.", body = ErrorBody),
        (status = 429, description = "Too many requests for this hook; see Retry-After.", body = ErrorBody),
        (status = 500, description = "Internal error.", body = ErrorBody),
    ))]
pub async fn receive(State(state): State<AppState>, Path(token): Path<String>, req: Request) -> Response {
    match accept(&state, &token, req).await {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn accept(state: &AppState, token: &str, req: Request) -> ApiResult<(StatusCode, HookAccepted)> {
    let unknown = || ApiError::NotFound("no enabled automation has this hook token".into());
    if token.len() > 200 {
        return Err(unknown());
    }
    let (automation, team_rate) = match state.db.hook_target(&token_hash(token)).await? {
        Some(t) if t.automation.enabled => (t.automation, t.team_rate),
        _ => return Err(unknown()),
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
    let body = read_body(req, state).await?;
    if let Some(secret) = &automation.hook_secret {
        let given = headers.get("x-webhook-signature").and_then(|v| v.to_str().ok());
        if !signature_ok(secret, given, &body) {
            tracing::info!(automation_id = %automation.id, "hook refused: bad or missing signature");
            return Err(ApiError::Unauthorized(match given {
                None => "X-Webhook-Signature is required for this hook".into(),
                Some(_) => "X-Webhook-Signature does not match the body".into(),
            }));
        }
    }
    let payload: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("the body must be JSON: {e}")))?;
    if !payload.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let idem_key = match headers.get("x-idempotency-key") {
        None => None,
        Some(v) => match v.to_str().map(str::trim) {
            Ok(k) if !k.is_empty() && k.len() <= 255 => Some(k.to_owned()),
            _ => {
                return Err(
                    ApiError::bad_request("X-Idempotency-Key must be 1 to 255 visible characters")
                        .with("field", "X-Idempotency-Key"),
                )
            }
        },
    };
    let at = now();
    let execution = Execution::new(&automation, "webhook", json!({ "trigger": payload }), at);
    let outcome = state
        .db
        .accept_hook(&execution, idem_key.as_deref(), at.timestamp_millis())
        .await?;
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

#[cfg(test)]
mod tests {
    use super::signature_ok;

    #[test]
    fn signatures_with_and_without_prefix() {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(b"{\"a\":1}");
        let hex = hex::encode(mac.finalize().into_bytes());
        assert!(signature_ok("s3cret", Some(&hex), b"{\"a\":1}"));
        assert!(signature_ok("s3cret", Some(&format!("sha256={hex}")), b"{\"a\":1}"));
        assert!(!signature_ok("s3cret", Some(&hex), b"{\"a\":2}"));
        assert!(!signature_ok("other", Some(&hex), b"{\"a\":1}"));
        assert!(!signature_ok("s3cret", Some("zz"), b"{\"a\":1}"));
        assert!(!signature_ok("s3cret", None, b"{\"a\":1}"));
    }
}
