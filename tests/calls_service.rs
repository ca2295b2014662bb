//! Every way of creating a call goes through one service: create-phone-call, create-web-call, an
//! automation's create-call step and `voxd simulate inbound` obey the same rules (sizes, object
//! validation by the type's mode, script and number checks) and write nothing when they refuse.
//! Scripts and automations see the same variables.

mod common;

use std::{process::Command, sync::Arc, time::Duration};

use axum::http::{Method, Request};
use chrono::Utc;
use common::{TestApp, CALLER_ID};
use serde_json::{json, Value};
use voxd::{
    automations::{notify::RecordingNotifier, AutomationSettings, Runner},
    clock::{ManualClock, SystemClock},
};

fn runner(app: &TestApp) -> Runner {
    Runner::new(
        app.db.clone(),
        Arc::new(SystemClock),
        Arc::new(RecordingNotifier::default()),
        AutomationSettings {
            allow_private_network: true,
            retry_base: Duration::from_millis(10),
            retry_cap: Duration::from_millis(50),
            ..Default::default()
        },
    )
}

/// An automation on a hook; returns the hook path.
async fn automation(app: &TestApp, steps: Value) -> String {
    let def = json!({"name": "Calls", "trigger": {"type": "webhook"}, "steps": steps});
    let r = app.post("/api/v1/automations", &def).await;
    r.ok(201)["hook"]["path"].as_str().unwrap().to_owned()
}

/// Posts to a hook and runs the worker until the execution stops moving; the execution.
async fn run(app: &TestApp, path: &str, body: &Value) -> Value {
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let id = app.send(req).await.ok(202)["execution_id"].as_str().unwrap().to_owned();
    runner(app).run_until_idle(5).await.unwrap();
    app.get(&format!("/api/v1/executions/{id}")).await.ok(200)["execution"].clone()
}

/// Sizes, script kinds and caller ids are refused alike by the API and the automation step, and
/// neither leaves a contact or a call behind.
async fn refusals_are_the_same_on_every_route(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let big = "x".repeat(17 * 1024);
    // API.
    let call = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0412345671"},
        "variables": {"note": big}});
    let r = app.post("/api/v1/create-phone-call", &call).await;
    assert!(r.error(400).contains("16 KiB"));
    assert_eq!(r.body["field"], "variables");
    // The automation step, with the same oversized variables.
    let path = automation(
        app,
        json!([{"type": "create_call", "script_id": script_id, "from_number": CALLER_ID, "to": "trigger.phone",
            "variables": {"note": "trigger.note"}}]),
    )
    .await;
    let e = run(app, &path, &json!({"phone": "0412345671", "note": big})).await;
    assert_eq!(e["status"], "Failed", "{e}");
    assert!(
        e["steps"][0]["error"]
            .as_str()
            .unwrap()
            .contains("variables: must be at most 16 KiB"),
        "{e}"
    );
    // A caller id the team does not have.
    let path = automation(
        app,
        json!([{"type": "create_call", "script_id": script_id, "from_number": "+61299999999", "to": "trigger.phone"}]),
    )
    .await;
    let e = run(app, &path, &json!({"phone": "0412345672"})).await;
    assert!(
        e["steps"][0]["error"]
            .as_str()
            .unwrap()
            .contains("not one of your team's numbers"),
        "{e}"
    );
    let mut wrong = call.clone();
    wrong["variables"] = json!({});
    wrong["from_number"] = json!("+61299999999");
    assert_eq!(
        app.post("/api/v1/create-phone-call", &wrong).await.error(400),
        "from_number: +61299999999 is not one of your team's numbers (add it with `voxd number add`)"
    );
    // An inbound script cannot place outbound calls, on either route.
    let mut inbound = common::example_script("receptionist");
    inbound["name"] = json!("Inbound");
    let inbound_id = app.post("/api/v1/scripts", &inbound).await.ok(201)["script_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut by_api = wrong.clone();
    by_api["from_number"] = json!(CALLER_ID);
    by_api["script_id"] = json!(inbound_id);
    assert!(app
        .post("/api/v1/create-phone-call", &by_api)
        .await
        .error(400)
        .contains("inbound script"));
    // (An automation naming an inbound script is refused when it is saved.)
    // Another team's contact for a web call is not found.
    let (_, other) = app.other_team("others").await;
    let theirs = app
        .post_as(&other, "/api/v1/create-contact", &json!({"phone_number": "0412345674"}))
        .await;
    let web = json!({"script_id": script_id, "contact_id": theirs.body["contact_id"]});
    assert_eq!(
        app.post("/api/v1/create-web-call", &web).await.error(404),
        "Contact not found"
    );
    assert_eq!(app.count("calls").await, 0);
    assert_eq!(app.count("contacts").await, 1, "only the other team's contact");
}

