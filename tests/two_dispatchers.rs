//! Two `voxd serve` processes on one PostgreSQL dispatch 1,000 due calls: none is dialled twice,
//! and the team's concurrent-call limit is never exceeded. (PostgreSQL only: it is the scale-out
//! backend; skipped without VOXD_TEST_DATABASE_URL.)

mod common;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};

use common::{Backend, TestApp};
use serde_json::json;
use uuid::Uuid;
use voxd::store::Db;

const CALLS: usize = 1000;
const LIMIT: i64 = 5;

/// In a `postgres` module so that `.ci/run`'s PostgreSQL pass (`-- postgres::`) selects it.
mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_share_the_queue_without_double_dials() {
        let Some(app) = TestApp::start(Backend::Postgres).await else {
            return;
        };
        let Db::Postgres(pool) = &app.db else { unreachable!() };
        let script_id = common::caller_id_and_script(&app).await;
        app.db
            .set_team_limits(app.team_id, None, Some(LIMIT as i32))
            .await
            .unwrap();
        for i in 0..CALLS {
            let body = json!({"from_number": "+61291234567", "script_id": script_id,
                "contact": {"phone_number": format!("0412{:05}1", i)}});
            app.post("/api/v1/create-phone-call", &body).await.ok(201);
        }
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("voxd.toml");
        std::fs::write(
            &config,
            "sim_ring_ms = 5\nsim_answer_ms = 5\ncalls_per_second_per_number = 0\n",
        )
        .unwrap();
        let mut a = common::spawn_serve(&app, &config);
        let mut b = common::spawn_serve(&app, &config);
        // Watch the lines in use as the database sees them (one consistent snapshot per sample).
        let deadline = Instant::now() + Duration::from_secs(240);
        let (mut peak, mut samples) = (0i64, 0);
        loop {
            let (ended, active): (i64, i64) = sqlx::query_as(
                "SELECT COUNT(*) FILTER (WHERE progress = 'ended'),
                        COUNT(*) FILTER (WHERE progress IN ('dialing', 'ringing', 'in_progress')) FROM calls",
            )
            .fetch_one(pool)
            .await
            .unwrap();
            peak = peak.max(active);
            samples += 1;
            if ended as usize == CALLS {
                break;
            }
            assert!(Instant::now() < deadline, "only {ended} of {CALLS} calls ended");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        a.kill().unwrap();
        b.kill().unwrap();
        a.wait().unwrap();
        b.wait().unwrap();

        let events: Vec<(Uuid, String, DateTime<Utc>, Option<String>)> =
            sqlx::query_as("SELECT call_id, progress, at, detail->>'worker' FROM call_events ORDER BY at, id")
                .fetch_all(pool)
                .await
                .unwrap();
        let mut dials: HashMap<Uuid, usize> = HashMap::new();
        let mut workers = std::collections::HashSet::new();
        for (call, progress, _, worker) in &events {
            if progress == "dialing" {
                *dials.entry(*call).or_default() += 1;
                workers.extend(worker.clone());
            }
        }
        assert_eq!(dials.len(), CALLS);
        assert!(dials.values().all(|&n| n == 1), "no call was dialled twice");
        assert_eq!(workers.len(), 2, "both processes took calls");
        assert!(
            peak <= LIMIT,
            "peak concurrency {peak} above the limit {LIMIT} ({samples} samples)"
        );
        assert!(peak >= 2, "calls did overlap (peak {peak} in {samples} samples)");
        app.cleanup().await;
    }
}
