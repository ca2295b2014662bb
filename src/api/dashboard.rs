//! The web dashboard: one page (assets/dashboard, compiled in) that signed-in users of a team
//! work in, its live view of the team's calls (server-sent events), and the few endpoints only a
//! dashboard session may use (`/ui/api/*`: API keys, team settings, script YAML).
//!
//! The page is a client of the JSON API: it reads and changes everything through `/api/v1` with
//! the session cookie and its CSRF token (see `session`), so every rule, check and team scope of
//! the API holds in the dashboard without a second copy. What the API has no operation for lives
//! here, and refuses API keys: a leaked key cannot mint more keys.

use std::{collections::HashMap, convert::Infallible, time::Duration};

use axum::{
    extract::{Path, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{
        sse::{Event, KeepAlive, Sse},
        Html, IntoResponse, Redirect, Response,
    },
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::{
    auth::TeamCtx,
    error::{ApiError, ApiResult},
    extract::{parse_id, ApiJson},
    session::{self, escape},
    AppState,
};
use crate::{
    conversation::script_source,
    domain::{call::CallingWindow, now},
    store::{keys::ApiKey, Db},
};

/// `GET /`: the dashboard for a signed-in user, else the sign-in page.
pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let owner = match session::signed_in(&state, &headers).await {
        Ok(Some(o)) => o,
        Ok(None) => return Redirect::to("/sign-in").into_response(),
        Err(e) => return e.into_response(),
    };
    let page = include_str!("../../assets/dashboard/index.html")
        .replace("{{csrf}}", &escape(&owner.csrf_token))
        .replace("{{email}}", &escape(&owner.email))
        .replace("{{team}}", &escape(&owner.team_name));
    let mut r = Html(page).into_response();
    session::page_headers(r.headers_mut());
    r
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub async fn script() -> Response {
    asset(
        include_str!("../../assets/dashboard/app.js"),
        "text/javascript; charset=utf-8",
    )
}

pub async fn style() -> Response {
    asset(
        include_str!("../../assets/dashboard/app.css"),
        "text/css; charset=utf-8",
    )
}

/// Endpoints of the dashboard's own: a session only, never an API key.
fn session_only(team: &TeamCtx) -> ApiResult<Uuid> {
    team.user_id
        .ok_or_else(|| ApiError::Forbidden("only a dashboard session can do this, not an API key".into()))
}

#[derive(Serialize)]
struct KeyView {
    id: String,
    name: Option<String>,
    prefix: String,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKey> for KeyView {
    fn from(k: ApiKey) -> Self {
        KeyView {
            id: k.id.to_string(),
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

pub async fn list_keys(State(state): State<AppState>, team: TeamCtx) -> ApiResult<Json<Value>> {
    session_only(&team)?;
    let keys: Vec<KeyView> = state
        .db
        .list_keys(team.team_id)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(json!({ "success": true, "keys": keys })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    #[serde(default)]
    name: Option<String>,
}

pub async fn create_key(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiJson(body): ApiJson<NewKey>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let user = session_only(&team)?;
    if body.name.as_deref().is_some_and(|n| n.chars().count() > 100) {
        return Err(ApiError::bad_request("name: at most 100 characters").with("field", "name"));
    }
    let (key, secret) = state.db.issue_key(team.team_id, body.name.as_deref()).await?;
    tracing::info!(key_id = %key.id, user_id = %user, "API key created in the dashboard");
    let view = KeyView::from(key);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "success": true, "key": view, "secret": secret })),
    ))
}

pub async fn revoke_key(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let user = session_only(&team)?;
    let id = parse_id(&id, "API key")?;
    if !state.db.revoke_team_key(team.team_id, id, now()).await? {
        return Err(ApiError::NotFound("API key not found (or already revoked)".into()));
    }
    // Other processes see it when their key cache entry expires (`key_cache_seconds`).
    state.keys.forget(id);
    tracing::info!(key_id = %id, user_id = %user, "API key revoked in the dashboard");
    Ok(Json(json!({ "success": true })))
}

async fn team_view(db: &Db, team_id: Uuid, server_rps: u32) -> ApiResult<Value> {
    let t = db
        .get_team(team_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("team not found".into()))?;
    let window = db.team_calling_window(team_id).await?;
    let retention = db.team_retention(team_id).await?.unwrap_or_default();
    Ok(json!({
        "success": true,
        "team": {
            "id": t.id.to_string(),
            "name": t.name,
            "region": t.region,
            "timezone": t.timezone,
            "requests_per_second": t.requests_per_second.map_or(i64::from(server_rps), i64::from),
            "max_concurrent_calls": t.max_concurrent_calls,
            "calling_window": window,
            "recordings": t.recordings,
            "recording_retention_days": retention.recording_retention_days,
            "transcript_retention_days": retention.transcript_retention_days,
        }
    }))
}

pub async fn get_team(State(state): State<AppState>, team: TeamCtx) -> ApiResult<Json<Value>> {
    session_only(&team)?;
    Ok(Json(
        team_view(&state.db, team.team_id, state.settings.requests_per_second).await?,
    ))
}

/// What a team may change of its own settings; limits stay the operator's (`voxd team`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamChange {
    /// `null` removes the window.
    #[serde(default, with = "serde_with_null")]
    calling_window: Option<Option<CallingWindow>>,
    #[serde(default)]
    recordings: Option<bool>,
}

/// Tells a field given as `null` from one left out.
mod serde_with_null {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

pub async fn update_team(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiJson(change): ApiJson<TeamChange>,
) -> ApiResult<Json<Value>> {
    let user = session_only(&team)?;
    if let Some(Some(w)) = &change.calling_window {
        w.check()
            .map_err(|why| ApiError::bad_request(format!("calling_window: {why}")).with("field", "calling_window"))?;
    }
    if let Some(window) = &change.calling_window {
        state.db.set_team_calling_window(team.team_id, window.as_ref()).await?;
    }
    if let Some(on) = change.recordings {
        state.db.set_team_recordings(team.team_id, on).await?;
    }
    tracing::info!(user_id = %user, "team settings changed in the dashboard");
    Ok(Json(
        team_view(&state.db, team.team_id, state.settings.requests_per_second).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScriptText {
    yaml: String,
}

/// Parses and validates a script's YAML; problems come with their lines. Nothing is saved: the
/// page saves the returned definition through the API.
pub async fn check_script(team: TeamCtx, ApiJson(body): ApiJson<ScriptText>) -> ApiResult<Json<Value>> {
    session_only(&team)?;
    let (script, problems) = script_source::check(&body.yaml);
    Ok(Json(json!({
        "success": true,
        "valid": script.is_some() && problems.is_empty(),
        "definition": script,
        "problems": problems,
    })))
}

/// The script's current definition as YAML, for the editor.
pub async fn script_yaml(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    session_only(&team)?;
    let id = parse_id(&id, "Script")?;
    let s = state
        .db
        .get_script(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Script not found".into()))?;
    // Without the empty fields serde writes out (`name: null`, `keywords: []`): what a person
    // would write.
    // (A YAML value keeps the fields in the script's order.)
    let mut definition = serde_yaml_ng::to_value(&s.definition).map_err(|e| ApiError::Internal(e.into()))?;
    prune(&mut definition);
    let yaml = serde_yaml_ng::to_string(&definition).map_err(|e| ApiError::Internal(e.into()))?;
    Ok(Json(json!({ "success": true, "yaml": yaml, "version": s.version })))
}

/// Drops nulls and empty lists and maps from mappings, all the way down.
fn prune(v: &mut serde_yaml_ng::Value) {
    use serde_yaml_ng::Value as Y;
    match v {
        Y::Mapping(map) => {
            for (_, v) in map.iter_mut() {
                prune(v);
            }
            map.retain(|_, v| {
                !(v.is_null()
                    || v.as_sequence().is_some_and(|s| s.is_empty())
                    || v.as_mapping().is_some_and(|m| m.is_empty()))
            });
        }
        Y::Sequence(items) => items.iter_mut().for_each(prune),
        _ => {}
    }
}

/// How often the live view looks for new call events, and how far back each look reaches again
/// (another node's event may commit a moment after a later one).
const POLL: Duration = Duration::from_secs(1);
const OVERLAP: chrono::Duration = chrono::Duration::seconds(5);
/// A stream ends after this long; the browser's EventSource reconnects by itself.
const STREAM_FOR: Duration = Duration::from_secs(30 * 60);

/// A user may keep this many live views open at once (tabs); each polls the database.
const LIVE_VIEWS_PER_USER: usize = 8;

/// Counts the live views each user has open.
#[derive(Default)]
pub struct LiveViews(std::sync::Mutex<HashMap<Uuid, usize>>);

/// One open live view; closing it (the stream dropped) gives the place back.
struct LiveView {
    views: std::sync::Arc<LiveViews>,
    user_id: Uuid,
}

impl LiveViews {
    fn open(self: &std::sync::Arc<Self>, user_id: Uuid) -> Option<LiveView> {
        let mut open = self.0.lock().expect("live views lock");
        let n = open.entry(user_id).or_default();
        if *n >= LIVE_VIEWS_PER_USER {
            return None;
        }
        *n += 1;
        Some(LiveView {
            views: self.clone(),
            user_id,
        })
    }
}

impl Drop for LiveView {
    fn drop(&mut self) {
        let mut open = self.views.0.lock().expect("live views lock");
        if let Some(n) = open.get_mut(&self.user_id) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

struct Live {
    _view: LiveView,
    db: Db,
    team_id: Uuid,
    since: DateTime<Utc>,
    seen: HashMap<Uuid, DateTime<Utc>>,
    queue: std::collections::VecDeque<Event>,
    started: std::time::Instant,
    polls: u64,
    headers: HeaderMap,
    state: AppState,
}

/// `GET /ui/events`: the team's call events as they happen (`event: call`, data: call id,
/// progress, status, time). Signed-in users only; the cookie is enough (a read, and another
/// site's page cannot read the stream). A user has at most [`LIVE_VIEWS_PER_USER`] open (429).
pub async fn events(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let owner = match session::signed_in(&state, &headers).await {
        Ok(Some(o)) => o,
        Ok(None) => return ApiError::Unauthorized("sign in to the dashboard first".into()).into_response(),
        Err(e) => return e.into_response(),
    };
    let Some(view) = state.live_views.open(owner.user_id) else {
        return ApiError::RateLimited { retry_after_secs: 5 }.into_response();
    };
    let live = Live {
        _view: view,
        db: state.db.clone(),
        team_id: owner.team_id,
        since: now(),
        seen: HashMap::new(),
        queue: Default::default(),
        started: std::time::Instant::now(),
        polls: 0,
        headers,
        state,
    };
    let stream = futures_util::stream::unfold(live, |mut live| async move {
        loop {
            if let Some(event) = live.queue.pop_front() {
                return Some((Ok::<_, Infallible>(event), live));
            }
            if live.started.elapsed() > STREAM_FOR {
                return None;
            }
            tokio::time::sleep(POLL).await;
            live.polls += 1;
            // A session that ended (signed out, expired) stops its stream within a minute.
            if live.polls % 60 == 0 && !matches!(session::signed_in(&live.state, &live.headers).await, Ok(Some(_))) {
                return None;
            }
            let rows = match live
                .db
                .team_call_events_since(live.team_id, live.since - OVERLAP, 500)
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, "live view could not read call events");
                    continue;
                }
            };
            for e in rows {
                live.since = live.since.max(e.at);
                if live.seen.insert(e.id, e.at).is_some() {
                    continue;
                }
                let data = json!({
                    "call_id": e.call_id.to_string(),
                    "progress": e.progress.to_string(),
                    "status": e.status.map(|s| s.to_string()),
                    "at": e.at,
                });
                live.queue
                    .push_back(Event::default().event("call").data(data.to_string()));
            }
            let horizon = live.since - OVERLAP - OVERLAP;
            live.seen.retain(|_, at| *at >= horizon);
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}
