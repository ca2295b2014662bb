//! Bearer-key authentication and rate limiting, as one middleware in front of every team route.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration as StdDuration, Instant},
};

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{header, request::Parts, HeaderMap, HeaderValue},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::Duration;
use phonenumber::country;
use uuid::Uuid;

use super::{
    error::ApiError,
    rate_limit::{client_key, Decision},
    session, AppState,
};
use crate::{
    domain::{api_key, now, phone},
    store::keys::KeyOwner,
};

/// The team a request acts for, resolved from its API key or a dashboard session.
#[derive(Debug, Clone)]
pub struct TeamCtx {
    pub team_id: Uuid,
    /// The API key the request came with.
    pub key_id: Option<Uuid>,
    /// The dashboard user whose session the request came with (see `session`).
    pub user_id: Option<Uuid>,
    pub region: country::Id,
    pub timezone: String,
}

impl<S: Send + Sync> FromRequestParts<S> for TeamCtx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<TeamCtx>()
            .cloned()
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("team route without the auth middleware")))
    }
}

/// Recently verified keys, so that a request costs no key lookup. An entry lives `ttl`; a key
/// revoked meanwhile (by `voxd key revoke`, possibly in another process) keeps working at most that
/// long on a server that saw it just before.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<Vec<u8>, (KeyOwner, Instant)>>,
}

impl KeyCache {
    fn get(&self, hash: &[u8], ttl: StdDuration, now: Instant) -> Option<KeyOwner> {
        let entries = self.entries.lock().expect("key cache lock");
        entries
            .get(hash)
            .filter(|(_, at)| now.duration_since(*at) < ttl)
            .map(|(o, _)| o.clone())
    }

    /// Drops a revoked key at once (in this process; others wait out their `ttl`).
    pub fn forget(&self, key_id: Uuid) {
        let mut entries = self.entries.lock().expect("key cache lock");
        entries.retain(|_, (owner, _)| owner.key_id != key_id);
    }

    fn put(&self, hash: Vec<u8>, owner: KeyOwner, now: Instant) {
        let mut entries = self.entries.lock().expect("key cache lock");
        if entries.len() >= 10_000 {
            entries.clear();
        }
        entries.insert(hash, (owner, now));
    }
}

/// `last_used_at` is written at most this often per key, so reads stay reads.
const TOUCH_EVERY: Duration = Duration::seconds(60);

/// Refuses a client address that failed authentication too often lately, before any lookup: a
/// flood of made-up keys or tokens costs no database work past the first second's worth.
pub fn guard_unauthenticated(state: &AppState, client: IpAddr) -> Result<(), ApiError> {
    let d = state
        .failures
        .peek(client, state.settings.unauthenticated_per_second, Instant::now());
    if d.allowed {
        Ok(())
    } else {
        tracing::info!(%client, "client refused: too many failed authentications");
        Err(ApiError::RateLimited {
            retry_after_secs: d.retry_after_secs,
        })
    }
}

/// Counts a failed authentication against the client address; returns the error to answer.
pub fn failed_authentication(state: &AppState, client: IpAddr, e: ApiError) -> ApiError {
    state
        .failures
        .check(client, state.settings.unauthenticated_per_second, Instant::now());
    e
}

pub async fn middleware(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let client = client_key(&req, state.settings.trusted_proxy_header.as_ref());
    if let Err(e) = guard_unauthenticated(&state, client) {
        return e.into_response();
    }
    // An API key when there is an Authorization header; else a dashboard session cookie, which
    // counts only with its CSRF token.
    let ctx = if req.headers().contains_key(header::AUTHORIZATION)
        || session::cookie(req.headers(), session::SESSION_COOKIE).is_none()
    {
        authenticate(&state, req.headers()).await.map(|owner| {
            let ctx = TeamCtx {
                team_id: owner.team_id,
                key_id: Some(owner.key_id),
                user_id: None,
                region: phone::parse_region(&owner.region).unwrap_or(country::Id::AU),
                timezone: owner.timezone,
            };
            (ctx, owner.requests_per_second)
        })
    } else {
        session::authenticate_api(&state, req.headers())
            .await
            .map(|owner| (owner.team_ctx(), owner.requests_per_second))
    };
    let (ctx, team_limit) = match ctx {
        Ok(found) => found,
        Err(e @ (ApiError::Unauthorized(_) | ApiError::Forbidden(_))) => {
            return failed_authentication(&state, client, e).into_response()
        }
        Err(e) => return e.into_response(),
    };
    let limit = team_limit
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(state.settings.requests_per_second);
    // One bucket per team: making more keys does not raise a team's limit.
    let decision = state.limiter.check(ctx.team_id, limit, Instant::now());
    let mut response = if decision.allowed {
        req.extensions_mut().insert(ctx);
        next.run(req).await
    } else {
        tracing::info!(team_id = %ctx.team_id, key_id = ?ctx.key_id, user_id = ?ctx.user_id, "rate limited");
        ApiError::RateLimited {
            retry_after_secs: decision.retry_after_secs,
        }
        .into_response()
    };
    add_rate_headers(response.headers_mut(), decision);
    response
}

async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<KeyOwner, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization header (expected `Bearer <API key>`)".into()))?;
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("Authorization header must be `Bearer <API key>`".into()))?;
    let hash = api_key::hash(token);
    let ttl = state.settings.key_cache_ttl;
    if let Some(owner) = state.keys.get(&hash, ttl, Instant::now()) {
        return Ok(owner);
    }
    // Unknown and revoked keys get one answer: a caller learns nothing of keys that once existed.
    let invalid = || ApiError::Unauthorized("invalid API key".into());
    let mut owner = state.db.key_owner(&hash).await?.ok_or_else(invalid)?;
    if owner.revoked_at.is_some() {
        return Err(invalid());
    }
    let now = now();
    if owner.last_used_at.is_none_or(|t| now - t > TOUCH_EVERY) {
        owner.last_used_at = Some(now);
        let (db, id) = (state.db.clone(), owner.key_id);
        tokio::spawn(async move {
            if let Err(e) = db.touch_key(id, now).await {
                tracing::warn!(error = %e, "could not record key use");
            }
        });
    }
    if !ttl.is_zero() {
        state.keys.put(hash, owner.clone(), Instant::now());
    }
    Ok(owner)
}

fn add_rate_headers(headers: &mut HeaderMap, d: Decision) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
}
