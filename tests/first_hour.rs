//! What a new user hits first: private targets refused when saved (naming the setting), the front
//! page pointing at the reference, database settings that fail loudly.

mod common;

use std::process::Command;

use axum::http::{Method, Request};
use common::TestApp;
use serde_json::json;

/// With `allow_private_network` off (the default), a webhook endpoint or an automation step whose
/// URL is private is a 400 naming the setting, and nothing is saved; templated hosts wait for use.
async fn private_targets_are_refused_when_saved(backend: common::Backend) {
    let Some(app) = TestApp::start_with(backend, voxd::api::ApiSettings::default()).await else {
        return;
    };
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://localhost/x",
        "http://[::ffff:10.0.0.1]/",
    ] {
        let r = app
            .post(
                "/api/v1/webhook-endpoints",
                &json!({"url": url, "events": ["call.ended"]}),
            )
            .await;
        assert!(
            r.error(400).contains("set allow_private_network to allow it"),
            "{url}: {}",
            r.body
        );
        assert_eq!(r.body["field"], "url");
    }
    let def = |url: &str| {
        json!({"name": "Out", "trigger": {"type": "webhook"}, "steps": [
        {"type": "condition", "field": "trigger.a", "operator": "is_not_empty", "then": [
            {"type": "destination", "url": url}
        ]}]})
    };
    let r = app.post("/api/v1/automations", &def("http://192.168.1.5/crm")).await;
    assert!(r.error(400).contains("allow_private_network"), "{}", r.body);
    assert_eq!(r.body["field"], "steps[0].then[0].url");
    app.post("/api/v1/automations", &def("https://{{trigger.host}}/crm"))
        .await
        .ok(201);
    app.post("/api/v1/automations", &def("https://crm.example.com/{{trigger.id}}"))
        .await
        .ok(201);
    assert_eq!(app.count("webhook_endpoints").await, 0);
    assert_eq!(app.count("automations").await, 2);
    app.cleanup().await;
}

/// The front page is the dashboard's sign-in, which also points at the API reference.
async fn the_front_page_points_at_the_reference(app: &TestApp) {
    let get = |path: &'static str| {
        app.send(
            Request::builder()
                .method(Method::GET)
                .uri(path)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
    };
    let r = get("/").await;
    assert_eq!(r.status.as_u16(), 303);
    assert_eq!(r.header("location"), Some("/sign-in"));
    let page = String::from_utf8(get("/sign-in").await.raw).unwrap();
    assert!(page.contains(r#"href="/docs""#), "{page}");
}

fn voxd(args: &[&str], url: &str) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(args)
        .env("VOXD_DATABASE_URL", url)
        .env_remove("VOXD_CONFIG")
        .output()
        .unwrap()
}

/// A database URL of another kind, or a SQLite file in a folder that does not exist, is an error
/// that says so (it used to become a file path, or a new folder).
#[test]
fn database_settings_fail_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let out = voxd(&["migrate"], "mysql://localhost/voxd");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sqlite://PATH or postgres://"), "{err}");
    let missing = dir.path().join("no/such/dir/x.db");
    let out = voxd(&["migrate"], &format!("sqlite://{}", missing.display()));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not exist"), "{err}");
    assert!(!dir.path().join("no").exists(), "no folder was made");
    // The default data dir is still made.
    let data = dir.path().join("data");
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["migrate", "--data-dir", data.to_str().unwrap()])
        .env_remove("VOXD_DATABASE_URL")
        .env_remove("VOXD_CONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(data.join("voxd.db").exists());
}

mod limits {
    mod sqlite {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn private_targets_are_refused_when_saved() {
            super::super::private_targets_are_refused_when_saved(crate::common::Backend::Sqlite).await;
        }
    }
    mod postgres {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn private_targets_are_refused_when_saved() {
            super::super::private_targets_are_refused_when_saved(crate::common::Backend::Postgres).await;
        }
    }
}

