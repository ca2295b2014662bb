//! Automations on the embedded SQLite, over real HTTP on 127.0.0.1:
//! - baseline: a bare HTTP POST loop to a local receiver (posts/s);
//! - inbound hooks accepted per second (`POST /api/v1/hooks/{token}` on the served router);
//! - executions completed per second, for a 3-step automation (transform → condition →
//!   destination to the local receiver);
//! - event webhook deliveries per second to the same receiver (fan-out of `call.scheduled` for
//!   calls inserted up front, then signed deliveries).
//!
//! Each figure is also given as a ratio of the baseline measured in the same run.
//! Run: `cargo bench --bench automations` (env `BENCH_N`, default 2000; `BENCH_CONCURRENCY`, 16).

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Instant,
};

use serde_json::json;
use voxd::{
    api::{router, ApiSettings, AppState},
    automations::{notify::RecordingNotifier, AutomationSettings, Runner},
    clock::SystemClock,
    conversation::script::Script,
    domain::{new_id, now},
    store::{calls::Call, teams::Team, Db, DbOptions},
};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A receiver that answers every POST with 200 and counts them.
async fn receiver() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/{*path}",
        axum::routing::post(move |_body: axum::body::Bytes| {
            let c = counter.clone();
            async move {
                c.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, hits)
}

/// POSTs `n` bodies to `url` from `concurrency` tasks; returns requests per second.
async fn post_loop(url: &str, n: usize, concurrency: usize, expect: u16) -> f64 {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (client, next, url) = (client.clone(), next.clone(), url.to_owned());
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let r = client
                    .post(&url)
                    .json(&json!({"phone": "+61412345671", "score": 7, "name": "ada"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), expect, "{url}");
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    n as f64 / started.elapsed().as_secs_f64()
}

async fn serve(db: Db) -> String {
    let settings = ApiSettings {
        requests_per_second: 1_000_000,
        ..ApiSettings::default()
    };
    let app = router(AppState::new(db, settings));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn runner(db: &Db) -> Runner {
    Runner::new(
        db.clone(),
        Arc::new(SystemClock),
        Arc::new(RecordingNotifier::default()),
        AutomationSettings {
            allow_private_network: true,
            ..AutomationSettings::default()
        },
    )
}

async fn round(n: usize, concurrency: usize) -> [f64; 4] {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::connect(&DbOptions {
        url: format!("sqlite://{}", dir.path().join("bench.db").display()),
        max_connections: 8,
    })
    .await
    .unwrap();
    db.migrate().await.unwrap();
    let team = Team {
        id: new_id(),
        name: "bench".into(),
        region: "AU".into(),
        timezone: "Australia/Sydney".into(),
        requests_per_second: Some(1_000_000),
        max_concurrent_calls: None,
        created_at: now(),
        recordings: true,
    };
    db.create_team(&team).await.unwrap();
    let (crm, hits) = receiver().await;
    let base = serve(db.clone()).await;

    let baseline = post_loop(&format!("{crm}/bare"), n, concurrency, 200).await;

    let def = voxd::domain::automation::parse(json!({
        "name": "bench", "trigger": {"type": "webhook"},
        "steps": [
            {"type": "transform", "mappings": [{"source": "trigger.name", "target": "name", "transform": "uppercase"}]},
            {"type": "condition", "field": "trigger.score", "operator": "greater_than", "value": 5},
            {"type": "destination", "url": format!("{crm}/crm"), "body": {"name": "{{mapped.name}}"}}
        ]
    }))
    .unwrap();
    let (_, hook) = voxd::api::automations::create_automation(&db, team.id, def)
        .await
        .unwrap();
    let hook_url = format!("{base}{}", hook.unwrap().path.unwrap());
    let hooks = post_loop(&hook_url, n, concurrency, 202).await;

    let before = hits.load(Ordering::Relaxed);
    let r = runner(&db);
    let started = Instant::now();
    r.run_until_idle(100_000).await.unwrap();
    let executions = n as f64 / started.elapsed().as_secs_f64();
    assert_eq!(
        hits.load(Ordering::Relaxed) - before,
        n,
        "every execution reached the receiver"
    );

    // Deliveries: an endpoint on call.scheduled, then n calls scheduled (one event each).
    let endpoint = voxd::store::webhooks::Endpoint {
        id: new_id(),
        team_id: team.id,
        url: format!("{crm}/events"),
        description: None,
        events: sqlx::types::Json(vec!["call.scheduled".into()]),
        secret: voxd::domain::signature::new_standard_secret(),
        previous_secret: None,
        previous_secret_until: None,
        enabled: true,
        created_at: now(),
        updated_at: now(),
    };
    db.insert_endpoint(&endpoint).await.unwrap();
    let path = format!("{}/examples/scripts/buyer-follow-up.yaml", env!("CARGO_MANIFEST_DIR"));
    let script = Script::from_yaml_or_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    let stored = db.insert_script(team.id, new_id(), &script, now()).await.unwrap();
    let far = now() + chrono::Duration::days(1);
    for _ in 0..n {
        let call = Call {
            scheduled_time: far,
            due_ms: far.timestamp_millis(),
            to_number: Some("+61412345671".into()),
            ..Call::new(team.id, "outbound", stored.id, "Australia/Sydney".into(), now())
        };
        db.insert_call(&call).await.unwrap();
    }
    let before = hits.load(Ordering::Relaxed);
    let started = Instant::now();
    r.run_until_idle(100_000).await.unwrap();
    let deliveries = n as f64 / started.elapsed().as_secs_f64();
    assert_eq!(hits.load(Ordering::Relaxed) - before, n, "every event was delivered");
    [baseline, hooks, executions, deliveries]
}

fn main() {
    let n = env("BENCH_N", 2000);
    let concurrency = env("BENCH_CONCURRENCY", 16);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("automations on SQLite, {n} items per figure, {concurrency} concurrent clients");
    println!(
        "| round | bare POST/s | hooks accepted/s | ratio | executions/s (3 steps) | ratio | deliveries/s | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for i in 1..=3 {
        let [b, h, e, d] = rt.block_on(round(n, concurrency));
        println!(
            "| {i} | {b:.0} | {h:.0} | {:.0}% | {e:.0} | {:.0}% | {d:.0} | {:.0}% |",
            100.0 * h / b,
            100.0 * e / b,
            100.0 * d / b
        );
    }
}
