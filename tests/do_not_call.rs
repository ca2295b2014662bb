//! The do-not-call list through the front door: the list itself, bad input, other teams, CSV
//! import, and the calls it stops (at create, at dial time, and when the callee asks).

mod common;

use std::sync::Arc;

use axum::http::Method;
use chrono::{Duration, Utc};
use common::{TestApp, CALLER_ID};
use serde_json::{json, Value};
use voxd::clock::ManualClock;

/// The error's code, once its status and envelope are checked.
fn code(r: &common::TestResponse, status: u16) -> String {
    r.error(status);
    r.body["code"].as_str().unwrap_or_default().to_owned()
}

async fn list(app: &TestApp, query: &str) -> Value {
    app.get(&format!("/api/v1/dnc{query}")).await.ok(200).clone()
}

async fn import(app: &TestApp, content_type: &str, csv: &str) -> common::TestResponse {
    app.post_csv("/api/v1/dnc/import", content_type, csv).await
}

fn call_body(script_id: &str, phone: &str, metadata: Value) -> Value {
    json!({"from_number": CALLER_ID, "script_id": script_id,
           "contact": {"phone_number": phone, "first_name": "John", "metadata": metadata}})
}

async fn dispatch(app: &TestApp) {
    let clock = Arc::new(ManualClock::new(Utc::now() + Duration::seconds(1)));
    common::sim_dispatcher(app, clock).run_once().await.unwrap();
}