/// Object data follows its type's mode and size on every route: `warn` stores and reports,
/// `strict` refuses and writes nothing, more than 256 KiB is refused (the automation step used to
/// ignore both).
async fn objects_follow_their_type_on_every_route(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    for (name, mode) in [("loose", "warn"), ("tight", "strict")] {
        let t = json!({"type_name": name, "display_name": name, "validation_mode": mode,
            "schema": {"id": "string", "bedrooms": "integer"}});
        app.post("/api/v1/object-types", &t).await.ok(201);
    }
    let call = |type_name: &str, data: Value| {
        json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0412345671"},
            "object": {"type_name": type_name, "data": data}})
    };
    let r = app
        .post(
            "/api/v1/create-phone-call",
            &call("loose", json!({"id": "p1", "bedrooms": "three"})),
        )
        .await;
    assert_eq!(r.ok(201)["object"]["violations"][0]["path"], "/bedrooms");
    let r = app
        .post(
            "/api/v1/create-phone-call",
            &call("tight", json!({"id": "p2", "bedrooms": "three"})),
        )
        .await;
    assert!(r.error(400).contains("1 violation"));
    let steps = |type_name: &str| {
        json!([
            {"type": "upsert_contact", "fields": {"phone_number": "trigger.phone"}},
            {"type": "upsert_object", "object_type": type_name, "data": {"id": "trigger.id", "bedrooms": "trigger.bedrooms", "notes": "trigger.notes"}}
        ])
    };
    let loose = automation(app, steps("loose")).await;
    let e = run(
        app,
        &loose,
        &json!({"phone": "0412345672", "id": "p3", "bedrooms": "three"}),
    )
    .await;
    assert_eq!(e["status"], "Completed", "{e}");
    assert_eq!(e["steps"][1]["output"]["violations"][0]["path"], "/bedrooms", "{e}");
    let tight = automation(app, steps("tight")).await;
    let e = run(
        app,
        &tight,
        &json!({"phone": "0412345673", "id": "p4", "bedrooms": "three"}),
    )
    .await;
    assert_eq!(e["status"], "Failed", "{e}");
    let huge = "y".repeat(300 * 1024);
    let e = run(
        app,
        &loose,
        &json!({"phone": "0412345674", "id": "p5", "bedrooms": 3, "notes": huge}),
    )
    .await;
    assert!(e["steps"][1]["error"].as_str().unwrap().contains("256 KiB"), "{e}");
    let r = app
        .post(
            "/api/v1/create-phone-call",
            &call("loose", json!({"id": "p6", "notes": huge})),
        )
        .await;
    assert!(r.error(400).contains("256 KiB"));
    // p1 (API, warn) and p3 (automation, warn) only.
    assert_eq!(app.count("objects").await, 2);
    assert_eq!(app.count("calls").await, 1);
}

