//! A real `voxd serve` killed with SIGKILL while executions are running (placing calls, waiting on
//! them, syncing results), then started again on the same database: each execution completes once
//! and each create-call step placed exactly one call.

mod common;

use std::{
    collections::HashMap,
    process::Command,
    time::{Duration, Instant},
};

use common::{Receiver, TestApp, CALLER_ID};
use serde_json::{json, Value};

const EXECUTIONS: usize = 20;

async fn executions(app: &TestApp) -> Vec<Value> {
    let r = app.get("/api/v1/executions?limit=200").await;
    r.ok(200)["executions"].as_array().unwrap().clone()
}

async fn killed_mid_execution_each_completes_once_with_one_call(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let receiver = Receiver::start().await;
    let def = json!({"name": "Lead", "trigger": {"type": "webhook"}, "steps": [
        {"type": "upsert_contact", "fields": {"phone_number": "trigger.phone"}},
        {"type": "create_call", "script_id": script_id, "from_number": CALLER_ID},
        {"type": "transform", "mappings": [{"source": "call.status", "target": "status"}]},
        {"type": "destination", "url": format!("{}/crm", receiver.url),
         "body": {"execution": "{{trigger.n}}", "call": "{{call.id}}", "status": "{{mapped.status}}"}}
    ]});
    let path = app.post("/api/v1/automations", &def).await.ok(201)["hook"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    for n in 0..EXECUTIONS {
        // Numbers ending in 1: the sim carrier answers.
        let body = json!({"phone": format!("041234{:04}", n * 10 + 1), "n": n});
        let req = axum::http::Request::post(&path)
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        app.send(req).await.ok(202);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("voxd.toml");
    std::fs::write(
        &config,
        "sim_ring_ms = 300\nsim_answer_ms = 200\ndispatch_lease_seconds = 2\nmax_concurrent_calls = 6\n\
         automation_lease_seconds = 2\nretry_base_ms = 100\nallow_private_network = true\n\
         calls_per_second_per_number = 0\n",
    )
    .unwrap();

    let mut first = common::spawn_serve(app, &config);
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.received().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the first server never finished an execution"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Command::new("kill")
        .args(["-9", &first.id().to_string()])
        .status()
        .unwrap();
    first.wait().unwrap();
    let completed_before = executions(app)
        .await
        .iter()
        .filter(|e| e["status"] == "Completed")
        .count();
    assert!(
        completed_before < EXECUTIONS,
        "the kill came mid-way ({completed_before} had completed)"
    );

    let mut second = common::spawn_serve(app, &config);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let all = executions(app).await;
        if all.iter().all(|e| e["status"] == "Completed") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every execution completed after the restart: {:?}",
            all.iter().map(|e| e["status"].clone()).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();

    let all = executions(app).await;
    assert_eq!(all.len(), EXECUTIONS);
    // One call per execution, and every call ended once.
    let calls = app.get("/api/v1/calls?limit=200").await.ok(200)["calls"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(calls.len(), EXECUTIONS, "a create-call step placed a second call");
    let mut per_execution: HashMap<String, usize> = HashMap::new();
    for c in &calls {
        assert_eq!(c["progress"], "ended");
        *per_execution
            .entry(c["metadata"]["execution_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_execution.len(), EXECUTIONS);
    for e in &all {
        assert_eq!(per_execution[e["id"].as_str().unwrap()], 1);
        let one = app
            .get(&format!("/api/v1/executions/{}", e["id"].as_str().unwrap()))
            .await;
        let steps = one.ok(200)["execution"]["steps"].as_array().unwrap().clone();
        assert_eq!(steps.len(), 4);
        assert!(steps.iter().all(|s| s["status"] == "Completed"), "{steps:?}");
    }
    // Every execution reached the CRM (a step cut short by the kill may have been sent twice:
    // destinations are at least once).
    let mut synced: Vec<i64> = receiver
        .received()
        .iter()
        .map(|r| r.body["execution"].as_i64().unwrap())
        .collect();
    synced.sort();
    synced.dedup();
    assert_eq!(synced.len(), EXECUTIONS);
}

on_both_backends!(killed_mid_execution_each_completes_once_with_one_call);
