//! The HTTP API: routes, middleware and the handlers of each resource.

pub mod auth;
pub mod automations;
pub mod calls;
pub mod campaigns;
pub mod contacts;
pub mod dashboard;
pub mod do_not_call;
pub mod error;
pub mod export;
pub mod extract;
pub mod hooks;
pub mod idempotency;
pub mod lists;
pub mod metrics;
pub mod numbers;
pub mod objects;
pub mod openapi;
pub mod pagination;
pub mod rate_limit;
pub mod scripts;
pub mod session;
pub mod trunks;
pub mod twilio;
pub mod voice;
pub mod webhooks;

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{DefaultBodyLimit, Request, State},
    http::{HeaderName, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use serde::Serialize;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::{DefaultOnResponse, TraceLayer},
};
use utoipa::ToSchema;

use crate::store::Db;
use error::ApiError;

/// API behaviour the operator can tune.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Default per-key limit; a team's own setting overrides it.
    pub requests_per_second: u32,
    pub max_body_bytes: usize,
    /// How long a verified key is trusted without asking the database again (so how long a
    /// revocation may take to reach a running server). Zero: every request looks the key up.
    pub key_cache_ttl: Duration,
    /// Requests per second a client address may make with a missing, unknown or revoked API key
    /// (or hook token, or hook signature) before it is refused without a database lookup.
    pub unauthenticated_per_second: u32,
    /// With a proxy in front: the header it puts the client's address in (e.g. `X-Forwarded-For`).
    /// Unset, the connection's address is the client's and such headers are ignored.
    pub trusted_proxy_header: Option<HeaderName>,
    /// Whether webhook endpoints and automation steps may target private addresses; off, such a
    /// URL is refused when it is saved (and again when it is used).
    pub allow_private_network: bool,
    pub web_calls: WebCallSettings,
    /// Set: `/metrics` answers only with this bearer token.
    pub metrics_token: Option<metrics::MetricsToken>,
    pub dashboard: DashboardSettings,
}

/// Sign-in to the web dashboard.
#[derive(Debug, Clone)]
pub struct DashboardSettings {
    /// How long a session lasts after sign-in.
    pub session_ttl: Duration,
    /// Cookies marked `Secure` (served over TLS: an `https://` public URL). Also set per request
    /// when a trusted proxy says `X-Forwarded-Proto: https`.
    pub secure_cookies: bool,
}

impl Default for DashboardSettings {
    fn default() -> Self {
        DashboardSettings {
            session_ttl: Duration::from_secs(12 * 3600),
            secure_cookies: false,
        }
    }
}

/// What browsers need to join web calls through the SIP-over-WebSocket gateway.
#[derive(Clone)]
pub struct WebCallSettings {
    /// Unset: `ws://<the request's host>/sip` (voxd's own gateway on the API port).
    pub websocket_url: Option<String>,
    /// Unset: the request's host name.
    pub sip_domain: Option<String>,
    /// STUN/TURN URLs handed to the browser; TURN ones get the same ephemeral credentials.
    pub ice_servers: Vec<String>,
    /// Shared with the gateway and TURN server, which verify the credentials with it.
    pub secret: Vec<u8>,
    pub credential_ttl: Duration,
}

impl std::fmt::Debug for WebCallSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebCallSettings")
            .field("websocket_url", &self.websocket_url)
            .field("sip_domain", &self.sip_domain)
            .field("ice_servers", &self.ice_servers)
            .field("secret", &"***")
            .field("credential_ttl", &self.credential_ttl)
            .finish()
    }
}