async fn the_list_round_trips(app: &TestApp) {
    let r = app
        .post(
            "/api/v1/dnc",
            &json!({"phone_number": "0429 069 971", "reason": "asked by email"}),
        )
        .await;
    let entry = &r.ok(201)["entry"];
    assert_eq!(entry["phone_number"], "+61429069971");
    assert_eq!(entry["reason"], "asked by email");
    // Listed already, in another form: the first entry stands.
    let again = app
        .post(
            "/api/v1/dnc",
            &json!({"phone_number": "+61 429 069 971", "reason": "again"}),
        )
        .await;
    assert_eq!(again.ok(200)["entry"]["reason"], "asked by email");
    // Checked in any form; `+` as is or encoded.
    for form in ["+61429069971", "%2B61429069971", "0429069971"] {
        let r = app.get(&format!("/api/v1/dnc/{form}")).await;
        assert_eq!(r.ok(200)["entry"]["phone_number"], "+61429069971", "{form}");
    }
    // Pages, oldest first by default.
    for n in ["0429069972", "0429069973"] {
        app.post("/api/v1/dnc", &json!({"phone_number": n})).await.ok(201);
    }
    let first = list(app, "?limit=2").await;
    let numbers: Vec<&str> = first["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["phone_number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, ["+61429069971", "+61429069972"]);
    assert!(first["entries"][1]["reason"].is_null());
    let cursor = first["meta"]["next_cursor"].as_str().expect("a next page");
    let second = list(app, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(second["entries"][0]["phone_number"], "+61429069973");
    assert_eq!(second["entries"].as_array().unwrap().len(), 1);
    let newest = list(app, "?order=desc&limit=1").await;
    assert_eq!(newest["entries"][0]["phone_number"], "+61429069973");
    // Removed, then gone.
    let r = app.call(Method::DELETE, "/api/v1/dnc/0429069971", None, &[]).await;
    assert_eq!(r.ok(200)["phone_number"], "+61429069971");
    assert_eq!(code(&app.get("/api/v1/dnc/0429069971").await, 404), "not_found");
    let r = app.call(Method::DELETE, "/api/v1/dnc/0429069971", None, &[]).await;
    assert_eq!(code(&r, 404), "not_found");
    assert_eq!(app.count("do_not_call").await, 2);
}

async fn bad_input_is_refused_and_writes_nothing(app: &TestApp) {
    let long = "x".repeat(501);
    let cases = [
        (json!({}), "phone_number"),
        (json!({"phone_number": 429069971}), "phone_number"),
        (json!({"phone_number": "hello"}), "phone_number"),
        (json!({"phone_number": ""}), "phone_number"),
        (json!({"phone_number": "1".repeat(40)}), "phone_number"),
        (json!({"phone_number": "0429069971", "reason": long}), "reason"),
        (json!({"phone_number": "0429069971", "reason": 5}), "reason"),
        (json!({"phone_number": "0429069971", "why": "x"}), "why"),
        (json!(["0429069971"]), ""),
    ];
    for (body, field) in cases {
        let r = app.post("/api/v1/dnc", &body).await;
        assert_eq!(code(&r, 400), "bad_request", "{body}");
        let said = r.body["field"].as_str().unwrap_or_default().to_owned() + r.body["message"].as_str().unwrap();
        assert!(said.contains(field), "{body}: {}", r.body);
    }
    let r = app
        .raw(Method::POST, "/api/v1/dnc", Some(&app.key), "{\"phone_number\": ")
        .await;
    assert!(matches!(r.status.as_u16(), 400 | 415), "{}", r.body);
    assert_eq!(code(&app.get("/api/v1/dnc/not-a-number").await, 400), "bad_request");
    let r = app.call(Method::DELETE, "/api/v1/dnc/12", None, &[]).await;
    assert_eq!(code(&r, 400), "bad_request");
    assert_eq!(code(&app.get("/api/v1/dnc?limit=0").await, 400), "bad_request");
    assert_eq!(code(&app.get("/api/v1/dnc?cursor=nope").await, 400), "bad_request");
    assert_eq!(app.count("do_not_call").await, 0);
}

async fn other_teams_lists_are_their_own(app: &TestApp) {
    let (_, other) = app.other_team("others").await;
    app.post_as(
        &other,
        "/api/v1/dnc",
        &json!({"phone_number": "0429069974", "reason": "theirs"}),
    )
    .await
    .ok(201);
    assert_eq!(code(&app.get("/api/v1/dnc/0429069974").await, 404), "not_found");
    assert_eq!(list(app, "").await["entries"], json!([]));
    let r = app.call(Method::DELETE, "/api/v1/dnc/0429069974", None, &[]).await;
    assert_eq!(code(&r, 404), "not_found");
    // Their list does not stop our calls.
    let script_id = common::caller_id_and_script(app).await;
    let r = app
        .post(
            "/api/v1/create-phone-call",
            &call_body(&script_id, "0429069974", json!({})),
        )
        .await;
    r.ok(201);
    let theirs = app.get_as(&other, "/api/v1/dnc/0429069974").await;
    assert_eq!(theirs.ok(200)["entry"]["reason"], "theirs");
}

async fn calls_to_listed_numbers_never_ring(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    app.post("/api/v1/dnc", &json!({"phone_number": "0429069971"}))
        .await
        .ok(201);
    // Refused when created, whatever the number's form; nothing written.
    for form in ["0429069971", "+61 429 069 971"] {
        let r = app
            .post("/api/v1/create-phone-call", &call_body(&script_id, form, json!({})))
            .await;
        assert_eq!(code(&r, 422), "do_not_call", "{form}");
        assert!(r.body["message"].as_str().unwrap().contains("+61429069971"));
    }
    assert_eq!((app.count("calls").await, app.count("contacts").await), (0, 0));
    // A call scheduled before its number was listed ends when due, without ringing or retries.
    let body = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0429069972"},
        "retry_policy": {"max_attempts": 3, "backoff_seconds": 0, "retry_on": ["failed"]}});
    let r = app.post("/api/v1/create-phone-call", &body).await;
    let id = r.ok(201)["call_id"].as_str().unwrap().to_owned();
    app.post("/api/v1/dnc", &json!({"phone_number": "+61429069972"}))
        .await
        .ok(201);
    dispatch(app).await;
    let call = app.get(&format!("/api/v1/get-call/{id}")).await.ok(200)["call"].clone();
    assert_eq!(
        (&call["progress"], &call["status"], &call["end_reason"]),
        (&json!("ended"), &json!("failed"), &json!("do_not_call")),
        "{call:#}"
    );
    let events = app.get(&format!("/api/v1/calls/{id}/events")).await.ok(200)["events"].clone();
    let steps: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["progress"].as_str().unwrap())
        .collect();
    assert!(!steps.contains(&"ringing"), "it never rang: {steps:?}");
    let result = app.get(&format!("/api/v1/get-call-result/{id}")).await;
    assert_eq!(result.ok(200)["call"]["transcript"], json!([]));
    // Web calls are not phone calls: the list does not refuse them.
    let contact = app
        .post("/api/v1/create-contact", &json!({"phone_number": "0429069973"}))
        .await;
    let contact_id = contact.ok(201)["contact_id"].as_str().unwrap().to_owned();
    app.post("/api/v1/dnc", &json!({"phone_number": "0429069973"}))
        .await
        .ok(201);
    let web = app
        .post(
            "/api/v1/create-web-call",
            &json!({"script_id": script_id, "contact_id": contact_id}),
        )
        .await;
    assert_ne!(web.status.as_u16(), 422, "{}", web.body);
}

