//! The dashboard's sign-in, sessions and CSRF rule, and its own endpoints, through the router
//! (the pages themselves are driven in Chromium by tests/dashboard_browser.rs).

mod common;

use axum::{
    body::Body,
    http::{header, Method, Request},
};
use common::{add_user, TestApp, TestResponse};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

const EMAIL: &str = "ops@acme.test";
const PASSWORD: &str = "correct horse battery";

/// A signed-in browser: its session cookie and the page's CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

fn set_cookie(r: &TestResponse, name: &str) -> Option<String> {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_owned()
}

/// Loads the sign-in form and posts it; returns the form's answer.
async fn post_sign_in(app: &TestApp, email: &str, password: &str) -> TestResponse {
    let form = app.send(Request::get("/sign-in").body(Body::empty()).unwrap()).await;
    assert_eq!(form.status, 200);
    let token = cookie_value(&set_cookie(&form, "voxd_signin").expect("form cookie"));
    let body = url_encode(&[("csrf", &token), ("email", email), ("password", password)]);
    app.send(
        Request::post("/sign-in")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::COOKIE, format!("voxd_signin={token}"))
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

fn url_encode(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn sign_in(app: &TestApp, email: &str, password: &str) -> Session {
    let r = post_sign_in(app, email, password).await;
    assert_eq!(r.status, 303, "{}", String::from_utf8_lossy(&r.raw));
    let cookie = format!(
        "voxd_session={}",
        cookie_value(&set_cookie(&r, "voxd_session").unwrap())
    );
    let page = app
        .send(
            Request::get("/")
                .header(header::COOKIE, &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8(page.raw).unwrap();
    let csrf = html
        .split(r#"<meta name="csrf-token" content=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page carries its CSRF token")
        .to_owned();
    Session { cookie, csrf }
}

/// A request as the dashboard page makes it: the cookie, and the CSRF token unless `None`.
async fn as_page(
    app: &TestApp,
    s: &Session,
    method: Method,
    path: &str,
    body: Option<Value>,
    csrf: Option<&str>,
) -> TestResponse {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::COOKIE, &s.cookie);
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    let body = match body {
        Some(b) => {
            req = req.header(header::CONTENT_TYPE, "application/json");
            Body::from(b.to_string())
        }
        None => Body::empty(),
    };
    app.send(req.body(body).unwrap()).await
}

async fn page(app: &TestApp, s: &Session, method: Method, path: &str, body: Option<Value>) -> TestResponse {
    as_page(app, s, method, path, body, Some(&s.csrf.clone())).await
}

async fn signing_in_sets_a_strict_cookie_and_wrong_passwords_are_refused(app: &TestApp) {
    add_user(&app.db, app.team_id, EMAIL, PASSWORD).await;
    // Not signed in: the dashboard sends you to the form.
    let r = app.send(Request::get("/").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location"), Some("/sign-in"));

    let r = post_sign_in(app, EMAIL, "wrong password!").await;
    assert_eq!(r.status, 401);
    assert!(String::from_utf8_lossy(&r.raw).contains("Wrong email or password"));
    assert!(set_cookie(&r, "voxd_session").is_none());
    let r = post_sign_in(app, "nobody@acme.test", PASSWORD).await;
    assert_eq!(r.status, 401, "an unknown email gets the same answer");

    // A form posted without its double-submit token (another site's form) is refused.
    let r = app
        .send(
            Request::post("/sign-in")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(url_encode(&[
                    ("email", EMAIL),
                    ("password", PASSWORD),
                    ("csrf", "x"),
                ])))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(set_cookie(&r, "voxd_session").is_none());

    // Emails are matched without case or spaces.
    let r = post_sign_in(app, " OPS@acme.test ", PASSWORD).await;
    assert_eq!(r.status, 303);
    let cookie = set_cookie(&r, "voxd_session").unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(flag), "{cookie} lacks {flag}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag ({cookie})");
    // The database keeps the session's digest, not the cookie.
    let token = cookie_value(&cookie);
    let stored: i64 = app.count("dashboard_sessions").await;
    assert_eq!(stored, 1);
    let s = sign_in(app, EMAIL, PASSWORD).await;
    let html = as_page(app, &s, Method::GET, "/", None, None).await;
    assert!(String::from_utf8_lossy(&html.raw).contains(EMAIL));
    // Pages run only this origin's scripts and are never framed (clickjacking).
    for r in [&html, &post_sign_in(app, EMAIL, "wrong password!").await] {
        let csp = r.header("content-security-policy").unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    }
    assert_ne!(token, s.csrf);
}

async fn a_session_works_the_api_only_with_its_csrf_token(app: &TestApp) {
    add_user(&app.db, app.team_id, EMAIL, PASSWORD).await;
    let s = sign_in(app, EMAIL, PASSWORD).await;
    let contact = json!({"phone_number": "+61412345678", "first_name": "Ava"});
    let before = app.count("contacts").await;
    // The cookie alone (what a page on another site could make the browser send) is refused.
    for (method, path, body) in [
        (Method::GET, "/api/v1/contacts", None),
        (Method::POST, "/api/v1/create-contact", Some(contact.clone())),
    ] {
        let r = as_page(app, &s, method.clone(), path, body.clone(), None).await;
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert_eq!(r.body["code"], "forbidden");
        let r = as_page(app, &s, method.clone(), path, body, Some("not-the-token")).await;
        assert_eq!(r.status, 403, "{method} {path} with a wrong token");
    }
    assert_eq!(app.count("contacts").await, before, "a refused request wrote nothing");
    let r = page(app, &s, Method::POST, "/api/v1/create-contact", Some(contact)).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["contact_id"].as_str().unwrap().to_owned();
    let r = page(app, &s, Method::GET, &format!("/api/v1/contacts/{id}"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["lists"], json!([]));
    let list = page(
        app,
        &s,
        Method::POST,
        "/api/v1/create-list",
        Some(json!({"name": "Buyers"})),
    )
    .await;
    let list_id = list.ok(201)["list_id"].as_str().unwrap().to_owned();
    let r = page(
        app,
        &s,
        Method::POST,
        &format!("/api/v1/add-contacts-to-list/{list_id}"),
        Some(json!({"contacts": [{"phone_number": "+61412345678"}]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = page(app, &s, Method::GET, &format!("/api/v1/contacts/{id}"), None).await;
    assert_eq!(r.body["lists"], json!([{"id": list_id, "name": "Buyers"}]));
    // The contact is the team's, seen by the team's API key too.
    assert_eq!(app.get(&format!("/api/v1/contacts/{id}")).await.status, 200);
    // A forged or expired cookie is no session.
    let forged = Session {
        cookie: "voxd_session=forged".into(),
        csrf: s.csrf.clone(),
    };
    assert_eq!(
        page(app, &forged, Method::GET, "/api/v1/contacts", None).await.status,
        401
    );
    assert_eq!(as_page(app, &forged, Method::GET, "/", None, None).await.status, 303);
}

async fn another_teams_ids_are_not_found_from_a_session(app: &TestApp) {
    add_user(&app.db, app.team_id, EMAIL, PASSWORD).await;
    let (other_team, other_key) = app.other_team("globex").await;
    add_user(&app.db, other_team, "boss@globex.test", PASSWORD).await;
    let r = app
        .post_as(
            &other_key,
            "/api/v1/create-contact",
            &json!({"phone_number": "+61498765432"}),
        )
        .await;
    let theirs = r.ok(201)["contact_id"].as_str().unwrap().to_owned();
    let s = sign_in(app, EMAIL, PASSWORD).await;
    let r = page(app, &s, Method::GET, &format!("/api/v1/contacts/{theirs}"), None).await;
    assert_eq!(r.status, 404);
    // Their keys cannot be revoked from here, and keep working.
    let theirs_s = sign_in(app, "boss@globex.test", PASSWORD).await;
    let keys = page(app, &theirs_s, Method::GET, "/ui/api/keys", None).await;
    let their_key_id = keys.ok(200)["keys"][0]["id"].as_str().unwrap().to_owned();
    let r = page(
        app,
        &s,
        Method::POST,
        &format!("/ui/api/keys/{their_key_id}/revoke"),
        None,
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(app.get_as(&other_key, "/api/v1/contacts").await.status, 200);
    // Each session lists its own team's keys only.
    let mine = page(app, &s, Method::GET, "/ui/api/keys", None).await;
    assert!(mine.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| k["id"] != their_key_id.as_str()));
}

async fn keys_are_made_shown_once_and_revoked_by_sessions_only(app: &TestApp) {
    add_user(&app.db, app.team_id, EMAIL, PASSWORD).await;
    let s = sign_in(app, EMAIL, PASSWORD).await;
    // An API key cannot manage keys (a leaked key mints no more).
    let r = app.post("/ui/api/keys", &json!({"name": "x"})).await;
    assert_eq!(r.status, 403);
    assert_eq!(app.get("/ui/api/keys").await.status, 403);
    let before = app.count("api_keys").await;
    for bad in [
        json!({"name": 5}),
        json!({"label": "x"}),
        json!({"name": "x".repeat(101)}),
    ] {
        let r = page(app, &s, Method::POST, "/ui/api/keys", Some(bad.clone())).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    assert_eq!(app.count("api_keys").await, before);

    let r = page(app, &s, Method::POST, "/ui/api/keys", Some(json!({"name": "CRM sync"}))).await;
    let body = r.ok(201).clone();
    let secret = body["secret"].as_str().unwrap().to_owned();
    let id = body["key"]["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("vxd_"));
    assert_eq!(app.get_as(&secret, "/api/v1/contacts").await.status, 200);
    let list = page(app, &s, Method::GET, "/ui/api/keys", None).await;
    assert!(!list.body.to_string().contains(&secret), "the secret is shown once");
    let listed = list.body["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed["name"], "CRM sync");
    assert!(secret.starts_with(listed["prefix"].as_str().unwrap()));

    let r = page(app, &s, Method::POST, &format!("/ui/api/keys/{id}/revoke"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.get_as(&secret, "/api/v1/contacts").await.status, 401);
    let r = page(app, &s, Method::POST, &format!("/ui/api/keys/{id}/revoke"), None).await;
    assert_eq!(r.status, 404, "revoked already");
    let r = page(app, &s, Method::POST, "/ui/api/keys/not-an-id/revoke", None).await;
    assert_eq!(r.status, 404, "not an id: no such key");
}

async fn failed_sign_ins_are_limited_per_email(app: &TestApp) {
    add_user(&app.db, app.team_id, EMAIL, PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(post_sign_in(app, EMAIL, "guess guess guess").await.status, 401);
    }
    // Locked: even the right password waits.
    let r = post_sign_in(app, EMAIL, PASSWORD).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    assert!(String::from_utf8_lossy(&r.raw).contains("Too many failed sign-ins"));
    assert!(set_cookie(&r, "voxd_session").is_none());
}

async fn signing_out_ends_the_session(app: &TestApp) {
    add_user(&app.db, app.team_id, EMAIL, PASSWORD).await;
    let s = sign_in(app, EMAIL, PASSWORD).await;
    let sign_out = |csrf: &str| {
        Request::post("/sign-out")
            .header(header::COOKIE, &s.cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(url_encode(&[("csrf", csrf)])))
            .unwrap()
    };
    assert_eq!(
        app.send(sign_out("wrong")).await.status,
        403,
        "no sign-out from another site"
    );
    assert_eq!(page(app, &s, Method::GET, "/api/v1/contacts", None).await.status, 200);
    let r = app.send(sign_out(&s.csrf.clone())).await;
    assert_eq!(r.status, 303);
    assert!(set_cookie(&r, "voxd_session").unwrap().contains("Max-Age=0"));
    assert_eq!(page(app, &s, Method::GET, "/api/v1/contacts", None).await.status, 401);
    assert_eq!(app.count("dashboard_sessions").await, 0);
}

async fn team_settings_change_only_what_a_team_may(app: &TestApp) {
    add_user(&app.db, app.team_id, EMAIL, PASSWORD).await;
    let s = sign_in(app, EMAIL, PASSWORD).await;
    let r = page(app, &s, Method::GET, "/ui/api/team", None).await;
    assert_eq!(r.ok(200)["team"]["name"], "acme");
    assert_eq!(r.body["team"]["recordings"], true);
    for bad in [
        json!({"calling_window": {"start": "25:00", "end": "20:00"}}),
        json!({"calling_window": {"start": "10:00", "end": "09:00"}}),
        json!({"calling_window": {"start": "09:00", "end": "17:00", "days": ["funday"]}}),
        json!({"requests_per_second": 1000}),
        json!({"recordings": "yes"}),
    ] {
        let r = page(app, &s, Method::PATCH, "/ui/api/team", Some(bad.clone())).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
    assert_eq!(
        app.db.team_calling_window(app.team_id).await.unwrap(),
        None,
        "nothing changed"
    );
    let window = json!({"start": "09:00", "end": "17:00", "days": ["mon", "tue"]});
    let r = page(
        app,
        &s,
        Method::PATCH,
        "/ui/api/team",
        Some(json!({"calling_window": window, "recordings": false})),
    )
    .await;
    assert_eq!(r.ok(200)["team"]["calling_window"], window);
    assert_eq!(r.body["team"]["recordings"], false);
    let r = page(
        app,
        &s,
        Method::PATCH,
        "/ui/api/team",
        Some(json!({"calling_window": null})),
    )
    .await;
    assert_eq!(r.ok(200)["team"]["calling_window"], Value::Null);
    assert_eq!(r.body["team"]["recordings"], false, "left out: unchanged");
}

async fn script_yaml_is_checked_with_problem_lines(app: &TestApp) {
    add_user(&app.db, app.team_id, EMAIL, PASSWORD).await;
    let s = sign_in(app, EMAIL, PASSWORD).await;
    let script = app
        .post("/api/v1/scripts", &common::example_script("buyer-follow-up"))
        .await;
    let id = script.ok(201)["script_id"].as_str().unwrap().to_owned();
    let r = page(app, &s, Method::GET, &format!("/ui/api/scripts/{id}/yaml"), None).await;
    let yaml = r.ok(200)["yaml"].as_str().unwrap().to_owned();
    let r = page(
        app,
        &s,
        Method::POST,
        "/ui/api/scripts/check",
        Some(json!({"yaml": yaml})),
    )
    .await;
    assert_eq!(r.ok(200)["valid"], true, "{}", r.body);

    // A `next` that names no step: the problem points at its line.
    let target = yaml
        .lines()
        .position(|l| l.trim_start().starts_with("next: "))
        .expect("a next");
    // The problem names the condition: its first line.
    let condition = (0..=target)
        .rev()
        .find(|&i| yaml.lines().nth(i).unwrap().trim_start().starts_with("- "))
        .unwrap();
    let broken: String = yaml
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == target {
                format!("{}next: nowhere\n", &l[..l.find("next").unwrap()])
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let r = page(
        app,
        &s,
        Method::POST,
        "/ui/api/scripts/check",
        Some(json!({"yaml": broken})),
    )
    .await;
    assert_eq!(r.ok(200)["valid"], false);
    let problem = r.body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["problem"].as_str().unwrap().contains("nowhere"))
        .unwrap()
        .clone();
    assert_eq!(problem["line"], condition + 1, "{problem}\n{broken}");

    let r = page(
        app,
        &s,
        Method::POST,
        "/ui/api/scripts/check",
        Some(json!({"yaml": "name: [unclosed"})),
    )
    .await;
    assert_eq!(r.body["problems"][0]["at"], "yaml");
    assert_eq!(r.body["problems"][0]["line"], 1);
    let r = page(
        app,
        &s,
        Method::POST,
        "/ui/api/scripts/check",
        Some(json!({"text": "x"})),
    )
    .await;
    assert_eq!(r.status, 400);
    // Another team's script is not found.
    let (_, other_key) = app.other_team("globex").await;
    let theirs = app
        .post_as(
            &other_key,
            "/api/v1/scripts",
            &common::example_script("buyer-follow-up"),
        )
        .await;
    let theirs = theirs.ok(201)["script_id"].as_str().unwrap().to_owned();
    assert_eq!(
        page(app, &s, Method::GET, &format!("/ui/api/scripts/{theirs}/yaml"), None)
            .await
            .status,
        404
    );
}

async fn contacts_are_found_by_any_part_of_name_email_or_number(app: &TestApp) {
    for (phone, first, last, email) in [
        ("+61412000001", "Ava", "Nguyen", "ava@example.com"),
        ("+61412000002", "Liam", "O'Brien", "liam@example.com"),
        ("+61412000003", "Zoe", "100%_Real", "zoe@else.org"),
    ] {
        let r = app
            .post(
                "/api/v1/create-contact",
                &json!({"phone_number": phone, "first_name": first, "last_name": last, "email": email}),
            )
            .await;
        r.ok(201);
    }
    let names = |r: &TestResponse| -> Vec<String> {
        r.body["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["first_name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&app.get("/api/v1/contacts?search=nguy").await), ["Ava"]);
    assert_eq!(
        names(&app.get("/api/v1/contacts?search=EXAMPLE.COM").await),
        ["Ava", "Liam"]
    );
    assert_eq!(names(&app.get("/api/v1/contacts?search=000003").await), ["Zoe"]);
    assert_eq!(names(&app.get("/api/v1/contacts?search=ava%20nguyen").await), ["Ava"]);
    // LIKE's wildcards are taken literally.
    assert_eq!(names(&app.get("/api/v1/contacts?search=%25_").await), ["Zoe"]);
    assert_eq!(names(&app.get("/api/v1/contacts?search=_").await), ["Zoe"]);
    assert!(names(&app.get("/api/v1/contacts?search=nobody").await).is_empty());
    let long = "x".repeat(101);
    assert_eq!(app.get(&format!("/api/v1/contacts?search={long}")).await.status, 400);
}

async fn the_live_view_streams_the_teams_call_events(app: &TestApp) {
    add_user(&app.db, app.team_id, EMAIL, PASSWORD).await;
    let s = sign_in(app, EMAIL, PASSWORD).await;
    let r = app.send(Request::get("/ui/events").body(Body::empty()).unwrap()).await;
    assert_eq!(r.status, 401, "no session, no stream");
    let response = app
        .router
        .clone()
        .oneshot(
            Request::get("/ui/events")
                .header(header::COOKIE, &s.cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    // Another team's call is not in this team's stream; ours is.
    let (other_id, other_key) = app.other_team("globex").await;
    let their_script = common::number_and_script(app, other_id, &other_key, "+61291230000").await;
    app.post_as(
        &other_key,
        "/api/v1/create-phone-call",
        &json!({
            "from_number": "+61291230000", "script_id": their_script, "contact": {"phone_number": "+61412999999"}
        }),
    )
    .await
    .ok(201);
    let script = common::caller_id_and_script(app).await;
    let r = app
        .post(
            "/api/v1/create-phone-call",
            &json!({
                "from_number": common::CALLER_ID, "script_id": script, "contact": {"phone_number": "+61412345678"}
            }),
        )
        .await;
    let call_id = r.ok(201)["call_id"].as_str().unwrap().to_owned();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains(&call_id) {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("an event within 10 s");
        let frame = frame.expect("stream open").unwrap();
        if let Some(data) = frame.data_ref() {
            seen.push_str(&String::from_utf8_lossy(data));
        }
    }
    assert!(seen.contains("event: call"), "{seen}");
    assert!(seen.contains("\"progress\":\"scheduled\""), "{seen}");
    assert_eq!(seen.matches("\"call_id\"").count(), 1, "only our team's call: {seen}");
}

/// Each open live view polls the database: a user gets a bounded number of them.
async fn live_views_per_user_are_bounded(app: &TestApp) {
    add_user(&app.db, app.team_id, EMAIL, PASSWORD).await;
    let s = sign_in(app, EMAIL, PASSWORD).await;
    let open = || {
        app.router.clone().oneshot(
            Request::get("/ui/events")
                .header(header::COOKIE, &s.cookie)
                .body(Body::empty())
                .unwrap(),
        )
    };
    let mut streams = Vec::new();
    for _ in 0..8 {
        let r = open().await.unwrap();
        assert_eq!(r.status(), 200);
        streams.push(r);
    }
    let refused = open().await.unwrap();
    assert_eq!(refused.status(), 429);
    streams.pop();
    assert_eq!(
        open().await.unwrap().status(),
        200,
        "a closed view gives its place back"
    );
}

on_both_backends!(
    live_views_per_user_are_bounded,
    signing_in_sets_a_strict_cookie_and_wrong_passwords_are_refused,
    a_session_works_the_api_only_with_its_csrf_token,
    another_teams_ids_are_not_found_from_a_session,
    keys_are_made_shown_once_and_revoked_by_sessions_only,
    failed_sign_ins_are_limited_per_email,
    signing_out_ends_the_session,
    team_settings_change_only_what_a_team_may,
    script_yaml_is_checked_with_problem_lines,
    contacts_are_found_by_any_part_of_name_email_or_number,
    the_live_view_streams_the_teams_call_events,
);

#[tokio::test]
async fn cookies_are_secure_behind_an_https_public_url() {
    let settings = voxd::api::ApiSettings {
        dashboard: voxd::api::DashboardSettings {
            secure_cookies: true,
            ..Default::default()
        },
        ..voxd::api::ApiSettings::default()
    };
    let app = TestApp::start_with(common::Backend::Sqlite, settings).await.unwrap();
    add_user(&app.db, app.team_id, EMAIL, PASSWORD).await;
    let r = post_sign_in(&app, EMAIL, PASSWORD).await;
    assert_eq!(r.status, 303);
    assert!(set_cookie(&r, "voxd_session").unwrap().contains("; Secure"));
    app.cleanup().await;
}
