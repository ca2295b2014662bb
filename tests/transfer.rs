//! `transfer_call`: a script hands the call to a person. On the simulated network the hand-over
//! always works (and the result says simulated); a target that is no number takes the failure
//! path; the function is known to script validation. Over SIP (REFER) and Twilio (`<Dial>`) it is
//! tested in sip.rs and twilio.rs.

mod common;

use std::sync::Arc;

use serde_json::json;
use voxd::clock::ManualClock;

async fn call(app: &common::TestApp, script: &str, variables: serde_json::Value) -> serde_json::Value {
    let r = app
        .post(
            "/api/v1/create-phone-call",
            &json!({"from_number": common::CALLER_ID, "script_id": script,
                    "contact": {"phone_number": "+61412345671"}, "variables": variables}),
        )
        .await;
    let id = r.ok(201)["call_id"].as_str().unwrap().to_owned();
    let clock = Arc::new(ManualClock::new(chrono::Utc::now() + chrono::Duration::seconds(1)));
    assert_eq!(common::sim_dispatcher(app, clock).run_once().await.unwrap(), 1);
    app.get(&format!("/api/v1/get-call-result/{id}")).await.body["call"].clone()
}

async fn a_transfer_step_hands_the_call_over(app: &common::TestApp) {
    common::caller_id_and_script(app).await;
    let script = common::voice::transfer_script(app).await;

    let r = call(app, &script, json!({})).await;
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(r["end_reason"], "transferred", "{r}");
    assert_eq!(r["simulated"], true, "{r}");
    let lines: Vec<&str> = r["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].contains("putting you through"), "{lines:?}");

    // Nobody to hand over to: the failure path.
    let r = call(app, &script, json!({"sam": "not a number"})).await;
    assert_ne!(r["end_reason"], "transferred", "{r}");
    let said = r["transcript"].to_string();
    assert!(said.contains("Sam cannot take your call"), "{r}");

    // A misspelt function is named, with the ones that exist.
    let mut bad = serde_json::to_value(
        voxd::conversation::script::Script::from_yaml_or_json(
            &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/voice/transfer.yaml")).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    bad["flows"][0]["steps"][0]["function"] = json!("transfer_cal");
    let before = app.count("scripts").await;
    let r = app.post("/api/v1/scripts", &bad).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.to_string().contains("transfer_call"), "{}", r.body);
    assert_eq!(app.count("scripts").await, before);
}

on_both_backends!(a_transfer_step_hands_the_call_over);