/// A script and an automation read the same `contact.*` (full name and metadata included) and the
/// call's object with its id.
async fn scripts_and_automations_see_the_same_variables(app: &TestApp) {
    let mut script = common::example_script("buyer-follow-up");
    script["name"] = json!("Vars");
    script["flows"][0]["steps"][0]["script"] =
        json!("Say: Hi {{contact.full_name}} of tier {{contact.metadata.tier}}, about {{objects.property.address}} ({{objects.property.id}}).");
    app.db
        .add_number(&voxd::store::numbers::PhoneNumber {
            id: voxd::domain::new_id(),
            team_id: app.team_id,
            number: CALLER_ID.into(),
            inbound_script_id: None,
            trunk_id: None,
            twilio: false,
            created_at: voxd::domain::now(),
        })
        .await
        .unwrap();
    let script_id = app.post("/api/v1/scripts", &script).await.ok(201)["script_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        "/api/v1/object-types",
        &json!({"type_name": "property", "display_name": "P", "schema": {"address": "string"}}),
    )
    .await
    .ok(201);
    let watcher = json!({"name": "Watch", "trigger": {"type": "call_completed"}, "steps": [
    {"type": "transform", "mappings": [
        {"source": "contact.full_name", "target": "name"},
        {"source": "contact.metadata.tier", "target": "tier"},
        {"source": "objects.property.id", "target": "object_id"}
    ]}]});
    app.post("/api/v1/automations", &watcher).await.ok(201);
    let call = json!({"from_number": CALLER_ID, "script_id": script_id,
        "contact": {"phone_number": "0412345671", "first_name": "Ava", "last_name": "Ng", "metadata": {"tier": "gold"}},
        "object": {"type_name": "property", "data": {"id": "p-12", "address": "12 Ocean St"}}});
    let created = app.post("/api/v1/create-phone-call", &call).await;
    let object_id = created.ok(201)["object"]["id"].as_str().unwrap().to_owned();
    let call_id = created.body["call_id"].as_str().unwrap().to_owned();
    let clock = Arc::new(ManualClock::new(Utc::now() + chrono::Duration::seconds(1)));
    common::sim_dispatcher(app, clock).run_once().await.unwrap();
    let result = app.get(&format!("/api/v1/get-call-result/{call_id}")).await;
    let first = result.ok(200)["call"]["transcript"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        first,
        format!("Hi Ava Ng of tier gold, about 12 Ocean St ({object_id}).")
    );
    runner(app).run_until_idle(10).await.unwrap();
    let list = app.get("/api/v1/executions?status=Completed").await;
    let done: Vec<&Value> = list.ok(200)["executions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["trigger"] == "call.ended")
        .collect();
    assert_eq!(done.len(), 1, "{}", list.body);
    let id = done[0]["id"].as_str().unwrap();
    let e = app.get(&format!("/api/v1/executions/{id}")).await.ok(200)["execution"].clone();
    assert_eq!(
        e["context"]["mapped"],
        json!({"name": "Ava Ng", "tier": "gold", "object_id": object_id}),
        "{e}"
    );
}

/// `voxd simulate inbound` goes through the same service: a caller number that does not parse is
/// refused and writes nothing.
async fn simulate_inbound_obeys_the_same_rules(app: &TestApp) {
    let mut inbound = common::example_script("receptionist");
    inbound["name"] = json!("Inbound");
    let script_id = app.post("/api/v1/scripts", &inbound).await.ok(201)["script_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.db
        .add_number(&voxd::store::numbers::PhoneNumber {
            id: voxd::domain::new_id(),
            team_id: app.team_id,
            number: "+61291234567".into(),
            inbound_script_id: Some(script_id.parse().unwrap()),
            trunk_id: None,
            twilio: false,
            created_at: voxd::domain::now(),
        })
        .await
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(["simulate", "inbound", "--to", "0291234567", "--from", "12"])
        .env("VOXD_DATABASE_URL", &app.database_url)
        .env_remove("VOXD_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("contact.phone_number"), "{err}");
    assert_eq!(app.count("calls").await, 0);
    assert_eq!(app.count("contacts").await, 0);
}

on_both_backends!(
    refusals_are_the_same_on_every_route,
    objects_follow_their_type_on_every_route,
    scripts_and_automations_see_the_same_variables,
    simulate_inbound_obeys_the_same_rules,
);
