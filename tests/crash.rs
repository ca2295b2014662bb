//! A real `voxd serve` killed with SIGKILL in the middle of a batch of calls, then started again on
//! the same database: every call ends exactly once, and no call is ever dialled twice at once.

mod common;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use common::TestApp;
use serde_json::{json, Value};

const CALLS: usize = 30;

/// (progress, attempt) of each event of each call, in order.
async fn timelines(app: &TestApp) -> Vec<Vec<(String, i64)>> {
    let r = app.get("/api/v1/calls?limit=200").await;
    let mut out = Vec::new();
    for c in r.ok(200)["calls"].as_array().unwrap() {
        let e = app
            .get(&format!("/api/v1/calls/{}/events", c["id"].as_str().unwrap()))
            .await;
        out.push(
            e.body["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e: &Value| {
                    (
                        e["progress"].as_str().unwrap().to_owned(),
                        e["attempt"].as_i64().unwrap(),
                    )
                })
                .collect(),
        );
    }
    out
}

async fn count(app: &TestApp, progress: &str) -> usize {
    timelines(app)
        .await
        .iter()
        .filter(|t| t.iter().any(|(p, _)| p == progress))
        .count()
}

async fn killed_mid_batch_every_call_ends_once(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    for i in 0..CALLS {
        // Numbers ending in 1: the sim carrier answers.
        let body = json!({"from_number": "+61291234567", "script_id": script_id,
            "contact": {"phone_number": format!("041234{:04}", i * 10 + 1)},
            "retry_policy": {"max_attempts": 2, "backoff_seconds": 0}});
        app.post("/api/v1/create-phone-call", &body).await.ok(201);
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("voxd.toml");
    std::fs::write(
        &config,
        "sim_ring_ms = 300\nsim_answer_ms = 200\ndispatch_lease_seconds = 2\nmax_concurrent_calls = 8\n",
    )
    .unwrap();

    let mut first = common::spawn_serve(app, &config);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let started = count(app, "dialing").await;
        if started >= 8 {
            break;
        }
        assert!(Instant::now() < deadline, "the first server never started dialling");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Command::new("kill")
        .args(["-9", &first.id().to_string()])
        .status()
        .unwrap();
    first.wait().unwrap();
    let ended_before = count(app, "ended").await;
    assert!(
        ended_before < CALLS,
        "the kill came mid-batch ({ended_before} of {CALLS} had ended)"
    );

    let mut second = common::spawn_serve(app, &config);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(app, "ended").await < CALLS {
        assert!(Instant::now() < deadline, "not every call ended after the restart");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();

    let all = timelines(app).await;
    assert_eq!(all.len(), CALLS);
    let mut recovered = 0;
    for t in &all {
        let ended = t.iter().filter(|(p, _)| p == "ended").count();
        assert_eq!(ended, 1, "each call ends exactly once: {t:?}");
        // Between two dials of the same call there is always a settlement (never two at once).
        let mut open = false;
        for (p, _) in t {
            match p.as_str() {
                "dialing" => {
                    assert!(!open, "dialled while a previous attempt was still open: {t:?}");
                    open = true;
                }
                "scheduled" | "ended" => open = false,
                _ => {}
            }
        }
        if t.iter().filter(|(p, _)| p == "dialing").count() > 1 {
            recovered += 1;
        }
    }
    assert!(
        recovered > 0,
        "some calls were in flight at the kill and were recovered"
    );
}

on_both_backends!(killed_mid_batch_every_call_ends_once);
