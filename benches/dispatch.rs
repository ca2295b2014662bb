//! Dispatch on the embedded SQLite with the zero-delay `sim` carrier:
//! - a burst: 10,000 calls due at the same instant: calls ended per second (target ≥ 500/s),
//!   dispatch lateness p50/p99 (dial time − due time), and the peak of concurrent calls against
//!   the team's limit (never above);
//! - a steady 100 calls/s for 10 s: lateness p99 (target ≤ 250 ms).
//!
//! The calls go out from `BENCH_NUMBERS` caller ids (default 100), registered to the team as
//! `voxd number add` would, round robin, under the default pacing of 10 calls/s per caller id: one
//! caller id could not carry 500 calls/s (carriers police this), and a pass dials each number at most
//! once.
//!
//! Run: `cargo bench --bench dispatch` (env `BENCH_CALLS`, default 10000; `BENCH_LIMIT`, 50;
//! `BENCH_NUMBERS`, 100).

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use voxd::{
    carrier::sim::{SimCarrier, SimDelays},
    clock::SystemClock,
    conversation::{brain::rules::RulesBrain, script::Script, tools},
    dispatcher::{Dispatcher, DispatcherSettings},
    domain::{contact::ValidContact, new_id, now},
    store::{calls::Call, contacts::Contact, numbers::PhoneNumber, teams::Team, Db, DbOptions},
};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Setup {
    db: Db,
    team: uuid::Uuid,
    script: uuid::Uuid,
    contact: uuid::Uuid,
    numbers: Vec<String>,
    next: std::sync::atomic::AtomicUsize,
}

