//! Twilio (extension): the team's Twilio account under `/api/v1/twilio` (the rules are the
//! service's, `crate::twilio`; the auth token goes in and never comes back out), and the endpoints
//! Twilio itself calls: the voice webhook of the team's Twilio numbers, status callbacks and
//! media streams (`crate::voice::twilio`), each taken only with a valid `X-Twilio-Signature`.

use axum::{
    extract::{ws::WebSocketUpgrade, Path, RawForm, State},
    http::{header, HeaderMap, StatusCode, Uri},
    response::{IntoResponse, Response},
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    auth::TeamCtx,
    error::{ApiError, ApiResult, ErrorBody},
    extract::{parse_id, ApiJson},
    AppState,
};
use crate::{
    store::twilio::TwilioAccount,
    twilio,
    voice::twilio::{Refusal, Twilio},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct TwilioAccountView {
    #[schema(example = "AC0123456789abcdef0123456789abcdef")]
    pub account_sid: String,
    /// Always true: the token is stored sealed and never returned.
    pub has_auth_token: bool,
    /// Where your Twilio numbers' "A call comes in" webhook should point (HTTP POST); null when
    /// this server runs no live voice.
    pub voice_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct TwilioAccountResponse {
    pub success: bool,
    pub twilio: TwilioAccountView,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTwilioAccountRequest {
    /// Your Twilio account SID (`AC` and 32 hex digits).
    #[schema(example = "AC0123456789abcdef0123456789abcdef", max_length = 34)]
    pub account_sid: String,
    /// The account's auth token: calls are created with it and Twilio's requests are checked
    /// against it. Stored sealed, never returned.
    #[schema(max_length = 128)]
    pub auth_token: String,
}

#[derive(Serialize, ToSchema)]
pub struct DeleteTwilioAccountResponse {
    pub success: bool,
    pub deleted: bool,
}

fn view(state: &AppState, a: TwilioAccount) -> TwilioAccountView {
    TwilioAccountView {
        account_sid: a.account_sid,
        has_auth_token: true,
        voice_url: state.twilio.as_ref().map(|t| t.signed_url("/twilio/voice", false)),
        created_at: a.created_at,
        updated_at: a.updated_at,
    }
}

fn twilio_error(e: twilio::TwilioError) -> ApiError {
    use twilio::TwilioError as E;
    match e {
        E::Invalid(f) => f.into(),
        E::Taken => ApiError::conflict(e.to_string()),
        E::NotFound => ApiError::NotFound("Your team has no Twilio account".into()),
        E::SealKey(why) => ApiError::Internal(anyhow::anyhow!("seal key: {why}")),
        E::Store(s) => s.into(),
    }
}

/// Get Twilio account (extension)
///
/// The team's Twilio account: its numbers with `twilio: true` place and take calls through it.
#[utoipa::path(get, path = "/api/v1/twilio", tag = "Twilio", operation_id = "getTwilioAccount",
    responses(
        (status = 200, description = "The account (the token is never returned).", body = TwilioAccountResponse),
        (status = 404, description = "Your team has no Twilio account.", body = ErrorBody),
    ))]
pub async fn get(State(state): State<AppState>, team: TeamCtx) -> ApiResult<Json<TwilioAccountResponse>> {
    let account = state
        .db
        .twilio_account(team.team_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Your team has no Twilio account".into()))?;
    Ok(Json(TwilioAccountResponse {
        success: true,
        twilio: view(&state, account),
    }))
}

/// Set Twilio account (extension)
///
/// Sets or replaces the team's Twilio account. Point your Twilio numbers' voice webhook at the
/// returned `voice_url`, and mark them `twilio: true` under `/phone-numbers`.
#[utoipa::path(put, path = "/api/v1/twilio", tag = "Twilio", operation_id = "setTwilioAccount",
    request_body = SetTwilioAccountRequest,
    responses(
        (status = 200, description = "Account set.", body = TwilioAccountResponse),
        (status = 409, description = "Another team has this account.", body = ErrorBody),
    ))]
pub async fn set(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiJson(req): ApiJson<SetTwilioAccountRequest>,
) -> ApiResult<Json<TwilioAccountResponse>> {
    let account = twilio::set(&state.db, team.team_id, &req.account_sid, &req.auth_token)
        .await
        .map_err(twilio_error)?;
    Ok(Json(TwilioAccountResponse {
        success: true,
        twilio: view(&state, account),
    }))
}

/// Remove Twilio account (extension)
///
/// Forgets the account and its token; calls from the team's Twilio numbers then fail saying so.
#[utoipa::path(delete, path = "/api/v1/twilio", tag = "Twilio", operation_id = "deleteTwilioAccount",
    responses(
        (status = 200, description = "Account removed.", body = DeleteTwilioAccountResponse),
        (status = 404, description = "Your team has no Twilio account.", body = ErrorBody),
    ))]
pub async fn delete(State(state): State<AppState>, team: TeamCtx) -> ApiResult<Json<DeleteTwilioAccountResponse>> {
    twilio::remove(&state.db, team.team_id).await.map_err(twilio_error)?;
    Ok(Json(DeleteTwilioAccountResponse {
        success: true,
        deleted: true,
    }))
}

fn running(state: &AppState) -> Result<&std::sync::Arc<Twilio>, ApiError> {
    state
        .twilio
        .as_ref()
        .ok_or_else(|| ApiError::Unavailable("this server takes no Twilio calls (live voice is off)".into()))
}

fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::BadRequest(why) => ApiError::bad_request(why),
        Refusal::Forbidden => ApiError::Forbidden("the request is not signed by Twilio for a known account".into()),
        Refusal::NotFound => ApiError::NotFound("no such call".into()),
    }
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

fn signature(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-twilio-signature").and_then(|v| v.to_str().ok())
}

fn path_and_query(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

/// Twilio's voice webhook for the team's Twilio numbers: TwiML connecting the call to its
/// number's inbound script, or rejecting it.
pub async fn voice(State(state): State<AppState>, uri: Uri, headers: HeaderMap, RawForm(body): RawForm) -> Response {
    let result = match running(&state) {
        Ok(t) => {
            let url = t.signed_url(path_and_query(&uri), false);
            t.voice(&url, &form(&body), signature(&headers)).await.map_err(refused)
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(twiml) => ([(header::CONTENT_TYPE, "text/xml; charset=utf-8")], twiml).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Twilio's status callbacks for a call voxd placed.
pub async fn status(
    State(state): State<AppState>,
    Path(call_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    RawForm(body): RawForm,
) -> ApiResult<StatusCode> {
    let t = running(&state)?;
    let call_id = parse_id(&call_id, "Call")?;
    let url = t.signed_url(path_and_query(&uri), false);
    t.status(call_id, &url, &form(&body), signature(&headers))
        .await
        .map_err(refused)?;
    Ok(StatusCode::NO_CONTENT)
}

/// A call's media stream, opened by Twilio (signed over the stream's URL).
pub async fn stream(
    State(state): State<AppState>,
    Path(call_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> ApiResult<Response> {
    let t = running(&state)?.clone();
    let call_id = parse_id(&call_id, "Call")?;
    let token = t.stream_token(call_id).ok_or_else(|| refused(Refusal::NotFound))?;
    let url = t.signed_url(path_and_query(&uri), true);
    if !crate::domain::signature::twilio_verify(&token, &url, &[], signature(&headers)) {
        tracing::warn!(%call_id, "Twilio media stream refused: bad signature");
        return Err(refused(Refusal::Forbidden));
    }
    Ok(upgrade.on_upgrade(move |socket| t.accept_stream(call_id, socket)))
}