impl Default for WebCallSettings {
    fn default() -> Self {
        WebCallSettings {
            websocket_url: None,
            sip_domain: None,
            ice_servers: Vec::new(),
            secret: Vec::new(),
            credential_ttl: Duration::from_secs(300),
        }
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            requests_per_second: 50,
            max_body_bytes: 1024 * 1024,
            key_cache_ttl: Duration::from_secs(2),
            unauthenticated_per_second: 10,
            trusted_proxy_header: None,
            allow_private_network: false,
            web_calls: WebCallSettings::default(),
            metrics_token: None,
            dashboard: DashboardSettings::default(),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Arc<ApiSettings>,
    pub limiter: Arc<rate_limit::RateLimiter>,
    /// Failed authentications per client address.
    pub failures: Arc<rate_limit::RateLimiter<std::net::IpAddr>>,
    /// Dashboard sign-in attempts, per client address and per email.
    pub sign_ins: Arc<session::SignInLimiter>,
    /// Open live views (`/ui/events`) per dashboard user.
    pub live_views: Arc<dashboard::LiveViews>,
    pub keys: Arc<auth::KeyCache>,
    /// Live voice in this process (the web-call gateway), when it runs.
    pub voice: Option<Arc<crate::voice::gateway::Gateway>>,
    /// Twilio in this process (its webhooks and media streams), when it runs.
    pub twilio: Option<Arc<crate::voice::twilio::Twilio>>,
}

impl AppState {
    pub fn new(db: Db, settings: ApiSettings) -> Self {
        AppState {
            db,
            settings: Arc::new(settings),
            limiter: Arc::default(),
            failures: Arc::default(),
            sign_ins: Arc::default(),
            live_views: Arc::default(),
            keys: Arc::default(),
            voice: None,
            twilio: None,
        }
    }

    /// With live voice: web calls are joined through this gateway.
    pub fn with_voice(mut self, gateway: Arc<crate::voice::gateway::Gateway>) -> Self {
        self.voice = Some(gateway);
        self
    }