async fn setup(dir: &tempfile::TempDir, name: &str, limit: i32) -> Setup {
    let url = format!("sqlite://{}", dir.path().join(name).display());
    let db = Db::connect(&DbOptions {
        url,
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
        requests_per_second: None,
        max_concurrent_calls: Some(limit),
        created_at: now(),
        recordings: true,
    };
    db.create_team(&team).await.unwrap();
    let path = format!("{}/examples/scripts/buyer-follow-up.yaml", env!("CARGO_MANIFEST_DIR"));
    let script = Script::from_yaml_or_json(&std::fs::read_to_string(path).unwrap()).unwrap();
    let stored = db.insert_script(team.id, new_id(), &script, now()).await.unwrap();
    let contact = Contact::new(
        team.id,
        ValidContact {
            phone_number: "+61429069971".into(),
            first_name: Some("John".into()),
            ..Default::default()
        },
        new_id(),
        now(),
    );
    db.insert_contact(&contact).await.unwrap();
    let numbers: Vec<String> = (0..env("BENCH_NUMBERS", 100))
        .map(|i| format!("+612912{:05}", 30000 + i))
        .collect();
    for number in &numbers {
        let n = PhoneNumber {
            id: new_id(),
            team_id: team.id,
            number: number.clone(),
            inbound_script_id: None,
            trunk_id: None,
            twilio: false,
            created_at: now(),
        };
        db.add_number(&n).await.unwrap();
    }
    Setup {
        db,
        team: team.id,
        script: stored.id,
        contact: contact.id,
        numbers,
        next: Default::default(),
    }
}

async fn schedule(s: &Setup, due: DateTime<Utc>) {
    let call = Call {
        contact_id: Some(s.contact),
        from_number: Some(
            s.numbers[s.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % s.numbers.len()].clone(),
        ),
        to_number: Some("+61429069971".into()),
        scheduled_time: due,
        due_ms: due.timestamp_millis(),
        ..Call::new(s.team, "outbound", s.script, "Australia/Sydney".into(), now())
    };
    s.db.insert_call(&call).await.unwrap();
}

fn dispatcher(s: &Setup) -> Dispatcher {
    let tools = tools::Tools::new(false, Arc::new(tools::RecordingSms::default()));
    Dispatcher::new(
        s.db.clone(),
        Arc::new(SystemClock),
        Arc::new(SimCarrier {
            delays: SimDelays::default(),
        }),
        Arc::new(RulesBrain),
        Arc::new(tools),
        DispatcherSettings {
            owner: "bench".into(),
            ..Default::default()
        },
    )
}

/// Lateness of each first dial (ms) and the number of calls ended.
async fn lateness(s: &Setup) -> (Vec<i64>, i64) {
    let Db::Sqlite { read, .. } = &s.db else { unreachable!() };
    let rows: Vec<(i64, DateTime<Utc>)> = sqlx::query_as(
        "SELECT c.due_ms, e.at FROM call_events e JOIN calls c ON c.id = e.call_id WHERE e.progress = 'dialing' AND e.attempt = 1",
    )
    .fetch_all(read)
    .await
    .unwrap();
    let ended: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM calls WHERE progress = 'ended'")
        .fetch_one(read)
        .await
        .unwrap();
    let mut late: Vec<i64> = rows
        .into_iter()
        .map(|(due, at)| (at.timestamp_millis() - due).max(0))
        .collect();
    late.sort();
    (late, ended)
}

fn pct(v: &[i64], p: f64) -> i64 {
    v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

/// Samples active calls every 20 ms until `done` calls have ended; returns the peak seen.
async fn watch(db: &Db, done: i64) -> i64 {
    let Db::Sqlite { read, .. } = db else { unreachable!() };
    let mut peak = 0;
    for _ in 0..600_000 {
        let (ended, active): (i64, i64) = sqlx::query_as(
            "SELECT SUM(progress = 'ended'), SUM(progress IN ('dialing', 'ringing', 'in_progress')) FROM calls",
        )
        .fetch_one(read)
        .await
        .unwrap();
        peak = peak.max(active);
        if ended >= done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    peak
}

#[tokio::main]
async fn main() {
    let calls = env("BENCH_CALLS", 10_000);
    let limit = env("BENCH_LIMIT", 50) as i32;
    let dir = tempfile::tempdir().unwrap();

    // Burst: everything due now.
    let s = setup(&dir, "burst.db", limit).await;
    for _ in 0..calls {
        schedule(&s, now() + chrono::Duration::days(1)).await;
    }
    // Then all due at one instant: now.
    if let Db::Sqlite { write, .. } = &s.db {
        sqlx::query("UPDATE calls SET due_ms = $1")
            .bind(now().timestamp_millis())
            .execute(write)
            .await
            .unwrap();
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = std::time::Instant::now();
    let running = tokio::spawn(dispatcher(&s).run(async {
        let _ = stop_rx.await;
    }));
    let peak = watch(&s.db, calls as i64).await;
    let elapsed = started.elapsed();
    let _ = stop_tx.send(());
    running.await.unwrap();
    let (late, ended) = lateness(&s).await;
    let rate = ended as f64 / elapsed.as_secs_f64();

    // Steady: 100 calls/s for 10 s, scheduled ahead so each is due while the dispatcher runs.
    let steady = setup(&dir, "steady.db", limit).await;
    let start = now() + chrono::Duration::seconds(2);
    for i in 0..1000 {
        schedule(&steady, start + chrono::Duration::milliseconds(10 * i)).await;
    }
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(dispatcher(&steady).run(async {
        let _ = stop_rx.await;
    }));
    let steady_peak = watch(&steady.db, 1000).await;
    let _ = stop_tx.send(());
    running.await.unwrap();
    let (steady_late, steady_ended) = lateness(&steady).await;

    println!(
        "\ndispatch on SQLite, sim carrier with zero delays, rules brain, team limit {limit}, {} caller ids at 10 calls/s each\n",
        env("BENCH_NUMBERS", 100)
    );
    println!("| measure | value | target |");
    println!("|---|---:|---:|");
    println!(
        "| burst: calls ended | {ended} of {calls} in {:.1} s | |",
        elapsed.as_secs_f64()
    );
    println!("| burst: calls ended per second | {rate:.0} | ≥ 500 |");
    println!(
        "| burst: lateness p50 / p99 | {} ms / {} ms | |",
        pct(&late, 0.5),
        pct(&late, 0.99)
    );
    println!("| burst: peak concurrent calls (sampled) | {peak} | ≤ {limit} |");
    println!("| steady 100/s: calls ended | {steady_ended} of 1000 | |");
    println!(
        "| steady 100/s: lateness p50 / p99 | {} ms / {} ms | p99 ≤ 250 ms |",
        pct(&steady_late, 0.5),
        pct(&steady_late, 0.99)
    );
    println!("| steady 100/s: peak concurrent calls | {steady_peak} | ≤ {limit} |");
}
