//! Calls through the front door, dispatched by the real dispatcher with the `sim` carrier and a
//! clock the tests move.

mod common;

use std::sync::Arc;

use axum::http::Method;
use chrono::{Duration, Utc};
use common::TestApp;
use serde_json::{json, Value};
use voxd::{clock::ManualClock, dispatcher::Dispatcher};

const FROM: &str = "+61291234567";

/// A script and a caller id for the main team; returns the script id.
async fn setup(app: &TestApp) -> String {
    common::caller_id_and_script(app).await
}

/// The sim dispatcher of the harness, as worker `owner`. Pacing per caller id has its own test;
/// elsewhere every call comes from one number, so the harness turns it off.
fn dispatcher(app: &TestApp, clock: &Arc<ManualClock>, owner: &str) -> Dispatcher {
    common::sim_dispatcher(app, clock.clone()).with_owner(owner)
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Utc::now() + Duration::seconds(1)))
}

fn call_body(script_id: &str, phone: &str) -> Value {
    json!({"from_number": FROM, "script_id": script_id, "contact": {"phone_number": phone, "first_name": "John", "last_name": "Smith"}})
}

async fn create(app: &TestApp, body: &Value) -> String {
    app.post("/api/v1/create-phone-call", body).await.ok(201)["call_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn call(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/get-call/{id}")).await.ok(200)["call"].clone()
}

