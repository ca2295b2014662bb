//! Scripts as team resources, through the HTTP API.

mod common;

use axum::http::Method;
use common::TestApp;
use serde_json::{json, Value};

fn example(name: &str) -> Value {
    common::example_script(name)
}

async fn scripts_round_trip(app: &TestApp) {
    let created = app.post("/api/v1/scripts", &example("buyer-follow-up")).await;
    let b = created.ok(201).clone();
    let id = b["script_id"].as_str().unwrap().to_owned();
    assert_eq!(b["script"]["type"], "outbound");
    assert_eq!(b["script"]["definition"]["flows"][0]["steps"][0]["id"], "greet");
    app.post("/api/v1/scripts", &example("receptionist")).await.ok(201);
    app.post("/api/v1/scripts", &example("appraisal-booking")).await.ok(201);

    let got = app.get(&format!("/api/v1/scripts/{id}")).await;
    assert_eq!(got.ok(200)["script"]["name"], "Post-inspection buyer follow-up");
    let inbound = app.get("/api/v1/scripts?type=inbound").await;
    let list = inbound.ok(200)["scripts"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["name"], "Harbour Realty reception");
    let page = app.get("/api/v1/scripts?limit=2").await;
    let cursor = page.ok(200)["meta"]["next_cursor"].as_str().unwrap().to_owned();
    let rest = app.get(&format!("/api/v1/scripts?limit=2&cursor={cursor}")).await;
    assert_eq!(rest.ok(200)["scripts"].as_array().unwrap().len(), 1);

    let mut changed = example("buyer-follow-up");
    changed["name"] = json!("Renamed follow-up");
    let replaced = app
        .call(Method::PUT, &format!("/api/v1/scripts/{id}"), Some(&changed), &[])
        .await;
    assert_eq!(replaced.ok(200)["script"]["name"], "Renamed follow-up");
    let deleted = app
        .call(Method::DELETE, &format!("/api/v1/scripts/{id}"), None, &[])
        .await;
    assert_eq!(deleted.ok(200)["deleted"], true);
    app.get(&format!("/api/v1/scripts/{id}")).await.error(404);
    app.call(Method::DELETE, &format!("/api/v1/scripts/{id}"), None, &[])
        .await
        .error(404);
    assert_eq!(app.count("scripts").await, 2);
}

async fn invalid_scripts_are_refused_with_every_problem(app: &TestApp) {
    let mut bad = example("appraisal-booking");
    bad["flows"][0]["steps"][0]["conditions"][3]["next"] = json!("nowhere");
    bad["flows"][1]["steps"][1]["conditions"][0] = json!({"when": "x", "end_call": true});
    bad["flows"][0]["steps"][2]["function"] = json!("teleport");
    let r = app.post("/api/v1/scripts", &bad).await;
    r.error(400);
    let problems: Vec<String> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{}: {}", e["at"], e["problem"]))
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems
        .iter()
        .any(|p| p.contains("flows.main.steps.intro.conditions[3]") && p.contains("nowhere")));
    assert!(problems.iter().any(
        |p| p.contains("flows.booking.steps.offer_day.conditions[0]") && p.contains("sub-flow cannot end the call")
    ));
    assert!(problems
        .iter()
        .any(|p| p.contains("flows.main.steps.confirm_email") && p.contains("teleport")));
    for body in [
        json!({}),
        json!({"name": "x", "type": "sideways", "main_flow_id": "m", "flows": []}),
        json!({"name": 5, "type": "inbound", "main_flow_id": "m", "flows": []}),
        json!({"name": "x", "type": "inbound", "main_flow_id": "m", "flows": [], "colour": "red"}),
        json!({"name": "x", "type": "inbound", "main_flow_id": "m", "flows": []}),
    ] {
        app.post("/api/v1/scripts", &body).await.error(400);
    }
    assert_eq!(app.count("scripts").await, 0);
    // A failed replace leaves the script as it was.
    let id = app.post("/api/v1/scripts", &example("receptionist")).await.ok(201)["script_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.call(Method::PUT, &format!("/api/v1/scripts/{id}"), Some(&bad), &[])
        .await
        .error(400);
    assert_eq!(
        app.get(&format!("/api/v1/scripts/{id}")).await.ok(200)["script"]["name"],
        "Harbour Realty reception"
    );
}

async fn other_teams_cannot_see_scripts(app: &TestApp) {
    let id = app.post("/api/v1/scripts", &example("receptionist")).await.ok(201)["script_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, other) = app.other_team("globex").await;
    app.get_as(&other, &format!("/api/v1/scripts/{id}")).await.error(404);
    let r = app
        .raw(Method::DELETE, &format!("/api/v1/scripts/{id}"), Some(&other), "")
        .await;
    r.error(404);
    let r = app
        .raw(
            Method::PUT,
            &format!("/api/v1/scripts/{id}"),
            Some(&other),
            example("receptionist").to_string(),
        )
        .await;
    r.error(404);
    assert_eq!(
        app.get_as(&other, "/api/v1/scripts").await.ok(200)["scripts"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    app.get("/api/v1/scripts/not-an-id").await.error(404);
    app.get("/api/v1/scripts?type=sideways").await.error(400);
    assert_eq!(app.count("scripts").await, 1);
}

on_both_backends!(
    scripts_round_trip,
    invalid_scripts_are_refused_with_every_problem,
    other_teams_cannot_see_scripts
);
