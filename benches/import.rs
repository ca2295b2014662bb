//! CSV list import on the embedded SQLite, against a baseline measured in the same run:
//!
//! - `POST /api/v1/lists/{id}/import` with a 100,000-row file, over real TCP to the server
//!   in-process, streamed in: rows/s from the first byte sent to the answer;
//! - the baseline: the same rows (already parsed and normalised) written by raw batched inserts,
//!   a contact and its membership per row, 1000 rows per transaction, on a database of its own
//!   with the same settings;
//! - and the same file imported again (every row already in the list).
//!
//! Run: `cargo bench --bench import`. Env: `BENCH_ROWS` (default 100000), `BENCH_ROUNDS` (3; the
//! median ratio is reported).

use std::time::Instant;

use serde_json::Value;
use voxd::{
    api::{router, ApiSettings, AppState},
    domain::{api_key, new_id, now},
    store::{keys::ApiKey, teams::Team, Db, DbOptions},
};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let rows = env_usize("BENCH_ROWS", 100_000);
    let rounds = env_usize("BENCH_ROUNDS", 3);
    let dir = tempfile::tempdir().expect("temp dir");
    let csv = file(rows);
    println!(
        "voxd import benchmark: {rows} rows ({:.1} MB of CSV), SQLite (WAL), {rounds} rounds\n",
        csv.len() as f64 / 1e6
    );
    println!("| round | raw batched inserts rows/s | import rows/s | ratio | re-import rows/s |");
    println!("|------:|---------------------------:|--------------:|------:|-----------------:|");
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let raw = raw_inserts(&open(&dir, &format!("raw-{round}.db")).await, rows).await;
        let (import, again) = import(&open(&dir, &format!("api-{round}.db")).await, &csv, rows).await;
        ratios.push(import / raw);
        println!(
            "| {} | {raw:.0} | {import:.0} | {:.0}% | {again:.0} |",
            round + 1,
            100.0 * import / raw
        );
    }
    ratios.sort_by(|a, b| a.total_cmp(b));
    println!(
        "\nmedian: import = {:.0}% of raw batched inserts",
        100.0 * ratios[ratios.len() / 2]
    );
}

/// Distinct valid Australian mobiles, in the national form people paste.
fn phone(i: usize) -> String {
    format!("041{:07}", i)
}

fn file(rows: usize) -> String {
    let mut csv = String::from("phone_number,first_name,last_name,email,metadata.source\n");
    for i in 0..rows {
        csv.push_str(&format!("{},Person{i},Bench,p{i}@example.com,open home\n", phone(i)));
    }
    csv
}

async fn open(dir: &tempfile::TempDir, file: &str) -> Db {
    let url = format!("sqlite://{}", dir.path().join(file).display());
    let db = Db::connect(&DbOptions {
        url,
        max_connections: 8,
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

/// Rows/s of the import, then of importing the same file again.
async fn import(db: &Db, csv: &str, rows: usize) -> (f64, f64) {
    let (_, key) = team(db).await;
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
    let client = reqwest::Client::new();
    let list: Value = client
        .post(format!("{base}/api/v1/create-list"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"name": "bench"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let list_id = list["list_id"].as_str().unwrap().to_owned();
    let mut rates = Vec::new();
    for expect in ["created", "already_in_list"] {
        let started = Instant::now();
        let answer: Value = client
            .post(format!("{base}/api/v1/lists/{list_id}/import"))
            .bearer_auth(&key)
            .header("content-type", "text/csv")
            .body(csv.to_owned())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(answer[expect], rows as u64, "{answer}");
        rates.push(rows as f64 / secs);
    }
    server.abort();
    (rates[0], rates[1])
}

/// Rows/s of writing the same contacts and memberships with plain batched inserts.
async fn raw_inserts(db: &Db, rows: usize) -> f64 {
    let (team_id, _) = team(db).await;
    let Db::Sqlite { write, .. } = db else {
        unreachable!("the bench runs on SQLite")
    };
    let list_id = new_id();
    sqlx::query("INSERT INTO lists (id, team_id, name, created_at, updated_at) VALUES ($1, $2, 'raw', $3, $3)")
        .bind(list_id)
        .bind(team_id)
        .bind(now())
        .execute(write)
        .await
        .unwrap();
    // Parsed and normalised beforehand: the baseline is the writing alone.
    let contacts: Vec<(uuid::Uuid, String, String, String)> = (0..rows)
        .map(|i| {
            (
                new_id(),
                format!("+61{}", &phone(i)[1..]),
                format!("Person{i}"),
                format!("p{i}@example.com"),
            )
        })
        .collect();
    let started = Instant::now();
    for chunk in contacts.chunks(1000) {
        let mut tx = write.begin().await.unwrap();
        let at = now();
        for (id, number, first, email) in chunk {
            sqlx::query(
                "INSERT INTO contacts (id, team_id, phone_number, first_name, last_name, email, metadata, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'Bench', $5, '{\"source\":\"open home\"}', $6, $6)",
            )
            .bind(id)
            .bind(team_id)
            .bind(number)
            .bind(first)
            .bind(email)
            .bind(at)
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query("INSERT INTO list_members (list_id, contact_id, added_at) VALUES ($1, $2, $3)")
                .bind(list_id)
                .bind(id)
                .bind(at)
                .execute(&mut *tx)
                .await
                .unwrap();
        }
        tx.commit().await.unwrap();
    }
    rows as f64 / started.elapsed().as_secs_f64()
}