    pub fn with_twilio(mut self, twilio: Arc<crate::voice::twilio::Twilio>) -> Self {
        self.twilio = Some(twilio);
        self
    }
}

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let team_routes = Router::new()
        .route("/api/v1/create-contact", post(contacts::create))
        .route("/api/v1/contacts", get(contacts::list))
        .route("/api/v1/contacts/export.csv", get(export::contacts))
        .route(
            "/api/v1/contacts/{contact_id}",
            get(contacts::get).patch(contacts::update).delete(contacts::delete),
        )
        .route("/api/v1/create-list", post(lists::create))
        .route("/api/v1/lists", get(lists::list))
        .route(
            "/api/v1/lists/{list_id}",
            get(lists::get).patch(lists::rename).delete(lists::delete),
        )
        .route(
            "/api/v1/lists/{list_id}/contacts/{contact_id}",
            axum::routing::delete(lists::remove_member),
        )
        .route("/api/v1/lists/{list_id}/import", post(lists::import))
        .route("/api/v1/add-contacts-to-list/{list_id}", post(lists::add_contacts))
        .route("/api/v1/add-contact-to-list/{list_id}", post(lists::add_contacts))
        .route("/api/v1/object-types", post(objects::create_type))
        .route("/api/v1/create-object-type", post(objects::create_type))
        .route("/api/v1/object-types/by-name/{type_name}", get(objects::type_by_name))
        .route("/api/v1/upsert-object", post(objects::upsert))
        .route("/api/v1/objects", get(objects::list))
        .route("/api/v1/objects/{object_id}", get(objects::get))
        .route("/api/v1/link-contact-to-object/{object_id}", post(objects::link))
        .route("/api/v1/link-object-to-contact/{object_id}", post(objects::link))
        .route("/api/v1/create-phone-call", post(calls::create_phone_call))
        .route("/api/v1/get-call/{call_id}", get(calls::get_call))
        .route("/api/v1/calls", get(calls::list_calls))
        .route("/api/v1/calls/export.csv", get(export::calls))
        .route("/api/v1/calls/{call_id}/events", get(calls::call_events))
        .route("/api/v1/cancel-call/{call_id}", post(calls::cancel_call))
        .route(
            "/api/v1/reschedule-call/{call_id}",
            axum::routing::patch(calls::reschedule_call),
        )
        .route("/api/v1/get-call-result/{call_id}", get(calls::get_call_result))
        .route("/api/v1/create-web-call", post(calls::create_web_call))
        .route("/api/v1/end-web-call/{call_id}", post(calls::end_web_call))
        .route("/api/v1/calls/{call_id}/recording", get(voice::recording))
        .route("/api/v1/scripts", post(scripts::create).get(scripts::list))
        .route(
            "/api/v1/scripts/{script_id}",
            get(scripts::get).put(scripts::replace).delete(scripts::delete),
        )
        .route("/api/v1/scripts/{script_id}/versions", get(scripts::versions))
        .route("/api/v1/scripts/{script_id}/test", post(scripts::test))
        .route("/api/v1/scripts/{script_id}/versions/{version}", get(scripts::version))
        .route(
            "/api/v1/scripts/{script_id}/versions/{version}/restore",
            post(scripts::restore),
        )
        .route("/api/v1/automations", post(automations::create).get(automations::list))
        .route(
            "/api/v1/automations/{automation_id}",
            get(automations::get)
                .put(automations::replace)
                .delete(automations::delete),
        )
        .route("/api/v1/automations/{automation_id}/enable", post(automations::enable))
        .route(
            "/api/v1/automations/{automation_id}/disable",
            post(automations::disable),
        )
        .route(
            "/api/v1/automations/{automation_id}/rotate-hook",
            post(automations::rotate_hook),
        )
        .route("/api/v1/executions", get(automations::list_executions))
        .route("/api/v1/executions/{execution_id}", get(automations::get_execution))
        .route(
            "/api/v1/executions/{execution_id}/retry",
            post(automations::retry_execution),
        )
        .route("/api/v1/campaigns", post(campaigns::create).get(campaigns::list))
        .route("/api/v1/campaigns/{campaign_id}", get(campaigns::get))
        .route("/api/v1/campaigns/{campaign_id}/pause", post(campaigns::pause))
        .route("/api/v1/campaigns/{campaign_id}/resume", post(campaigns::resume))
        .route("/api/v1/campaigns/{campaign_id}/cancel", post(campaigns::cancel))
        .route("/api/v1/campaigns/{campaign_id}/log", get(campaigns::log))
        .route("/api/v1/dnc", post(do_not_call::add).get(do_not_call::list))
        .route("/api/v1/dnc/import", post(do_not_call::import))
        .route(
            "/api/v1/dnc/{phone_number}",
            get(do_not_call::get).delete(do_not_call::remove),
        )
        .route("/api/v1/phone-numbers", post(numbers::create).get(numbers::list))
        .route(
            "/api/v1/phone-numbers/{number_id}",
            get(numbers::get).patch(numbers::update).delete(numbers::delete),
        )
        .route("/api/v1/trunks", post(trunks::create).get(trunks::list))
        .route("/api/v1/trunks/{trunk_id}", get(trunks::get).delete(trunks::delete))
        .route(
            "/api/v1/twilio",
            get(twilio::get).put(twilio::set).delete(twilio::delete),
        )
        .route("/api/v1/webhook-endpoints", post(webhooks::create).get(webhooks::list))
        .route(
            "/api/v1/webhook-endpoints/{endpoint_id}",
            get(webhooks::get).put(webhooks::replace).delete(webhooks::delete),
        )
        .route(
            "/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
            post(webhooks::rotate_secret),
        )
        .route(
            "/api/v1/webhook-endpoints/{endpoint_id}/deliveries",
            get(webhooks::list_deliveries),
        )
        .route("/api/v1/webhook-deliveries/{delivery_id}", get(webhooks::get_delivery))
        .route(
            "/api/v1/webhook-deliveries/{delivery_id}/redeliver",
            post(webhooks::redeliver),
        )
        // The dashboard's own operations (a session only; see dashboard.rs).
        .route("/ui/api/keys", get(dashboard::list_keys).post(dashboard::create_key))
        .route("/ui/api/keys/{key_id}/revoke", post(dashboard::revoke_key))
        .route("/ui/api/team", get(dashboard::get_team).patch(dashboard::update_team))
        .route("/ui/api/scripts/check", post(dashboard::check_script))
        .route("/ui/api/scripts/{script_id}/yaml", get(dashboard::script_yaml))
        // Layers run outside-in: authenticate (and rate-limit), then idempotency, then the handler.
        .route_layer(middleware::from_fn_with_state(state.clone(), idempotency::middleware))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::middleware));

    Router::new()
        .route("/api/v1/health", get(health))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/openapi.json", get(openapi::spec))
        .route("/docs", get(openapi::docs))
        .route("/docs/scalar.js", get(openapi::docs_script))
        // The dashboard: its page and assets, sign-in, the live view (each checks the session).
        .route("/", get(dashboard::index))
        .route("/ui/app.js", get(dashboard::script))
        .route("/ui/app.css", get(dashboard::style))
        .route("/ui/events", get(dashboard::events))
        .route("/sign-in", get(session::sign_in_form).post(session::sign_in))
        .route("/sign-out", post(session::sign_out))
        // The token in the path is the credential: no API key, so outside the team routes.
        .route("/api/v1/hooks/{token}", post(hooks::receive))
        // Browsers: SIP over WebSocket (the digest inside is the credential), signed recording
        // links, the softphone page.
        .route("/sip", get(voice::sip_websocket))
        .route("/recordings/{call_id}", get(voice::recording_by_link))
        .route("/softphone", get(voice::softphone))
        .route("/softphone/jssip.js", get(voice::jssip))
        // Twilio's requests: each is signed with the account's auth token.
        .route("/twilio/voice", post(twilio::voice))
        .route("/twilio/status/{call_id}", post(twilio::status))
        .route("/twilio/stream/{call_id}", get(twilio::stream))
        .merge(team_routes)
        .fallback(not_found)
        .layer(middleware::from_fn(metrics::record))
        .layer(middleware::from_fn(refuse_nul))
        .layer(middleware::from_fn(envelope_bare_errors))
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                // One line per request with its status and latency.
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

