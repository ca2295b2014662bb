//! Script versions: every replace is a new version, calls run the version they were created with,
//! versions can be listed, read and restored, and nothing of it crosses teams.

mod common;

use std::sync::Arc;

use axum::http::Method;
use chrono::{Duration, Utc};
use common::{TestApp, CALLER_ID};
use serde_json::{json, Value};
use voxd::clock::ManualClock;

/// The buyer follow-up script with its greeting marked `tag`.
fn tagged(tag: &str) -> Value {
    let mut s = common::example_script("buyer-follow-up");
    s["flows"][0]["steps"][0]["script"] = json!(format!("Say: {tag}. Have you got a minute?"));
    s
}

async fn put(app: &TestApp, id: &str, query: &str, body: &Value) -> common::TestResponse {
    app.call(Method::PUT, &format!("/api/v1/scripts/{id}{query}"), Some(body), &[])
        .await
}

async fn call_at(app: &TestApp, script_id: &str, when: chrono::DateTime<Utc>, phone: &str) -> String {
    let body = json!({"from_number": CALLER_ID, "script_id": script_id, "scheduled_time": when,
        "contact": {"phone_number": phone, "first_name": "Ava"}});
    app.post("/api/v1/create-phone-call", &body).await.ok(201)["call_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn script_version_of(app: &TestApp, call: &str) -> i64 {
    app.get(&format!("/api/v1/get-call/{call}")).await.ok(200)["call"]["script_version"]
        .as_i64()
        .unwrap()
}

async fn calls_keep_the_version_they_were_made_with(app: &TestApp) {
    let script = common::caller_id_and_script(app).await;
    put(app, &script, "", &tagged("Version one")).await.ok(200);
    let v = app.get(&format!("/api/v1/scripts/{script}")).await;
    assert_eq!(v.ok(200)["script"]["version"], 2);

    let now = call_at(app, &script, Utc::now(), "+61412345671").await;
    let later = call_at(app, &script, Utc::now() + Duration::days(2), "+61412345672").await;
    assert_eq!(script_version_of(app, &now).await, 2);

    // An edit leaves both calls on version 2 ...
    let replaced = put(app, &script, "", &tagged("Version three")).await;
    assert_eq!(replaced.ok(200)["script"]["version"], 3);
    assert_eq!(script_version_of(app, &now).await, 2);
    assert_eq!(script_version_of(app, &later).await, 2);

    // ... and the call due now runs version 2, and says so in its result.
    let clock = Arc::new(ManualClock::new(Utc::now() + Duration::seconds(1)));
    assert_eq!(common::sim_dispatcher(app, clock).run_once().await.unwrap(), 1);
    let result = app.get(&format!("/api/v1/get-call-result/{now}")).await;
    let result = result.ok(200)["call"].clone();
    assert_eq!(result["available"], true);
    assert_eq!(result["script_version"], 2);
    assert_eq!(result["script_id"], script.as_str());
    let first = result["transcript"][0]["text"].as_str().unwrap().to_owned();
    assert!(first.starts_with("Version one."), "{first}");

    // Asked to, a replace moves the scheduled call (not the ended one).
    let moved = put(app, &script, "?move_scheduled_calls=true", &tagged("Version four")).await;
    assert_eq!(moved.ok(200)["script"]["version"], 4);
    assert_eq!(script_version_of(app, &later).await, 4);
    assert_eq!(script_version_of(app, &now).await, 2);

    // A bad flag or an invalid script changes nothing.
    put(app, &script, "?move_scheduled_calls=maybe", &tagged("x"))
        .await
        .error(400);
    let mut broken = tagged("Broken");
    broken["main_flow_id"] = json!("nowhere");
    put(app, &script, "", &broken).await.error(400);
    assert_eq!(app.count("script_versions").await, 4);
    let current = app.get(&format!("/api/v1/scripts/{script}")).await;
    assert_eq!(current.ok(200)["script"]["version"], 4);
}

async fn versions_are_listed_read_and_restored(app: &TestApp) {
    let created = app.post("/api/v1/scripts", &tagged("First")).await;
    let created = created.ok(201).clone();
    assert_eq!(created["script"]["version"], 1);
    let id = created["script_id"].as_str().unwrap().to_owned();
    put(app, &id, "", &tagged("Second")).await.ok(200);
    put(app, &id, "", &tagged("Third")).await.ok(200);

    let list = app.get(&format!("/api/v1/scripts/{id}/versions")).await;
    let versions: Vec<i64> = list.ok(200)["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    let newest = app
        .get(&format!("/api/v1/scripts/{id}/versions?order=desc&limit=1"))
        .await;
    let newest = newest.ok(200).clone();
    assert_eq!(newest["versions"][0]["version"], 3);
    let cursor = newest["meta"]["next_cursor"].as_str().unwrap();
    let next = app
        .get(&format!(
            "/api/v1/scripts/{id}/versions?order=desc&limit=1&cursor={cursor}"
        ))
        .await;
    assert_eq!(next.ok(200)["versions"][0]["version"], 2);

    let second = app.get(&format!("/api/v1/scripts/{id}/versions/2")).await;
    let step = &second.ok(200)["version"]["definition"]["flows"][0]["steps"][0]["script"];
    assert_eq!(step, "Say: Second. Have you got a minute?");
    let missing = app.get(&format!("/api/v1/scripts/{id}/versions/9")).await;
    assert!(missing.error(404).contains("no version 9"));
    for bad in ["0", "-1", "two", "99999999999"] {
        app.get(&format!("/api/v1/scripts/{id}/versions/{bad}"))
            .await
            .error(400);
    }

    let restored = app
        .call(
            Method::POST,
            &format!("/api/v1/scripts/{id}/versions/1/restore"),
            None,
            &[],
        )
        .await;
    let restored = restored.ok(200).clone();
    assert_eq!(restored["script"]["version"], 4);
    assert_eq!(
        restored["script"]["definition"]["flows"][0]["steps"][0]["script"],
        "Say: First. Have you got a minute?"
    );
    app.call(
        Method::POST,
        &format!("/api/v1/scripts/{id}/versions/7/restore"),
        None,
        &[],
    )
    .await
    .error(404);
    assert_eq!(app.count("script_versions").await, 4);

    // Another team sees none of it and cannot restore.
    let (_, other) = app.other_team("Other").await;
    app.get_as(&other, &format!("/api/v1/scripts/{id}/versions"))
        .await
        .error(404);
    app.get_as(&other, &format!("/api/v1/scripts/{id}/versions/1"))
        .await
        .error(404);
    let r = app
        .raw(
            Method::POST,
            &format!("/api/v1/scripts/{id}/versions/1/restore"),
            Some(&other),
            "",
        )
        .await;
    r.error(404);
    assert_eq!(app.count("script_versions").await, 4);

    // Deleting the script deletes its versions.
    app.call(Method::DELETE, &format!("/api/v1/scripts/{id}"), None, &[])
        .await
        .ok(200);
    assert_eq!(app.count("script_versions").await, 0);
}

async fn scripts_can_be_tested_before_they_go_live(app: &TestApp) {
    let created = app
        .post("/api/v1/scripts", &common::example_script("buyer-follow-up"))
        .await;
    let id = created.ok(201)["script_id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/scripts/{id}/test");
    let run = json!({"contact": {"first_name": "Ava"}, "cases": [
        {"name": "keen", "persona": "cooperative",
         "expect": {"path": ["greet", "feedback", "offer", "budget"], "outcome": "success", "data": {"budget": 1200000}}},
        {"name": "lines", "lines": ["Sorry, I'm flat out, call me later"], "expect": {"path": ["greet", "feedback"]}},
        {"name": "profile", "persona": {"temperament": "talkative", "profile": {"budget": "900k"}},
         "expect": {"data": {"budget": 900000}}}
    ]});
    let r = app.post(&path, &run).await;
    let body = r.ok(200).clone();
    assert_eq!((body["passed"].as_u64(), body["failed"].as_u64()), (Some(2), Some(1)));
    assert_eq!(body["script_version"], 1);
    let cases = body["cases"].as_array().unwrap();
    assert_eq!(cases[0]["passed"], true);
    assert!(cases[0]["summary"].as_str().unwrap().starts_with("Ava"));
    assert_eq!(cases[1]["passed"], false);
    assert_eq!(cases[1]["path"], json!(["greet"]));
    assert!(cases[1]["failures"][0]
        .as_str()
        .unwrap()
        .contains("path: expected greet → feedback"));
    assert!(cases[2]["transcript"].as_array().unwrap().len() >= 4);

    // Bad runs are refused before anything runs, and nothing is written either way.
    let bad = [
        json!({"cases": []}),
        json!({"cases": (0..51).map(|i| json!({"name": format!("c{i}")})).collect::<Vec<_>>()}),
        json!({"cases": [{"name": "x", "persona": "grumpy"}]}),
        json!({"cases": [{"name": "x", "persona": "busy", "lines": ["hi"]}]}),
        json!({"cases": [{"name": "x", "expect": {"outcome": "great"}}]}),
        json!({"cases": [{"name": "x", "persona": {"temperament": "sleepy"}}]}),
        json!({"cases": "all of them"}),
        json!({"cases": [{"name": "x"}], "extra": true}),
    ];
    for body in bad {
        let r = app.post(&path, &body).await;
        r.error(400);
    }
    let (_, other) = app.other_team("Other").await;
    app.post_as(&other, &path, &run).await.error(404);
    app.post(&format!("/api/v1/scripts/{}/test", uuid::Uuid::now_v7()), &run)
        .await
        .error(404);
    assert_eq!(app.count("calls").await, 0);
    assert_eq!(app.count("script_versions").await, 1);
}

on_both_backends!(
    calls_keep_the_version_they_were_made_with,
    versions_are_listed_read_and_restored,
    scripts_can_be_tested_before_they_go_live
);
