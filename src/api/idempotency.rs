//! `Idempotency-Key` (or `X-Idempotency-Key`) on creating requests: the first response is kept for
//! 24 hours and replayed to a retry with the same key and body; the same key with another body is a
//! 409. Keys are per team.

use axum::{
    body::{to_bytes, Body},
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

use super::{auth::TeamCtx, error::ApiError, AppState};
use crate::store::idempotency::Claim;

pub const REPLAYED_HEADER: &str = "idempotent-replayed";
const MAX_KEY_LEN: usize = 255;

pub async fn middleware(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match run(state, req, next).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// The request's idempotency key, from `Idempotency-Key` or `X-Idempotency-Key` (the API's and
/// the hooks' rule alike): 1 to 255 printable ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = ["idempotency-key", "x-idempotency-key"]
        .iter()
        .find_map(|h| headers.get(*h))
    else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_request(format!(
            "Idempotency-Key must be 1 to {MAX_KEY_LEN} printable ASCII characters"
        ))
        .with("field", "Idempotency-Key")
    };
    let key = value.to_str().map_err(|_| bad())?.trim();
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(bad());
    }
    Ok(Some(key.to_owned()))
}

async fn run(state: AppState, req: Request, next: Next) -> Result<Response, ApiError> {
    // CSV imports stream (hashing would hold the whole file) and are idempotent by themselves.
    let csv = req
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/csv"));
    if req.method() != Method::POST || csv {
        return Ok(next.run(req).await);
    }
    let Some(key) = idempotency_key(req.headers())? else {
        return Ok(next.run(req).await);
    };
    let team = req
        .extensions()
        .get::<TeamCtx>()
        .cloned()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("idempotency before auth")))?;

    let (parts, body) = req.into_parts();
    let bytes = to_bytes(body, state.settings.max_body_bytes)
        .await
        .map_err(|_| ApiError::PayloadTooLarge("request body is too large".into()))?;
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(b" ");
    hasher.update(parts.uri.path());
    hasher.update(b"\n");
    hasher.update(&bytes);
    let hash = hasher.finalize();

    let now_ms = chrono::Utc::now().timestamp_millis();
    match state
        .db
        .claim_idempotency_key(team.team_id, &key, &hash, now_ms)
        .await?
    {
        Claim::Replay { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let mut response = (status, body).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            return Ok(response);
        }
        Claim::Mismatch => {
            return Err(ApiError::conflict(
                "Idempotency-Key was already used with a different request",
            ))
        }
        Claim::InFlight => {
            return Err(ApiError::conflict(
                "a request with this Idempotency-Key is still being processed",
            ))
        }
        Claim::Proceed => {}
    }

    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            state.db.finish_idempotency_key(team.team_id, &key, None).await?;
            return Err(ApiError::Internal(anyhow::anyhow!("reading response body: {e}")));
        }
    };
    let status = parts.status;
    let keep = !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS);
    let record = keep.then_some((status.as_u16(), bytes.as_ref()));
    state.db.finish_idempotency_key(team.team_id, &key, record).await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}