#[derive(Serialize, ToSchema)]
pub struct HealthResponse {
    /// True when the server can serve requests (its database answers).
    pub success: bool,
    /// `ok` or `unavailable`.
    pub status: String,
    /// `ok` or `unavailable`: whether the database answered a query just now.
    pub database: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub version: String,
}

/// Health
///
/// No authentication. Says whether the server's database answers; 503 when it does not.
#[utoipa::path(get, path = "/api/v1/health", tag = "Health", operation_id = "health", security(()),
    responses(
        (status = 200, description = "Serving; the database answers.", body = HealthResponse),
        (status = 503, description = "The database does not answer.", body = HealthResponse),
    ))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthResponse>) {
    let ok = tokio::time::timeout(Duration::from_secs(2), state.db.ping())
        .await
        .unwrap_or(false);
    let word = if ok { "ok" } else { "unavailable" };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = HealthResponse {
        success: ok,
        status: word.into(),
        database: word.into(),
        backend: state.db.backend().into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    (status, Json(body))
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint".into())
}

/// A NUL character cannot be stored in PostgreSQL text; refuse it in paths and queries as in
/// bodies (see `extract`), on every backend alike.
async fn refuse_nul(req: Request, next: Next) -> Response {
    let uri = req.uri();
    let nul = |s: &str| s.as_bytes().windows(3).any(|w| w.eq_ignore_ascii_case(b"%00"));
    if nul(uri.path()) || uri.query().is_some_and(nul) {
        return ApiError::bad_request("NUL characters (%00) are not accepted in paths or query parameters")
            .into_response();
    }
    next.run(req).await
}

/// Responses made by the framework itself (wrong method) come with an empty body; give them the
/// envelope like every other error.
async fn envelope_bare_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED && !response.headers().contains_key("content-type") {
        let (parts, _) = response.into_parts();
        let mut enveloped = ApiError::MethodNotAllowed.into_response();
        if let Some(allow) = parts.headers.get("allow") {
            enveloped.headers_mut().insert("allow", allow.clone());
        }
        return enveloped;
    }
    response
}
