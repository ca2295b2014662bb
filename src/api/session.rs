//! Dashboard sign-in: the sign-in page and form, session cookies, CSRF tokens and the limiter of
//! failed attempts.
//!
//! A session is a random token in an HttpOnly, SameSite=Lax cookie; the database keeps only its
//! SHA-256. Each session has a CSRF token that the dashboard page carries and sends back in
//! `X-CSRF-Token`: with it (and only with it) the session cookie is a credential for the JSON API
//! of the user's team, so a page on another site can make the browser send the cookie but never
//! a request the API accepts. The sign-in form itself carries a double-submit token.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    body::Bytes,
    extract::{Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{Html, IntoResponse, Redirect, Response},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{auth::TeamCtx, error::ApiError, rate_limit::client_key, AppState};
use crate::{
    domain::{now, password, phone},
    store::users::SessionOwner,
};

pub const SESSION_COOKIE: &str = "voxd_session";
/// The sign-in form's double-submit token (no session exists yet to hold one).
const FORM_COOKIE: &str = "voxd_signin";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Failed sign-ins allowed in a window, per email and per client address.
const FAILURES_PER_EMAIL: u32 = 5;
const FAILURES_PER_CLIENT: u32 = 20;
const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Counts failed sign-ins per email and per client address; a key with too many failures in the
/// window is refused until the window since its first failure has passed. In this process only,
/// like the other limiters.
#[derive(Default)]
pub struct SignInLimiter {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl SignInLimiter {
    /// How long the key must wait, if it has failed too often.
    fn wait(&self, key: &str, max: u32, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().expect("sign-in limiter lock");
        let (count, since) = failures.get(key)?;
        let elapsed = now.duration_since(*since);
        (*count >= max && elapsed < FAILURE_WINDOW).then(|| FAILURE_WINDOW - elapsed)
    }

    fn fail(&self, key: String, now: Instant) {
        let mut failures = self.failures.lock().expect("sign-in limiter lock");
        if failures.len() > 10_000 {
            failures.retain(|_, (_, since)| now.duration_since(*since) < FAILURE_WINDOW);
        }
        let entry = failures.entry(key).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    fn clear(&self, key: &str) {
        self.failures.lock().expect("sign-in limiter lock").remove(key);
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn digest(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The signed-in user of the request's session cookie, if it names a live session.
pub async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Option<SessionOwner>, ApiError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(state.db.session_owner(&digest(token), now()).await?)
}

/// The session cookie as an API credential: the session must be live and the request must carry
/// its CSRF token.
pub async fn authenticate_api(state: &AppState, headers: &HeaderMap) -> Result<SessionOwner, ApiError> {
    let owner = signed_in(state, headers)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("the dashboard session has ended; sign in again".into()))?;
    let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !same(sent, &owner.csrf_token) {
        return Err(ApiError::Forbidden(format!(
            "a dashboard session needs its CSRF token in `{CSRF_HEADER}`"
        )));
    }
    Ok(owner)
}

impl SessionOwner {
    pub fn team_ctx(&self) -> TeamCtx {
        TeamCtx {
            team_id: self.team_id,
            key_id: None,
            user_id: Some(self.user_id),
            region: phone::parse_region(&self.region).unwrap_or(phonenumber::country::Id::AU),
            timezone: self.timezone.clone(),
        }
    }
}

fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.settings.dashboard.secure_cookies
        || (state.settings.trusted_proxy_header.is_some()
            && headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|p| p.eq_ignore_ascii_case("https")))
}

fn set_cookie(name: &str, value: &str, max_age: Duration, secure: bool) -> HeaderValue {
    let flags = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{flags}",
        max_age.as_secs()
    ))
    .expect("cookie values are base64url")
}

/// Headers of the dashboard's HTML pages: nothing but this origin may run, load or frame them
/// (media aside: recording links point at `public_url`, which may be another origin).
pub fn page_headers(headers: &mut HeaderMap) {
    let csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
               media-src *; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Text for HTML, escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The sign-in page, with a fresh form token (also set as its cookie) and maybe an error.
fn sign_in_page(state: &AppState, headers: &HeaderMap, status: StatusCode, error: &str, email: &str) -> Response {
    let token = random_token();
    let error = if error.is_empty() {
        String::new()
    } else {
        format!(r#"<p class="error" role="alert">{}</p>"#, escape(error))
    };
    let page = include_str!("../../assets/dashboard/sign-in.html")
        .replace("{{csrf}}", &token)
        .replace("{{email}}", &escape(email))
        .replace("{{error}}", &error);
    let mut response = (status, Html(page)).into_response();
    let cookie = set_cookie(FORM_COOKIE, &token, Duration::from_secs(3600), secure(state, headers));
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    page_headers(response.headers_mut());
    response
}

/// `GET /sign-in`: the form (or the dashboard, for someone already signed in).
pub async fn sign_in_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers).await {
        Ok(Some(_)) => Redirect::to("/").into_response(),
        Ok(None) => sign_in_page(&state, &headers, StatusCode::OK, "", ""),
        Err(e) => e.into_response(),
    }
}

