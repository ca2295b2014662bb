//! Live voice over HTTP: the SIP-over-WebSocket endpoint browsers join web calls through, call
//! recordings (to the call's team, or through a signed link an `<audio>` element can use), and the
//! softphone page.

use axum::{
    extract::{ws::WebSocketUpgrade, Path, Query, Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Response},
};
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use tower::ServiceExt;
use uuid::Uuid;

use super::{auth::TeamCtx, error::ApiError, AppState};
use crate::{
    store::calls::Call,
    voice::{recording, sip},
};

/// How long a recording link works.
const LINK_SECONDS: i64 = 3600;

/// SIP over WebSocket (RFC 7118: subprotocol `sip`). The SIP digest inside is the credential.
pub async fn sip_websocket(State(state): State<AppState>, ws: WebSocketUpgrade) -> Response {
    let Some(gateway) = state.voice.clone() else {
        return ApiError::Unavailable("live voice is not running in this process".into()).into_response();
    };
    let ws = ws.protocols(["sip"]).max_message_size(sip::MAX_MESSAGE);
    if ws.selected_protocol().is_none() {
        return ApiError::bad_request("SIP over WebSocket needs the `sip` subprotocol (RFC 7118)").into_response();
    }
    ws.on_upgrade(move |socket| crate::voice::gateway::connection(gateway, socket))
}

fn link_signature(secret: &[u8], call_id: Uuid, expires: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(format!("recording:{call_id}:{expires}").as_bytes());
    mac
}

/// The call's recording as a link that works for an hour without a key, when there is one.
pub fn recording_url(state: &AppState, call: &Call) -> Option<String> {
    let gateway = state.voice.as_ref()?;
    let dir = gateway.settings().recordings.as_ref()?;
    if !recording::path(dir, call.id).exists() {
        return None;
    }
    let expires = Utc::now().timestamp() + LINK_SECONDS;
    let signature = hex::encode(
        link_signature(&gateway.settings().secret, call.id, expires)
            .finalize()
            .into_bytes(),
    );
    Some(format!(
        "{}/recordings/{}?expires={expires}&signature={signature}",
        gateway.settings().public_url.trim_end_matches('/'),
        call.id
    ))
}

/// Deletes the recordings of these calls (files in this node's recordings folder); how many
/// there were.
pub fn delete_recordings(state: &AppState, calls: &[Uuid]) -> usize {
    let Some(dir) = state.voice.as_ref().and_then(|g| g.settings().recordings.clone()) else {
        return 0;
    };
    calls.iter().filter(|id| recording::remove(&dir, **id)).count()
}

async fn serve_recording(state: &AppState, call_id: Uuid, req: Request) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound("No recording for this call".into());
    let dir = state
        .voice
        .as_ref()
        .and_then(|g| g.settings().recordings.clone())
        .ok_or_else(not_found)?;
    let path = recording::path(&dir, call_id);
    if !path.exists() {
        return Err(not_found());
    }
    // Range requests (an <audio> element seeking), conditional requests and the length.
    let mut response = tower_http::services::ServeFile::new_with_mime(&path, &mime_flac())
        .oneshot(req)
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("recording {}: {e}", path.display())))?
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    Ok(response)
}

fn mime_flac() -> mime::Mime {
    "audio/flac".parse().expect("a MIME type")
}

/// A FLAC file's bytes, for the spec.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct Flac(#[allow(dead_code)] Vec<u8>);

/// Get call recording
///
/// Both sides of a live call (the callee left, the assistant right), FLAC. Supports HTTP Range.
#[utoipa::path(get, path = "/api/v1/calls/{call_id}/recording", tag = "Calls", operation_id = "getCallRecording",
    params(("call_id" = String, Path, description = "Unique call ID.")),
    responses(
        (status = 200, description = "The recording (audio/flac).", body = Flac, content_type = "audio/flac"),
        (status = 206, description = "Part of it (a Range request)."),
        (status = 404, description = "No such call in your team, or it has no recording.", body = super::error::ErrorBody),
    ))]
pub async fn recording(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound("Call not found".into()))?;
    let call = state
        .db
        .get_call(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Call not found".into()))?;
    serve_recording(&state, call.id, req).await
}

#[derive(Deserialize)]
pub struct LinkParams {
    expires: i64,
    signature: String,
}

/// A recording through the signed link get-call and get-call-result hand out.
pub async fn recording_by_link(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(link): Query<LinkParams>,
    req: Request,
) -> Result<Response, ApiError> {
    let refused = || ApiError::NotFound("this recording link is not valid (or has expired)".into());
    let id = Uuid::parse_str(&id).map_err(|_| refused())?;
    let gateway = state.voice.as_ref().ok_or_else(refused)?;
    let given = hex::decode(&link.signature).map_err(|_| refused())?;
    let valid = link_signature(&gateway.settings().secret, id, link.expires)
        .verify_slice(&given)
        .is_ok();
    if !valid || link.expires < Utc::now().timestamp() {
        return Err(refused());
    }
    serve_recording(&state, id, req).await
}

/// The softphone: paste an API key, choose a script and contact, call, talk, hang up; the live
/// transcript and status beside. A page for trying a Script in the browser.
/// The softphone page; for a signed-in dashboard user it carries the session's CSRF token, so it
/// works without an API key (the dashboard's "try it").
pub async fn softphone(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    let csrf = match super::session::signed_in(&state, &headers).await {
        Ok(Some(owner)) => super::session::escape(&owner.csrf_token),
        Ok(None) => String::new(),
        Err(e) => return e.into_response(),
    };
    let page = include_str!("../../assets/softphone.html").replace("{{csrf}}", &csrf);
    ([(header::CACHE_CONTROL, "no-store")], Html(page)).into_response()
}

pub async fn jssip() -> impl IntoResponse {
    const SCRIPT: &[u8] = include_bytes!("../../assets/vendor/jssip/jssip.min.js");
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        SCRIPT,
    )
}