async fn events(app: &TestApp, id: &str) -> Vec<(i64, String, Option<String>)> {
    let r = app.get(&format!("/api/v1/calls/{id}/events")).await;
    r.ok(200)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["attempt"].as_i64().unwrap(),
                e["progress"].as_str().unwrap().to_owned(),
                e["status"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

async fn the_contract_example_schedules_a_call(app: &TestApp) {
    let script_id = setup(app).await;
    // The contract's example, verbatim but for the script id: its scheduled_time is in the past.
    let body = json!({"from_number": "+61291234567", "script_id": script_id,
        "contact": {"phone_number": "0429069971", "first_name": "John", "last_name": "Smith"},
        "scheduled_time": "2026-02-25T09:00:00Z"});
    let r = app.post("/api/v1/create-phone-call", &body).await;
    let c = &r.ok(201)["call"];
    assert_eq!(c["progress"], "scheduled");
    assert_eq!(c["type"], "outbound");
    assert_eq!(c["to_number"], "+61429069971");
    assert_eq!(c["timezone"], "Australia/Sydney", "the team's, as the contact has none");
    assert!(
        c["scheduled_time"].as_str().unwrap() > "2026-11",
        "a past time means now"
    );
    assert!(c["status"].is_null());
    // The contact was upserted by phone: a second call updates it rather than duplicating it.
    let again = json!({"from_number": "02 9123 4567", "script_id": script_id,
        "contact": {"phone_number": "+61 429 069 971", "first_name": "Johnny", "timezone": "Australia/Perth"}});
    let c2 = app.post("/api/v1/create-phone-call", &again).await.ok(201)["call"].clone();
    assert_eq!(c2["contact_id"], c["contact_id"]);
    assert_eq!(c2["timezone"], "Australia/Perth");
    assert_eq!(app.count("contacts").await, 1);
    let contact = app
        .get(&format!("/api/v1/contacts/{}", c["contact_id"].as_str().unwrap()))
        .await;
    assert_eq!(contact.ok(200)["contact"]["first_name"], "Johnny");
    assert_eq!(contact.body["contact"]["last_name"], "Smith");
}

async fn bad_calls_are_refused_and_write_nothing(app: &TestApp) {
    let script_id = setup(app).await;
    let inbound = app
        .post("/api/v1/scripts", &common::example_script("receptionist"))
        .await
        .ok(201)["script_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let good = call_body(&script_id, "0429069971");
    let mut cases: Vec<(Value, u16, &str)> = Vec::new();
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    cases.push((with("from_number", json!("+61299999999")), 400, "from_number"));
    cases.push((with("from_number", json!(5)), 400, "from_number"));
    cases.push((with("script_id", json!(inbound)), 400, "inbound"));
    cases.push((
        with("script_id", json!(uuid::Uuid::now_v7().to_string())),
        404,
        "Script",
    ));
    cases.push((with("script_id", json!("nope")), 404, "Script"));
    cases.push((
        with("contact", json!({"phone_number": "not a phone"})),
        400,
        "contact.phone_number",
    ));
    cases.push((with("contact", json!({})), 400, "phone_number"));
    cases.push((with("scheduled_time", json!("tomorrow")), 400, "scheduled_time"));
    cases.push((with("latest_time", json!("2020-01-01T00:00:00Z")), 400, "latest_time"));
    cases.push((with("retry_policy", json!({"max_attempts": 11})), 400, "max_attempts"));
    cases.push((with("retry_policy", json!({"retry_on": ["busy"]})), 400, "retry_on"));
    cases.push((
        with("calling_window", json!({"start": "20:00", "end": "09:00"})),
        400,
        "calling_window",
    ));
    cases.push((with("surprise", json!(1)), 400, "surprise"));
    for (body, status, word) in cases {
        let message = app.post("/api/v1/create-phone-call", &body).await.error(status);
        assert!(message.contains(word), "{body} → {message}");
    }
    let (_, other) = app.other_team("globex").await;
    app.post_as(&other, "/api/v1/create-phone-call", &good).await.error(404);
    assert_eq!(app.count("calls").await, 0);
    assert_eq!(app.count("contacts").await, 0);
}

async fn an_answered_call_runs_to_its_result(app: &TestApp) {
    let script_id = setup(app).await;
    let id = create(app, &call_body(&script_id, "0429069971")).await;
    let before = app.get(&format!("/api/v1/get-call-result/{id}")).await;
    assert_eq!(
        before.ok(200)["call"]["available"],
        false,
        "before the call, a documented answer"
    );
    let clock = clock();
    assert_eq!(dispatcher(app, &clock, "w1").run_once().await.unwrap(), 1);
    let c = call(app, &id).await;
    assert_eq!(
        (c["progress"].as_str(), c["status"].as_str(), c["end_reason"].as_str()),
        (Some("ended"), Some("completed"), Some("ai hangup"))
    );
    assert_eq!(c["attempts"], 1);
    let r = app.get(&format!("/api/v1/get-call-result/{id}")).await;
    let res = &r.ok(200)["call"];
    assert_eq!(res["available"], true);
    assert_eq!(res["simulated"], true);
    assert!(res["recording_url"].is_null());
    assert_eq!(res["analysed_by"], "rules");
    assert_eq!(res["success_evaluation"], "successful");
    assert_eq!(res["rating"], 5);
    // The summary says what happened in the callee's terms, with the data collected.
    let summary = res["summary"].as_str().unwrap();
    assert!(summary.starts_with("John is happy to talk"), "{summary}");
    assert!(summary.contains("budget about $1.2M"), "{summary}");
    assert!(res["transcript"][0]["text"].as_str().unwrap().starts_with("Hi John"));
    assert_eq!(res["transcript"][1]["role"], "user");
    let timeline: Vec<String> = events(app, &id).await.into_iter().map(|e| e.1).collect();
    assert_eq!(
        timeline,
        ["scheduled", "dialing", "ringing", "in_progress", "processing", "ended"]
    );
    // Nothing more to do.
    assert_eq!(dispatcher(app, &clock, "w1").run_once().await.unwrap(), 0);
}

async fn every_sim_outcome_is_reachable(app: &TestApp) {
    let script_id = setup(app).await;
    let cases = [
        ("0429069970", json!({}), "completed", "ai hangup"),
        ("0429069975", json!({}), "voicemail", "voicemail"),
        ("0429069976", json!({}), "rang-out", "no answer"),
        ("0429069977", json!({}), "User unavailable", "busy"),
        ("0429069978", json!({}), "User rejected", "rejected"),
        ("0429069979", json!({}), "failed", "failed"),
        ("0429069971", json!({"sim_outcome": "drop"}), "dropout", "dropout"),
        (
            "0429069972",
            json!({"sim_persona": "hangs_up"}),
            "hang-up",
            "user hangup",
        ),
        (
            "0429069973",
            json!({"sim_persona": "silent"}),
            "completed",
            "silence timeout",
        ),
    ];
    let mut ids = Vec::new();
    for (phone, metadata, _, _) in &cases {
        let mut body = call_body(&script_id, phone);
        body["contact"]["metadata"] = metadata.clone();
        ids.push(create(app, &body).await);
    }
    let clock = clock();
    dispatcher(app, &clock, "w1").run_once().await.unwrap();
    for (id, (phone, _, status, reason)) in ids.iter().zip(cases) {
        let c = call(app, id).await;
        assert_eq!(
            (c["status"].as_str().unwrap(), c["end_reason"].as_str().unwrap()),
            (status, reason),
            "{phone}"
        );
        assert_eq!(c["progress"], "ended");
    }
    let voicemail = app.get(&format!("/api/v1/get-call-result/{}", ids[1])).await;
    assert!(voicemail.ok(200)["call"]["transcript"][0]["text"]
        .as_str()
        .unwrap()
        .contains("following up on your inspection"));
    let listed = app.get("/api/v1/calls?status=User%20unavailable").await;
    assert_eq!(listed.ok(200)["calls"].as_array().unwrap().len(), 1);
}

async fn retries_follow_the_policy_until_the_budget_ends(app: &TestApp) {
    let script_id = setup(app).await;
    let mut body = call_body(&script_id, "0429069976"); // rings out every time
    body["retry_policy"] = json!({"max_attempts": 3, "backoff_seconds": 60});
    let id = create(app, &body).await;
    let clock = clock();
    let d = dispatcher(app, &clock, "w1");
    assert_eq!(d.run_once().await.unwrap(), 1);
    let c = call(app, &id).await;
    assert_eq!(
        (c["progress"].as_str(), c["status"].as_str(), c["attempts"].as_i64()),
        (Some("scheduled"), Some("rang-out"), Some(1))
    );
    assert_eq!(d.run_once().await.unwrap(), 0, "not due before the backoff");
    clock.advance(Duration::seconds(61));
    assert_eq!(d.run_once().await.unwrap(), 1);
    clock.advance(Duration::seconds(61));
    assert_eq!(d.run_once().await.unwrap(), 0, "the second backoff doubles");
    clock.advance(Duration::seconds(60));
    assert_eq!(d.run_once().await.unwrap(), 1);
    let c = call(app, &id).await;
    assert_eq!(
        (c["progress"].as_str(), c["attempts"].as_i64()),
        (Some("ended"), Some(3))
    );
    clock.advance(Duration::seconds(3600));
    assert_eq!(d.run_once().await.unwrap(), 0, "the budget is spent");
    let dialed = events(app, &id)
        .await
        .into_iter()
        .filter(|e| e.1 == "dialing")
        .map(|e| e.0)
        .collect::<Vec<_>>();
    assert_eq!(dialed, [1, 2, 3], "each attempt visible on the call");
}

async fn cancel_and_reschedule_only_before_the_call_starts(app: &TestApp) {
    let script_id = setup(app).await;
    let mut later = call_body(&script_id, "0429069971");
    later["scheduled_time"] = json!((Utc::now() + Duration::hours(2)).to_rfc3339());
    let id = create(app, &later).await;
    let new_time = (Utc::now() + Duration::hours(3)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/reschedule-call/{id}"),
            Some(&json!({"scheduled_time": new_time})),
            &[],
        )
        .await;
    assert_eq!(r.ok(200)["scheduled_time"].as_str().unwrap(), new_time);
    app.call(
        Method::PATCH,
        &format!("/api/v1/reschedule-call/{id}"),
        Some(&json!({"scheduled_time": "soon"})),
        &[],
    )
    .await
    .error(400);
    app.call(
        Method::PATCH,
        &format!("/api/v1/reschedule-call/{id}"),
        Some(&json!({})),
        &[],
    )
    .await
    .error(400);
    let r = app.post(&format!("/api/v1/cancel-call/{id}"), &json!({})).await;
    assert_eq!(r.ok(200)["status"], "cancelled");
    let again = app.post(&format!("/api/v1/cancel-call/{id}"), &json!({})).await;
    assert!(again.error(400).contains("cancelled"));
    // A finished call can be neither cancelled nor rescheduled.
    let done = create(app, &call_body(&script_id, "0429069972")).await;
    dispatcher(app, &clock(), "w1").run_once().await.unwrap();
    let r = app.post(&format!("/api/v1/cancel-call/{done}"), &json!({})).await;
    assert!(r.error(400).contains("ended"));
    assert_eq!(r.body["progress"], "ended");
    app.call(
        Method::PATCH,
        &format!("/api/v1/reschedule-call/{done}"),
        Some(&json!({"scheduled_time": new_time})),
        &[],
    )
    .await
    .error(400);
    // Unknown and foreign calls are 404.
    let (_, other) = app.other_team("globex").await;
    app.post_as(&other, &format!("/api/v1/cancel-call/{done}"), &json!({}))
        .await
        .error(404);
    app.get_as(&other, &format!("/api/v1/get-call/{done}")).await.error(404);
    app.get_as(&other, &format!("/api/v1/get-call-result/{done}"))
        .await
        .error(404);
    app.get_as(&other, &format!("/api/v1/calls/{done}/events"))
        .await
        .error(404);
    app.post("/api/v1/cancel-call/nope", &json!({})).await.error(404);
    app.get(&format!("/api/v1/get-call/{}", uuid::Uuid::now_v7()))
        .await
        .error(404);
    // The cancelled call is never dialled.
    let far = Arc::new(ManualClock::new(Utc::now() + Duration::hours(4)));
    assert_eq!(dispatcher(app, &far, "w1").run_once().await.unwrap(), 0);
    assert!(!events(app, &id).await.iter().any(|e| e.1 == "dialing"));
}

async fn the_concurrency_limit_queues_calls(app: &TestApp) {
    let script_id = setup(app).await;
    app.db.set_team_limits(app.team_id, None, Some(2)).await.unwrap();
    for phone in ["0429069971", "0429069972", "0429069973"] {
        create(app, &call_body(&script_id, phone)).await;
    }
    let at = Utc::now() + Duration::seconds(1);
    let first = app.db.claim_due_calls(at, "w1", 60_000, 100, 10, 0).await.unwrap();
    assert_eq!((first.claimed.len(), first.queued), (2, 1));
    let second = app.db.claim_due_calls(at, "w2", 60_000, 100, 10, 0).await.unwrap();
    assert_eq!(
        (second.claimed.len(), second.queued),
        (0, 1),
        "the limit holds across workers"
    );
    let queued = app.get("/api/v1/calls?progress=queued").await;
    assert_eq!(queued.ok(200)["calls"].as_array().unwrap().len(), 1);
    // A line frees up: the queued call goes.
    let done = &first.claimed[0];
    assert!(app
        .db
        .finish_attempt(done.id, "w1", "completed", "ai hangup", None, json!({}), at)
        .await
        .unwrap());
    assert!(
        !app.db
            .finish_attempt(done.id, "w2", "completed", "ai hangup", None, json!({}), at)
            .await
            .unwrap(),
        "only the lease holder writes"
    );
    let third = app.db.claim_due_calls(at, "w2", 60_000, 100, 10, 0).await.unwrap();
    assert_eq!(third.claimed.len(), 1);
}

async fn a_lost_lease_is_recovered_once(app: &TestApp) {
    let script_id = setup(app).await;
    let mut body = call_body(&script_id, "0429069971");
    body["retry_policy"] = json!({"max_attempts": 2, "backoff_seconds": 0});
    let id = create(app, &body).await;
    let at = Utc::now() + Duration::seconds(1);
    let dead = app
        .db
        .claim_due_calls(at, "dead-worker", 60_000, 100, 10, 0)
        .await
        .unwrap();
    assert_eq!(dead.claimed.len(), 1);
    let early = app
        .db
        .claim_due_calls(at + Duration::seconds(30), "w2", 60_000, 100, 10, 0)
        .await
        .unwrap();
    assert_eq!(
        (early.claimed.len(), early.recovered),
        (0, 0),
        "never dialled twice at once"
    );
    let late = app
        .db
        .claim_due_calls(at + Duration::seconds(61), "w2", 60_000, 100, 10, 0)
        .await
        .unwrap();
    assert_eq!(
        (late.recovered, late.claimed.len()),
        (1, 1),
        "recovered, then retried by the live worker"
    );
    assert!(!app
        .db
        .finish_attempt(late.claimed[0].id, "dead-worker", "completed", "x", None, json!({}), at)
        .await
        .unwrap());
    let dialed: Vec<i64> = events(app, &id)
        .await
        .into_iter()
        .filter(|e| e.1 == "dialing")
        .map(|e| e.0)
        .collect();
    assert_eq!(dialed, [1, 2]);
}

async fn latest_time_expires_and_windows_wait(app: &TestApp) {
    let script_id = setup(app).await;
    let mut body = call_body(&script_id, "0429069971");
    body["latest_time"] = json!((Utc::now() + Duration::minutes(1)).to_rfc3339());
    let expiring = create(app, &body).await;
    let late = Arc::new(ManualClock::new(Utc::now() + Duration::minutes(2)));
    dispatcher(app, &late, "w1").run_once().await.unwrap();
    let c = call(app, &expiring).await;
    assert_eq!(
        (c["progress"].as_str(), c["status"].as_str(), c["end_reason"].as_str()),
        (Some("ended"), Some("failed"), Some("expired"))
    );
    assert_eq!(c["attempts"], 0, "it never rang");

    // A window that is closed now (an hour that has just passed, every day) waits for tomorrow.
    let tz: chrono_tz::Tz = "Australia/Sydney".parse().unwrap();
    let local = (Utc::now() - Duration::hours(2)).with_timezone(&tz);
    let start = local.format("%H:00").to_string();
    let end = (local + Duration::hours(1)).format("%H:00").to_string();
    if start < end {
        let mut body = call_body(&script_id, "0429069972");
        body["calling_window"] =
            json!({"start": start, "end": end, "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]});
        let waiting = create(app, &body).await;
        let d = dispatcher(app, &clock(), "w1");
        assert_eq!(d.run_once().await.unwrap(), 0);
        let c = call(app, &waiting).await;
        assert_eq!(c["progress"], "scheduled");
        let window: voxd::domain::call::CallingWindow = serde_json::from_value(body["calling_window"].clone()).unwrap();
        let opens = window.next_open(Utc::now() + Duration::seconds(1), tz);
        assert!(opens > Utc::now() + Duration::hours(20), "tomorrow, not today");
        let tomorrow = Arc::new(ManualClock::new(opens + Duration::minutes(1)));
        let n = dispatcher(app, &tomorrow, "w1").run_once().await.unwrap();
        assert_eq!(
            n,
            1,
            "rings when the window opens: {:?} {}",
            events(app, &waiting).await,
            call(app, &waiting).await
        );
    }
}

async fn list_filters_and_pages(app: &TestApp) {
    let script_id = setup(app).await;
    let mut ids = Vec::new();
    for phone in ["0429069970", "0429069976", "0429069971", "0429069977"] {
        ids.push(create(app, &call_body(&script_id, phone)).await);
    }
    dispatcher(app, &clock(), "w1").run_once().await.unwrap();
    let page1 = app.get("/api/v1/calls?limit=3").await;
    let b = page1.ok(200).clone();
    assert_eq!(b["calls"].as_array().unwrap().len(), 3);
    let cursor = b["meta"]["next_cursor"].as_str().unwrap();
    let page2 = app.get(&format!("/api/v1/calls?limit=3&cursor={cursor}")).await;
    assert_eq!(page2.ok(200)["calls"][0]["id"].as_str().unwrap(), ids[3]);
    let completed = app
        .get("/api/v1/calls?status=completed&type=outbound&progress=ended")
        .await;
    assert_eq!(completed.ok(200)["calls"].as_array().unwrap().len(), 2);
    let contact = call(app, &ids[1]).await["contact_id"].as_str().unwrap().to_owned();
    let by_contact = app
        .get(&format!("/api/v1/calls?contact_id={contact}&script_id={script_id}"))
        .await;
    assert_eq!(by_contact.ok(200)["calls"].as_array().unwrap().len(), 1);
    let future = (Utc::now() + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let after = app.get(&format!("/api/v1/calls?created_after={future}")).await;
    assert_eq!(after.ok(200)["calls"].as_array().unwrap().len(), 0);
    let before = app.get(&format!("/api/v1/calls?created_before={future}")).await;
    assert_eq!(before.ok(200)["calls"].as_array().unwrap().len(), 4);
    for bad in [
        "status=lost",
        "progress=flying",
        "type=fax",
        "contact_id=x",
        "created_after=yesterday",
        "limit=0",
        "cursor=zz",
    ] {
        app.get(&format!("/api/v1/calls?{bad}")).await.error(400);
    }
    let (_, other) = app.other_team("globex").await;
    assert_eq!(
        app.get_as(&other, "/api/v1/calls").await.ok(200)["calls"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

async fn web_calls_get_credentials_and_can_be_ended(app: &TestApp) {
    let script_id = setup(app).await;
    let contact = app
        .post("/api/v1/create-contact", &json!({"phone_number": "0429069971"}))
        .await
        .ok(201)["contact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // The contract's example shape.
    let r = app
        .post(
            "/api/v1/create-web-call",
            &json!({"script_id": script_id, "contact_id": contact}),
        )
        .await;
    let b = r.ok(201).clone();
    let id = b["call_id"].as_str().unwrap().to_owned();
    assert_eq!(b["call"]["type"], "web");
    assert_eq!(b["call"]["progress"], "ringing");
    let web = &b["web_call"];
    assert_eq!(web["call_uri"], format!("sip:{id}@sip.voxd.test"));
    let (user, pass) = (web["username"].as_str().unwrap(), web["password"].as_str().unwrap());
    assert!(user.ends_with(&format!(":{id}")));
    assert!(
        voxd::domain::web_call::verify(common::WEB_SECRET, user, pass, Utc::now()),
        "the gateway can verify them"
    );
    assert!(
        !voxd::domain::web_call::verify(common::WEB_SECRET, user, pass, Utc::now() + Duration::minutes(6)),
        "short-lived"
    );
    assert!(web["ice_servers"][0]["username"].is_null(), "STUN needs no credentials");
    assert_eq!(web["ice_servers"][1]["username"], user);
    // The dispatcher leaves web calls alone.
    assert_eq!(dispatcher(app, &clock(), "w1").run_once().await.unwrap(), 0);

    let ended = app.post(&format!("/api/v1/end-web-call/{id}"), &json!({})).await;
    let e = ended.ok(200);
    assert_eq!(
        (e["status"].as_str(), e["end_reason"].as_str(), e["progress"].as_str()),
        (Some("completed"), Some("api_ended"), Some("ended"))
    );
    assert!(app
        .post(&format!("/api/v1/end-web-call/{id}"), &json!({}))
        .await
        .error(400)
        .contains("no longer active"));
    let second = app
        .post(
            "/api/v1/create-web-call",
            &json!({"script_id": script_id, "contact_id": contact}),
        )
        .await
        .ok(201)["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let empty = app
        .raw(
            Method::POST,
            &format!("/api/v1/end-web-call/{second}"),
            Some(&app.key),
            "",
        )
        .await;
    assert_eq!(empty.ok(200)["status"], "completed", "the body is optional");
    let third = app
        .post(
            "/api/v1/create-web-call",
            &json!({"script_id": script_id, "contact_id": contact}),
        )
        .await
        .ok(201)["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(&format!("/api/v1/end-web-call/{third}"), &json!({"status": "exploded"}))
        .await
        .error(400);
    let custom = app
        .post(
            &format!("/api/v1/end-web-call/{third}"),
            &json!({"status": "hang-up", "end_reason": "user hangup"}),
        )
        .await;
    assert_eq!(custom.ok(200)["status"], "hang-up");

    // Bad input, other teams, phone calls.
    for (body, status) in [
        (json!({"script_id": script_id}), 400),
        (json!({"script_id": script_id, "contact_id": 7}), 400),
        (
            json!({"script_id": uuid::Uuid::now_v7().to_string(), "contact_id": contact}),
            404,
        ),
        (json!({"script_id": script_id, "contact_id": "nope"}), 404),
    ] {
        app.post("/api/v1/create-web-call", &body).await.error(status);
    }
    let (_, other) = app.other_team("globex").await;
    app.post_as(
        &other,
        "/api/v1/create-web-call",
        &json!({"script_id": script_id, "contact_id": contact}),
    )
    .await
    .error(404);
    app.post_as(&other, &format!("/api/v1/end-web-call/{third}"), &json!({}))
        .await
        .error(404);
    let phone = create(app, &call_body(&script_id, "0429069972")).await;
    assert!(app
        .post(&format!("/api/v1/end-web-call/{phone}"), &json!({}))
        .await
        .error(400)
        .contains("not a web call"));
    app.post("/api/v1/end-web-call/nope", &json!({})).await.error(404);
    assert_eq!(app.count("calls").await, 4);
}

async fn caller_ids_are_paced(app: &TestApp) {
    let script_id = setup(app).await;
    for phone in ["0429069971", "0429069972", "0429069973"] {
        create(app, &call_body(&script_id, phone)).await;
    }
    let at = Utc::now() + Duration::seconds(1);
    let first = app.db.claim_due_calls(at, "w1", 60_000, 100, 10, 1000).await.unwrap();
    assert_eq!(
        (first.claimed.len(), first.paced),
        (1, 2),
        "one call per second from one caller id"
    );
    let soon = app
        .db
        .claim_due_calls(at + Duration::milliseconds(500), "w1", 60_000, 100, 10, 1000)
        .await
        .unwrap();
    assert_eq!((soon.claimed.len(), soon.paced), (0, 2));
    let later = app
        .db
        .claim_due_calls(at + Duration::milliseconds(1001), "w1", 60_000, 100, 10, 1000)
        .await
        .unwrap();
    assert_eq!((later.claimed.len(), later.paced), (1, 1));
    assert_eq!(
        app.get("/api/v1/calls?progress=scheduled").await.ok(200)["calls"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// Starts four dispatcher passes on another task and returns once both sides are at the start line,
/// so what the caller does next races the passes' claims.
async fn passes_racing_this_task(d: &Dispatcher) -> tokio::task::JoinHandle<()> {
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let passes = {
        let (d, barrier) = (d.clone(), barrier.clone());
        tokio::spawn(async move {
            barrier.wait().await;
            for _ in 0..4 {
                d.run_once().await.unwrap();
            }
        })
    };
    barrier.wait().await;
    passes
}

/// Cancels race the dispatcher: a pass claims (and runs) while a client cancels every call, call by
/// call, in the opposite order. Whatever wins, a cancelled call was never dialled, a refused cancel
/// names a call that was dialled exactly once, and once the dispatcher is done every call is either
/// cancelled or ended: none is lost between the two. The team's limit (3) keeps some calls queued
/// while the race runs, so cancels meet both scheduled and queued calls.
async fn cancel_racing_the_claim_never_dials_a_cancelled_call(app: &TestApp) {
    let script_id = setup(app).await;
    app.db.set_team_limits(app.team_id, None, Some(3)).await.unwrap();
    for round in 0..4 {
        let mut ids = Vec::new();
        for i in 0..8 {
            ids.push(create(app, &call_body(&script_id, &format!("04290699{round}{i}"))).await);
        }
        let d = dispatcher(app, &clock(), "w1");
        let passes = passes_racing_this_task(&d).await;
        let mut outcomes = Vec::new();
        for id in ids.iter().rev() {
            let r = app.post(&format!("/api/v1/cancel-call/{id}"), &json!({})).await;
            outcomes.push((id.clone(), r.status.as_u16(), r.body.clone()));
        }
        passes.await.unwrap();
        // Bounded: whatever was left due is taken by a few more passes.
        for _ in 0..10 {
            if d.run_once().await.unwrap() == 0 {
                break;
            }
        }
        for (id, status, body) in outcomes {
            let c = call(app, &id).await;
            let dials = events(app, &id).await.iter().filter(|e| e.1 == "dialing").count();
            match status {
                200 => {
                    assert_eq!(c["progress"], "cancelled", "{c}");
                    assert_eq!(dials, 0, "a cancelled call was dialled: {:?}", events(app, &id).await);
                }
                400 => {
                    assert!(
                        body["message"].as_str().unwrap().contains("no longer be cancelled"),
                        "{body}"
                    );
                    assert_eq!(c["progress"], "ended", "{c}");
                    assert_eq!(dials, 1);
                }
                other => panic!("cancel answered {other}: {body}"),
            }
        }
    }
    let left = app.get("/api/v1/calls?progress=scheduled").await.ok(200)["calls"]
        .as_array()
        .unwrap()
        .len()
        + app.get("/api/v1/calls?progress=queued").await.ok(200)["calls"]
            .as_array()
            .unwrap()
            .len();
    assert_eq!(left, 0, "no call left behind");
}

/// Reschedules race the dispatcher the same way. A rescheduled call was not dialled before its
/// new time and is dialled exactly once after it; a refused reschedule names a call that was
/// dialled once; no call is lost or dialled twice.
async fn reschedule_racing_the_claim_never_loses_a_call(app: &TestApp) {
    let script_id = setup(app).await;
    app.db.set_team_limits(app.team_id, None, Some(3)).await.unwrap();
    let later = (Utc::now() + Duration::hours(1)).to_rfc3339();
    for round in 0..4 {
        let mut ids = Vec::new();
        for i in 0..8 {
            ids.push(create(app, &call_body(&script_id, &format!("04290699{round}{i}"))).await);
        }
        let d = dispatcher(app, &clock(), "w1");
        let passes = passes_racing_this_task(&d).await;
        let mut outcomes = Vec::new();
        for id in ids.iter().rev() {
            let r = app
                .call(
                    Method::PATCH,
                    &format!("/api/v1/reschedule-call/{id}"),
                    Some(&json!({"scheduled_time": later})),
                    &[],
                )
                .await;
            outcomes.push((id.clone(), r.status.as_u16(), r.body.clone()));
        }
        passes.await.unwrap();
        for _ in 0..10 {
            if d.run_once().await.unwrap() == 0 {
                break;
            }
        }
        for (id, status, body) in &outcomes {
            let c = call(app, id).await;
            let dials = events(app, id).await.iter().filter(|e| e.1 == "dialing").count();
            match status {
                200 => {
                    assert_eq!(c["progress"], "scheduled", "{c}");
                    assert_eq!(dials, 0, "dialled before its new time: {:?}", events(app, id).await);
                }
                400 => {
                    assert!(
                        body["message"].as_str().unwrap().contains("no longer be rescheduled"),
                        "{body}"
                    );
                    assert_eq!(c["progress"], "ended", "{c}");
                    assert_eq!(dials, 1);
                }
                other => panic!("reschedule answered {other}: {body}"),
            }
        }
    }
    // At the new time, every rescheduled call rings, once.
    let then = Arc::new(ManualClock::new(Utc::now() + Duration::hours(1) + Duration::seconds(1)));
    let d = dispatcher(app, &then, "w2");
    for _ in 0..20 {
        if d.run_once().await.unwrap() == 0 {
            break;
        }
    }
    let all = app.get("/api/v1/calls?limit=200").await.ok(200)["calls"].clone();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 32);
    for c in all {
        let id = c["id"].as_str().unwrap();
        assert_eq!(c["progress"], "ended", "{c}");
        let dials = events(app, id).await.iter().filter(|e| e.1 == "dialing").count();
        assert_eq!(dials, 1, "{id} dialled {dials} times");
    }
}

/// Runs the `voxd` binary on the app's database.
fn voxd(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(args)
        .env("VOXD_DATABASE_URL", &app.database_url)
        .env_remove("VOXD_CONFIG")
        .output()
        .expect("run voxd")
}

/// An hour's window, every day, that closed an hour ago in `tz` (None when it would wrap midnight).
fn closed_window(tz: chrono_tz::Tz) -> Option<(String, String)> {
    let local = (Utc::now() - Duration::hours(2)).with_timezone(&tz);
    let start = local.format("%H:00").to_string();
    let end = (local + Duration::hours(1)).format("%H:00").to_string();
    (start < end).then_some((start, end))
}

/// The team's default window (set with `voxd team set-calling-window`) holds calls that have no
/// window of their own; a call's own window overrides it; `--none` removes it.
async fn the_team_default_window_applies_to_calls_without_one(app: &TestApp) {
    let script_id = setup(app).await;
    let sydney: chrono_tz::Tz = "Australia/Sydney".parse().unwrap();
    let Some((start, end)) = closed_window(sydney) else {
        return;
    };
    let team = app.team_id.to_string();
    let out = voxd(
        app,
        &[
            "team",
            "set-calling-window",
            &team,
            "--start",
            &start,
            "--end",
            &end,
            "--days",
            "mon,tue,wed,thu,fri,sat,sun",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8(voxd(app, &["team", "show", &team]).stdout).unwrap();
    assert!(
        shown.contains(&format!("calling_window: mon,tue,wed,thu,fri,sat,sun {start}-{end}")),
        "{shown}"
    );
    let waits = create(app, &call_body(&script_id, "0429069971")).await;
    assert!(
        call(app, &waits).await["calling_window"].is_null(),
        "the call has no window of its own"
    );
    let mut own = call_body(&script_id, "0429069972");
    own["calling_window"] =
        json!({"start": "00:00", "end": "23:59", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]});
    let rings = create(app, &own).await;
    // 00:00–23:59 is shut for the last minute of the day: dial a few minutes later then (the
    // team's window, shut an hour ago, stays shut).
    let mut at = Utc::now() + Duration::seconds(1);
    if at.with_timezone(&sydney).format("%H:%M").to_string().as_str() >= "23:58" {
        at += Duration::minutes(5);
    }
    let d = dispatcher(app, &Arc::new(ManualClock::new(at)), "w1");
    let dialled = d.run_once().await.unwrap();
    assert_eq!(
        dialled,
        1,
        "only the call with its own open window rings: {}",
        call(app, &rings).await
    );
    assert_eq!(call(app, &rings).await["progress"], "ended");
    let c = call(app, &waits).await;
    assert_eq!(c["progress"], "scheduled");
    let window: voxd::domain::call::CallingWindow = serde_json::from_value(
        json!({"start": start, "end": end, "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}),
    )
    .unwrap();
    let opens = window.next_open(Utc::now() + Duration::seconds(1), sydney);
    assert!(opens > Utc::now() + Duration::hours(20), "tomorrow's opening");
    let tomorrow = Arc::new(ManualClock::new(opens + Duration::minutes(1)));
    assert_eq!(
        dispatcher(app, &tomorrow, "w1").run_once().await.unwrap(),
        1,
        "rings when the team window opens"
    );

    // Removed: a new call rings at once.
    let out = voxd(app, &["team", "set-calling-window", &team, "--none"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown = String::from_utf8(voxd(app, &["team", "show", &team]).stdout).unwrap();
    assert!(shown.contains("calling_window: none"), "{shown}");
    create(app, &call_body(&script_id, "0429069973")).await;
    assert_eq!(dispatcher(app, &clock(), "w1").run_once().await.unwrap(), 1);
    // Bad windows are refused and change nothing.
    for args in [
        vec!["--start", "25:00", "--end", "10:00"],
        vec!["--start", "10:00", "--end", "09:00"],
        vec!["--start", "09:00", "--end", "10:00", "--days", "funday"],
        vec!["--start", "09:00"],
    ] {
        let mut all = vec!["team", "set-calling-window", team.as_str()];
        all.extend(args.iter());
        assert!(!voxd(app, &all).status.success(), "{args:?}");
    }
    assert!(app.db.team_calling_window(app.team_id).await.unwrap().is_none());
}

/// The callee's zone: the contact's, else the number's country's (one zone), else the team's.
async fn the_callee_time_zone_comes_from_contact_number_or_team(app: &TestApp) {
    let script_id = setup(app).await;
    let zone = |phone: &str, tz: Option<&str>| {
        let mut b = call_body(&script_id, phone);
        if let Some(tz) = tz {
            b["contact"]["timezone"] = json!(tz);
        }
        b
    };
    for (body, expected) in [
        (zone("+447400123456", None), "Europe/London"),
        (zone("+33612345678", Some("America/Cayenne")), "America/Cayenne"),
        (zone("0429069971", None), "Australia/Sydney"),
        (zone("+14155552671", None), "Australia/Sydney"),
    ] {
        let c = app.post("/api/v1/create-phone-call", &body).await.ok(201)["call"].clone();
        assert_eq!(c["timezone"], expected, "{body}");
    }
}

/// Create-phone-call's `object`: checked against its type, upserted, linked to the contact and to
/// the call, readable on the call; refused input writes nothing at all.
async fn object_data_is_validated_and_linked(app: &TestApp) {
    let script_id = setup(app).await;
    let property = app
        .post(
            "/api/v1/object-types",
            &json!({"type_name": "property", "display_name": "Property", "validation_mode": "strict",
                    "schema": {"address": "string", "bedrooms": "number"}}),
        )
        .await
        .ok(201)["object_type_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut body = call_body(&script_id, "0429069971");
    body["object"] = json!({"type_name": "property", "data": {"id": "P1", "address": "1 Main St", "bedrooms": 3}});
    let r = app.post("/api/v1/create-phone-call", &body).await;
    let b = r.ok(201).clone();
    let object_id = b["object"]["id"].as_str().unwrap().to_owned();
    assert_eq!(b["call"]["object_id"], object_id);
    assert_eq!(b["object"]["type_name"], "property");
    let got = app
        .get(&format!("/api/v1/get-call/{}", b["call_id"].as_str().unwrap()))
        .await;
    assert_eq!(got.ok(200)["object"]["data"]["address"], "1 Main St");
    let object = app.get(&format!("/api/v1/objects/{object_id}")).await;
    assert_eq!(
        object.ok(200)["object"]["contacts"][0]["contact_id"],
        b["call"]["contact_id"],
        "linked to the call's contact"
    );
    // The same key again (by type id this time) updates the object rather than duplicating it.
    body["object"] =
        json!({"object_type_id": property, "data": {"id": "P1", "address": "1 Main Street", "bedrooms": 4}});
    let again = app.post("/api/v1/create-phone-call", &body).await.ok(201).clone();
    assert_eq!(again["object"]["id"], object_id);
    assert_eq!(app.count("objects").await, 1);

    // Refusals: nothing written (the contact would be new).
    let (calls, contacts, objects, links) = (
        app.count("calls").await,
        app.count("contacts").await,
        app.count("objects").await,
        app.count("object_contacts").await,
    );
    let (_, other_key) = app.other_team("globex").await;
    let foreign = app
        .post_as(
            &other_key,
            "/api/v1/object-types",
            &json!({"type_name": "deal", "display_name": "Deal", "schema": {"amount": "number"}}),
        )
        .await
        .ok(201)["object_type_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fresh = |object: Value| {
        let mut b = call_body(&script_id, "0429069972");
        b["object"] = object;
        b
    };
    for (object, status, word) in [
        (json!({"data": {"address": "x"}}), 400, "object.type_name"),
        (json!({"type_name": "property"}), 400, "data"),
        (json!({"type_name": "nothing", "data": {}}), 404, "object type"),
        (
            json!({"object_type_id": foreign, "data": {"amount": 1}}),
            404,
            "object type",
        ),
        (json!({"type_name": "deal", "data": {"amount": 1}}), 404, "object type"),
        (
            json!({"type_name": "property", "data": {"address": 7, "bedrooms": "three"}}),
            400,
            "object.data",
        ),
        (json!({"type_name": "property", "data": "1 Main St"}), 400, "data"),
        (
            json!({"type_name": "property", "data": {}, "upsert_key": "$.nope"}),
            400,
            "object.upsert_key",
        ),
        (
            json!({"type_name": "property", "data": {}, "colour": "red"}),
            400,
            "colour",
        ),
        (json!("P1"), 400, "object"),
    ] {
        let message = app
            .post("/api/v1/create-phone-call", &fresh(object.clone()))
            .await
            .error(status);
        assert!(message.contains(word), "{object} → {message}");
    }
    let strict = app
        .post(
            "/api/v1/create-phone-call",
            &fresh(json!({"type_name": "property", "data": {"bedrooms": "three"}})),
        )
        .await;
    assert!(
        strict.body["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{}",
        strict.body
    );

    // A refusal found inside the write (a unique-by-contact type whose contact has another object)
    // rolls back the contact's update too.
    app.post(
        "/api/v1/object-types",
        &json!({"type_name": "listing", "display_name": "Listing", "unique_by_contact": true, "schema": {"id": "string"}}),
    )
    .await
    .ok(201);
    let mut first = call_body(&script_id, "0429069971");
    first["object"] = json!({"type_name": "listing", "data": {"id": "L1"}});
    app.post("/api/v1/create-phone-call", &first).await.ok(201);
    app.post(
        "/api/v1/upsert-object",
        &json!({"type_name": "listing", "data": {"id": "L2"}}),
    )
    .await
    .ok(201);
    let before = (
        app.count("calls").await,
        app.count("contacts").await,
        app.count("objects").await,
        app.count("object_contacts").await,
    );
    let mut clash = call_body(&script_id, "0429069971");
    clash["contact"]["first_name"] = json!("Renamed");
    clash["object"] = json!({"type_name": "listing", "data": {"id": "L2"}});
    app.post("/api/v1/create-phone-call", &clash).await.error(409);
    assert_eq!(
        (
            app.count("calls").await,
            app.count("contacts").await,
            app.count("objects").await,
            app.count("object_contacts").await,
        ),
        before
    );
    let contact_id = again["call"]["contact_id"].as_str().unwrap();
    let contact = app.get(&format!("/api/v1/contacts/{contact_id}")).await;
    assert_eq!(
        contact.ok(200)["contact"]["first_name"],
        "John",
        "the contact's update was rolled back"
    );
    assert_eq!(
        (calls + 1, contacts, objects + 2, links + 1),
        before,
        "only the listing call and objects were written since the refusals"
    );

    // The script sees the call's object as {{objects.<type_name>.*}}.
    let mut script = common::example_script("buyer-follow-up");
    script["voicemail_message"] = json!("Calling about {{objects.property.address}}.");
    let vm_script = app.post("/api/v1/scripts", &script).await.ok(201)["script_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut body = call_body(&vm_script, "0429069975"); // voicemail
    body["object"] = json!({"type_name": "property", "data": {"id": "P9", "address": "9 Bay Rd", "bedrooms": 2}});
    let id = create(app, &body).await;
    dispatcher(app, &clock(), "w1").run_once().await.unwrap();
    let r = app.get(&format!("/api/v1/get-call-result/{id}")).await;
    assert_eq!(r.ok(200)["call"]["transcript"][0]["text"], "Calling about 9 Bay Rd.");
}

/// Calls to one new number created at the same moment all succeed and share one contact (on
/// PostgreSQL the contact upserts run side by side; the insert that loses updates the winner's row).
async fn concurrent_calls_to_a_new_number_share_one_contact(app: &TestApp) {
    let script_id = setup(app).await;
    let requests = (0..12)
        .map(|i| {
            let body = json!({"from_number": FROM, "script_id": script_id,
                "contact": {"phone_number": "0412345001", "first_name": format!("Caller{i}")}});
            ("/api/v1/create-phone-call".to_owned(), body)
        })
        .collect();
    assert_eq!(common::post_all_at_once(app, requests).await, vec![201; 12]);
    assert_eq!(app.count("contacts").await, 1);
    assert_eq!(app.count("calls").await, 12);
}

on_both_backends!(
    concurrent_calls_to_a_new_number_share_one_contact,
    the_team_default_window_applies_to_calls_without_one,
    the_callee_time_zone_comes_from_contact_number_or_team,
    object_data_is_validated_and_linked,
    cancel_racing_the_claim_never_dials_a_cancelled_call,
    reschedule_racing_the_claim_never_loses_a_call,
    caller_ids_are_paced,
    web_calls_get_credentials_and_can_be_ended,
    the_contract_example_schedules_a_call,
    bad_calls_are_refused_and_write_nothing,
    an_answered_call_runs_to_its_result,
    every_sim_outcome_is_reachable,
    retries_follow_the_policy_until_the_budget_ends,
    cancel_and_reschedule_only_before_the_call_starts,
    the_concurrency_limit_queues_calls,
    a_lost_lease_is_recovered_once,
    latest_time_expires_and_windows_wait,
    list_filters_and_pages,
);