/// `POST /sign-in`: email and password from the form; a session cookie and the dashboard on
/// success, the form again with the reason otherwise.
pub async fn sign_in(State(state): State<AppState>, req: Request) -> Response {
    let client = client_key(&req, state.settings.trusted_proxy_header.as_ref()).to_string();
    let (parts, body) = req.into_parts();
    let headers = parts.headers;
    let body: Bytes = match axum::body::to_bytes(body, 16 * 1024).await {
        Ok(b) => b,
        Err(_) => {
            return sign_in_page(
                &state,
                &headers,
                StatusCode::PAYLOAD_TOO_LARGE,
                "The form was too large.",
                "",
            )
        }
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let email = field("email").trim().to_lowercase();
    let form_token = cookie(&headers, FORM_COOKIE).unwrap_or("");
    if form_token.is_empty() || !same(field("csrf"), form_token) {
        let why = "The sign-in form expired or did not come from this site; please sign in again.";
        return sign_in_page(&state, &headers, StatusCode::FORBIDDEN, why, &email);
    }
    if email.is_empty() || field("password").is_empty() {
        return sign_in_page(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            "Enter your email and password.",
            &email,
        );
    }
    let at = Instant::now();
    let email_key = format!("email:{email}");
    let client_key = format!("client:{client}");
    let wait = state
        .sign_ins
        .wait(&email_key, FAILURES_PER_EMAIL, at)
        .or_else(|| state.sign_ins.wait(&client_key, FAILURES_PER_CLIENT, at));
    if let Some(wait) = wait {
        let minutes = wait.as_secs().div_ceil(60);
        tracing::info!(%client, "dashboard sign-in refused: too many failed attempts");
        let why = format!("Too many failed sign-ins. Try again in {minutes} minute(s).");
        let mut r = sign_in_page(&state, &headers, StatusCode::TOO_MANY_REQUESTS, &why, &email);
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait.as_secs().max(1)));
        return r;
    }
    let user = match state.db.user_by_email(&email).await {
        Ok(u) => u,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let stored = user
        .as_ref()
        .map_or_else(|| password::decoy().to_owned(), |u| u.password_hash.clone());
    let given = field("password").to_owned();
    // Argon2 takes tens of milliseconds of CPU: off the async workers.
    let matches = tokio::task::spawn_blocking(move || password::verify(&stored, &given))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| matches) else {
        state.sign_ins.fail(email_key, at);
        state.sign_ins.fail(client_key, at);
        tracing::info!(%client, "dashboard sign-in failed");
        return sign_in_page(
            &state,
            &headers,
            StatusCode::UNAUTHORIZED,
            "Wrong email or password.",
            &email,
        );
    };
    state.sign_ins.clear(&email_key);
    let token = random_token();
    let ttl = state.settings.dashboard.session_ttl;
    let created = now();
    let expires = created + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::hours(12));
    if let Err(e) = state
        .db
        .create_session(&digest(&token), user.id, &random_token(), created, expires)
        .await
    {
        return ApiError::from(e).into_response();
    }
    tracing::info!(user_id = %user.id, team_id = %user.team_id, "dashboard sign-in");
    let secure = secure(&state, &headers);
    let mut response = Redirect::to("/").into_response();
    let h = response.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &token, ttl, secure));
    h.append(header::SET_COOKIE, set_cookie(FORM_COOKIE, "", Duration::ZERO, secure));
    response
}

/// `POST /sign-out`: ends the session (CSRF token in the form's `csrf` field or the header).
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let owner = match signed_in(&state, &headers).await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    if let Some(owner) = owner {
        let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
        let sent = form
            .get("csrf")
            .map(String::as_str)
            .or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))
            .unwrap_or("");
        if !same(sent, &owner.csrf_token) {
            return ApiError::Forbidden("sign-out needs the session's CSRF token".into()).into_response();
        }
        let token = cookie(&headers, SESSION_COOKIE).unwrap_or("");
        if let Err(e) = state.db.delete_session(&digest(token)).await {
            return ApiError::from(e).into_response();
        }
        tracing::info!(user_id = %owner.user_id, "dashboard sign-out");
    }
    let mut response = Redirect::to("/sign-in").into_response();
    let cleared = set_cookie(SESSION_COOKIE, "", Duration::ZERO, secure(&state, &headers));
    response.headers_mut().insert(header::SET_COOKIE, cleared);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_lock_a_key_for_the_window_and_a_success_clears_it() {
        let l = SignInLimiter::default();
        let t0 = Instant::now();
        for _ in 0..4 {
            l.fail("a".into(), t0);
        }
        assert_eq!(l.wait("a", 5, t0), None);
        l.fail("a".into(), t0);
        assert!(l.wait("a", 5, t0 + Duration::from_secs(60)).is_some());
        assert_eq!(l.wait("a", 5, t0 + FAILURE_WINDOW), None);
        assert_eq!(l.wait("b", 5, t0), None);
        l.clear("a");
        assert_eq!(l.wait("a", 5, t0), None);
    }

    #[test]
    fn cookies_are_read_by_name_among_others() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; voxd_session=tok; b=2"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, "c"), None);
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}