async fn callees_who_ask_are_listed(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let body = call_body(&script_id, "0429069981", json!({"sim_persona": "hostile"}));
    let id = app.post("/api/v1/create-phone-call", &body).await.ok(201)["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    dispatch(app).await;
    let result = app.get(&format!("/api/v1/get-call-result/{id}")).await;
    let said = result.ok(200)["call"]["transcript"].to_string();
    assert!(said.contains("don't call me again"), "{said}");
    let entry = app.get("/api/v1/dnc/0429069981").await.ok(200)["entry"].clone();
    assert_eq!(entry["reason"], format!("requested on call {id}"));
    let again = app.post("/api/v1/create-phone-call", &body).await;
    assert_eq!(code(&again, 422), "do_not_call");
    // A cooperative callee is not listed.
    let body = call_body(&script_id, "0429069982", json!({}));
    app.post("/api/v1/create-phone-call", &body).await.ok(201);
    dispatch(app).await;
    assert_eq!(code(&app.get("/api/v1/dnc/0429069982").await, 404), "not_found");
}

async fn numbers_import_from_csv(app: &TestApp) {
    let csv = "name,phone_number,reason\n\
               Ann,0429 069 971,asked by email\n\
               Bob,not a number,\n\
               Cy,+61429069972,\n\
               Ann again,0429069971,duplicate\n\
               Dee,0429069973,\"a reason, with a comma\"\n";
    let r = import(app, "text/csv", csv).await;
    let report = r.ok(200);
    assert_eq!(
        (&report["added"], &report["already_listed"], &report["invalid_count"]),
        (&json!(3), &json!(1), &json!(1)),
        "{report:#}"
    );
    assert_eq!(report["invalid"][0]["row"], 3);
    assert!(report["invalid"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("not a number"));
    let entry = app.get("/api/v1/dnc/0429069973").await.ok(200)["entry"].clone();
    assert_eq!(entry["reason"], "a reason, with a comma");
    // Again: nothing new.
    let again = import(app, "text/csv; charset=utf-8", csv).await;
    assert_eq!(
        (&again.ok(200)["added"], &again.body["already_listed"]),
        (&json!(0), &json!(4))
    );
    assert_eq!(app.count("do_not_call").await, 3);
    // Not CSV, or no number column: refused, nothing written.
    assert_eq!(
        code(&import(app, "application/json", csv).await, 415),
        "unsupported_media_type"
    );
    let r = import(app, "text/csv", "name,number\nAnn,0429069979\n").await;
    assert_eq!(code(&r, 400), "bad_request");
    assert!(
        r.body["message"].as_str().unwrap().contains("phone_number"),
        "{}",
        r.body
    );
    assert_eq!(code(&import(app, "text/csv", "").await, 400), "bad_request");
    assert_eq!(app.count("do_not_call").await, 3);
}

on_both_backends!(
    the_list_round_trips,
    bad_input_is_refused_and_writes_nothing,
    other_teams_lists_are_their_own,
    calls_to_listed_numbers_never_ring,
    callees_who_ask_are_listed,
    numbers_import_from_csv,
);