/// A call not dialled yet says when it will ring and why it waits: its time, its window, a retry.
async fn a_waiting_call_says_when_it_will_ring(app: &TestApp) {
    use chrono::{Duration, Utc};
    let script_id = common::caller_id_and_script(app).await;
    let tz: chrono_tz::Tz = "Australia/Sydney".parse().unwrap();
    let local = (Utc::now() - Duration::hours(2)).with_timezone(&tz);
    let (start, end) = (
        local.format("%H:00").to_string(),
        (local + Duration::hours(1)).format("%H:00").to_string(),
    );
    let clock = || std::sync::Arc::new(voxd::clock::ManualClock::new(Utc::now() + Duration::seconds(1)));
    if start < end {
        let window = json!({"start": start, "end": end, "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]});
        let body = json!({"from_number": common::CALLER_ID, "script_id": script_id,
            "contact": {"phone_number": "0412345671"}, "calling_window": window});
        let created = app.post("/api/v1/create-phone-call", &body).await;
        let call = created.ok(201)["call"].clone();
        assert_eq!(call["waiting_for"], "scheduled_time");
        assert_eq!(call["next_attempt_at"], call["scheduled_time"]);
        common::sim_dispatcher(app, clock()).run_once().await.unwrap();
        let id = call["id"].as_str().unwrap();
        let call = app.get(&format!("/api/v1/get-call/{id}")).await.ok(200)["call"].clone();
        assert_eq!(call["waiting_for"], "calling_window", "{call}");
        let w: voxd::domain::call::CallingWindow = serde_json::from_value(window).unwrap();
        let opens = w.next_open(Utc::now() + Duration::seconds(1), tz);
        let at: chrono::DateTime<Utc> = serde_json::from_value(call["next_attempt_at"].clone()).unwrap();
        assert_eq!(at, opens);
    }
    // Nobody answers (a number ending in 6): the retry waits its back-off.
    let body = json!({"from_number": common::CALLER_ID, "script_id": script_id,
        "contact": {"phone_number": "0412345676"}, "retry_policy": {"max_attempts": 2, "backoff_seconds": 60}});
    let id = app.post("/api/v1/create-phone-call", &body).await.ok(201)["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    common::sim_dispatcher(app, clock()).run_once().await.unwrap();
    let call = app.get(&format!("/api/v1/get-call/{id}")).await.ok(200)["call"].clone();
    assert_eq!(call["progress"], "scheduled", "{call}");
    assert_eq!(call["waiting_for"], "retry_backoff");
    let at: chrono::DateTime<Utc> = serde_json::from_value(call["next_attempt_at"].clone()).unwrap();
    assert!(at > Utc::now() + Duration::seconds(50), "{at}");
    // Ended calls wait for nothing.
    let ended =
        json!({"from_number": common::CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0412345672"}});
    let id = app.post("/api/v1/create-phone-call", &ended).await.ok(201)["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    common::sim_dispatcher(app, clock()).run_once().await.unwrap();
    let call = app.get(&format!("/api/v1/get-call/{id}")).await.ok(200)["call"].clone();
    assert!(
        call["next_attempt_at"].is_null() && call["waiting_for"].is_null(),
        "{call}"
    );
}

/// A redelivered delivery counts every try in `attempts` (it used to start again at 0), and still
/// gets a full retry budget.
async fn redelivery_keeps_counting_tries(app: &TestApp) {
    let receiver = common::Receiver::start().await;
    app.post(
        "/api/v1/webhook-endpoints",
        &json!({"url": format!("{}/e", receiver.url), "events": ["call.scheduled"]}),
    )
    .await
    .ok(201);
    let script_id = common::caller_id_and_script(app).await;
    let call =
        json!({"from_number": common::CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0412345671"}});
    app.post("/api/v1/create-phone-call", &call).await.ok(201);
    let runner = common::test_runner(
        app,
        std::sync::Arc::new(voxd::automations::notify::RecordingNotifier::default()),
    );
    runner.run_until_idle(5).await.unwrap();
    let endpoints = app.get("/api/v1/webhook-endpoints").await;
    let endpoint = endpoints.body["endpoints"][0]["id"].as_str().unwrap().to_owned();
    let log = app
        .get(&format!("/api/v1/webhook-endpoints/{endpoint}/deliveries"))
        .await;
    let id = log.body["deliveries"][0]["id"].as_str().unwrap().to_owned();
    app.post(&format!("/api/v1/webhook-deliveries/{id}/redeliver"), &json!({}))
        .await
        .ok(200);
    runner.run_until_idle(5).await.unwrap();
    let d = app.get(&format!("/api/v1/webhook-deliveries/{id}")).await;
    let d = d.ok(200)["delivery"].clone();
    assert_eq!(d["status"], "delivered", "{d}");
    assert_eq!(d["attempts"], 2, "{d}");
    assert_eq!(receiver.received().len(), 2);
}

/// Each event tells of the call as it was when the event happened, even when the worker fans the
/// events out only after the call has ended.
async fn event_payloads_are_snapshots_of_their_moment(app: &TestApp) {
    let receiver = common::Receiver::start().await;
    app.post(
        "/api/v1/webhook-endpoints",
        &json!({"url": format!("{}/e", receiver.url), "events": ["call.scheduled", "call.started", "call.ended"]}),
    )
    .await
    .ok(201);
    let script_id = common::caller_id_and_script(app).await;
    let call =
        json!({"from_number": common::CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0412345671"}});
    app.post("/api/v1/create-phone-call", &call).await.ok(201);
    // The whole call runs before any event is fanned out.
    let clock = std::sync::Arc::new(voxd::clock::ManualClock::new(
        chrono::Utc::now() + chrono::Duration::seconds(1),
    ));
    assert_eq!(common::sim_dispatcher(app, clock).run_once().await.unwrap(), 1);
    let runner = common::test_runner(
        app,
        std::sync::Arc::new(voxd::automations::notify::RecordingNotifier::default()),
    );
    runner.run_until_idle(10).await.unwrap();
    let got = receiver.received();
    let by_type = |t: &str| {
        got.iter()
            .find(|r| r.body["type"] == t)
            .unwrap_or_else(|| panic!("no {t} among {got:?}"))
            .body
            .clone()
    };
    let (scheduled, started, ended) = (
        by_type("call.scheduled"),
        by_type("call.started"),
        by_type("call.ended"),
    );
    assert_eq!(scheduled["data"]["progress"], "scheduled", "{scheduled}");
    assert_eq!(started["data"]["progress"], "in_progress", "{started}");
    assert!(started["data"]["status"].is_null(), "{started}");
    assert!(started["data"]["summary"].is_null(), "{started}");
    assert_eq!(ended["data"]["progress"], "ended");
    assert_eq!(ended["data"]["status"], "completed");
    // Each says when it happened, in order.
    let at = |e: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(e["timestamp"].as_str().unwrap()).unwrap();
    assert!(at(&scheduled) <= at(&started) && at(&started) <= at(&ended));
    assert_eq!(
        app.count("call_snapshots").await,
        0,
        "snapshots go with their outbox rows"
    );
}

on_both_backends!(
    the_front_page_points_at_the_reference,
    a_waiting_call_says_when_it_will_ring,
    redelivery_keeps_counting_tries,
    event_payloads_are_snapshots_of_their_moment,
);

/// Logs written to a file (not a terminal) carry no ANSI colour codes.
#[test]
fn logs_to_a_file_are_plain_text() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["team", "show", "nobody"])
        .env(
            "VOXD_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("v.db").display()),
        )
        .env("RUST_LOG", "debug")
        .env_remove("VOXD_CONFIG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.is_empty());
    assert!(!err.contains('\u{1b}'), "{err}");
}
