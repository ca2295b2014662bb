//! API throughput on the embedded SQLite, against baselines measured in the same run:
//!
//! - create-contact requests/s vs. raw single-row insert transactions into SQLite with the same
//!   settings (the same writer pool and pragmas; each INSERT its own transaction, as the API's
//!   is), target ≥ 50 %;
//! - authenticated get-contact requests/s vs. the unauthenticated health endpoint (which also
//!   queries the database), target ≥ 50 %.
//!
//! Run: `cargo bench --bench api`. Env: `BENCH_REQUESTS` (per measure, default 20000),
//! `BENCH_CONCURRENCY` (32), `BENCH_ROUNDS` (3; the median ratio is reported), `BENCH_READERS`
//! (SQLite reader connections, 8 as the server's default).
//! The server runs in-process on 127.0.0.1 and the load comes over real TCP connections from the
//! same process: both share the machine, as the baselines do.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use serde_json::json;
use voxd::{
    api::{router, ApiSettings, AppState},
    domain::{api_key, new_id, now},
    store::{contacts::Contact, keys::ApiKey, teams::Team, Db, DbOptions},
};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let requests = env_usize("BENCH_REQUESTS", 20_000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 32);
    let dir = tempfile::tempdir().expect("temp dir");

    let rounds = env_usize("BENCH_ROUNDS", 3);
    let mut results: Vec<[f64; 4]> = Vec::new();
    for round in 0..rounds {
        results.push(round_once(&dir, round, requests, concurrency).await);
    }

    println!("\nvoxd API benchmark: SQLite (WAL, synchronous=NORMAL), {requests} operations per measure, {concurrency} concurrent, {rounds} rounds\n");
    println!("| round | raw inserts/s | create-contact/s | ratio | health/s | get-contact/s | ratio |");
    println!("|------:|--------------:|-----------------:|------:|---------:|--------------:|------:|");
    let (mut create_ratios, mut get_ratios) = (Vec::new(), Vec::new());
    for (i, [raw, create, health, get]) in results.iter().enumerate() {
        create_ratios.push(create / raw);
        get_ratios.push(get / health);
        println!(
            "| {} | {raw:.0} | {create:.0} | {:.0}% | {health:.0} | {get:.0} | {:.0}% |",
            i + 1,
            100.0 * create / raw,
            100.0 * get / health
        );
    }
    println!(
        "\nmedian: create-contact = {:.0}% of raw inserts (target ≥ 50%); authenticated get-contact = {:.0}% of health (target ≥ 50%)",
        100.0 * median(&mut create_ratios),
        100.0 * median(&mut get_ratios)
    );
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One round on fresh databases: [raw inserts/s, create-contact/s, health/s, get-contact/s].
async fn round_once(dir: &tempfile::TempDir, round: usize, requests: usize, concurrency: usize) -> [f64; 4] {
    // Baseline: raw insert transactions on a database of its own, same settings.
    let raw_db = open(dir, &format!("raw-{round}.db")).await;
    let raw_team = team(&raw_db).await.0;
    let raw_rate = rate(requests, concurrency, {
        let db = raw_db.clone();
        move |i| {
            let db = db.clone();
            async move {
                let Db::Sqlite { write, .. } = &db else { unreachable!() };
                let c = contact(raw_team, i);
                sqlx::query("INSERT INTO contacts (id, team_id, phone_number, first_name, last_name, metadata, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)")
                    .bind(c.id).bind(c.team_id).bind(&c.phone_number).bind(&c.first_name).bind(&c.last_name).bind(&c.metadata).bind(c.created_at)
                    .execute(write).await.unwrap();
            }
        }
    })
    .await;
    raw_db.close().await;

    // The server, on its own database.
    let db = open(dir, &format!("voxd-{round}.db")).await;
    let (_, key) = team(&db).await;
    let app = router(AppState::new(
        db.clone(),
        ApiSettings {
            requests_per_second: 10_000_000,
            ..Default::default()
        },
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let auth = format!("Bearer {key}");

    let health_rate = rate(requests, concurrency, {
        let (client, url) = (client.clone(), format!("{base}/api/v1/health"));
        move |_| {
            let req = client.get(&url);
            async move { assert_eq!(req.send().await.unwrap().status(), 200) }
        }
    })
    .await;

    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(requests)));
    let create_rate = rate(requests, concurrency, {
        let (client, url, auth, ids) = (
            client.clone(),
            format!("{base}/api/v1/create-contact"),
            auth.clone(),
            ids.clone(),
        );
        move |i| {
            let body = json!({"phone_number": format!("04{:08}", i), "first_name": "Bench", "last_name": "Mark"});
            let req = client.post(&url).header("authorization", &auth).json(&body);
            let ids = ids.clone();
            async move {
                let r = req.send().await.unwrap();
                assert_eq!(r.status(), 201);
                let v: serde_json::Value = r.json().await.unwrap();
                ids.lock().unwrap().push(v["contact_id"].as_str().unwrap().to_owned());
            }
        }
    })
    .await;

    let ids: Arc<Vec<String>> = Arc::new(std::mem::take(&mut *ids.lock().unwrap()));
    let get_rate = rate(requests, concurrency, {
        let (client, base, auth, ids) = (client.clone(), base.clone(), auth.clone(), ids.clone());
        move |i| {
            let req = client
                .get(format!("{base}/api/v1/contacts/{}", ids[i % ids.len()]))
                .header("authorization", &auth);
            async move { assert_eq!(req.send().await.unwrap().status(), 200) }
        }
    })
    .await;
    server.abort();
    db.close().await;
    [raw_rate, create_rate, health_rate, get_rate]
}

async fn open(dir: &tempfile::TempDir, file: &str) -> Db {
    let url = format!("sqlite://{}", dir.path().join(file).display());
    let readers = env_usize("BENCH_READERS", 8) as u32;
    let db = Db::connect(&DbOptions {
        url,
        max_connections: readers,
    })
    .await
    .unwrap();
    db.migrate().await.unwrap();
    db
}

async fn team(db: &Db) -> (uuid::Uuid, String) {
    let t = Team {
        id: new_id(),
        name: "bench".into(),
        region: "AU".into(),
        timezone: "Australia/Sydney".into(),
        requests_per_second: None,
        max_concurrent_calls: None,
        created_at: now(),
        recordings: true,
    };
    db.create_team(&t).await.unwrap();
    let k = api_key::generate();
    let key = ApiKey {
        id: new_id(),
        team_id: t.id,
        name: None,
        prefix: k.prefix.clone(),
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
    };
    db.create_key(&key, &k.hash).await.unwrap();
    (t.id, k.secret)
}

fn contact(team_id: uuid::Uuid, i: usize) -> Contact {
    Contact::new(
        team_id,
        voxd::domain::contact::ValidContact {
            phone_number: format!("+614{i:08}"),
            first_name: Some("Bench".into()),
            last_name: Some("Mark".into()),
            ..Default::default()
        },
        new_id(),
        now(),
    )
}

/// Runs `op(i)` for i in 0..total from `concurrency` tasks; returns operations per second. A short
/// warm-up is excluded; the loop is bounded by `total`.
async fn rate<F, Fut>(total: usize, concurrency: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, op) = (next.clone(), op.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    op(i).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed().max(Duration::from_millis(1));
    total as f64 / elapsed.as_secs_f64()
}
