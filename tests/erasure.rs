//! Erasing a person (`DELETE /api/v1/contacts/{id}?erase=true`): afterwards no table holds their
//! number, name or email (bar the do-not-call list, which keeps them off the phone), and on
//! SQLite not even the database files do; their calls remain as anonymised records for counts.

mod common;

use std::sync::Arc;

use axum::http::Method;
use chrono::{Duration, Utc};
use common::{Receiver, TestApp, CALLER_ID};
use serde_json::json;
use voxd::{automations::notify::RecordingNotifier, clock::ManualClock, store::Db};

/// Strings that identify the person in the test.
const NEEDLES: [&str; 3] = ["429069971", "Quokka", "ava.quokka@example"];

/// Tables and their columns (as SQL expressions), from the database's own catalogue.
async fn columns(db: &Db) -> Vec<(String, String)> {
    match db {
        Db::Sqlite { read, .. } => {
            let tables: Vec<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .fetch_all(read)
            .await
            .unwrap();
            let mut out = Vec::new();
            for t in tables {
                let cols: Vec<String> = sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{t}')"))
                    .fetch_all(read)
                    .await
                    .unwrap();
                out.extend(cols.into_iter().map(|c| (t.clone(), format!("\"{c}\""))));
            }
            out
        }
        // Bytes as text, as SQLite's CAST reads them (PostgreSQL's cast of bytea is hex).
        Db::Postgres(pool) => sqlx::query_as(
            "SELECT table_name::text, CASE WHEN data_type = 'bytea' THEN 'encode(\"' || column_name || '\", ''escape'')'
                    ELSE '\"' || column_name || '\"' END
             FROM information_schema.columns WHERE table_schema = 'public'",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    }
}

/// Every (table, column, needle) where a needle is found.
async fn found(db: &Db) -> Vec<(String, String, &'static str)> {
    let mut hits = Vec::new();
    for (table, column) in columns(db).await {
        for needle in NEEDLES {
            let sql = format!("SELECT COUNT(*) FROM \"{table}\" WHERE CAST({column} AS TEXT) LIKE $1");
            let like = format!("%{needle}%");
            let n: i64 = match db {
                Db::Sqlite { read, .. } => sqlx::query_scalar(&sql).bind(&like).fetch_one(read).await.unwrap(),
                Db::Postgres(pool) => sqlx::query_scalar(&sql).bind(&like).fetch_one(pool).await.unwrap(),
            };
            if n > 0 {
                hits.push((table.clone(), column.clone(), needle));
            }
        }
    }
    hits
}

async fn an_erased_person_is_nowhere(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let receiver = Receiver::start().await;
    // Everything that copies a person's data: an automation, a webhook endpoint, a replayable
    // create, a list, an object link, calls done and to come.
    let automation = json!({"name": "CRM", "trigger": {"type": "call_completed"},
        "steps": [{"type": "destination", "url": format!("{}/crm", receiver.url),
                   "body": {"who": "{{contact.last_name}}", "phone": "{{contact.phone_number}}"}}]});
    app.post("/api/v1/automations", &automation).await.ok(201);
    app.post(
        "/api/v1/webhook-endpoints",
        &json!({"url": format!("{}/hook", receiver.url), "events": ["call.scheduled", "call.ended"]}),
    )
    .await
    .ok(201);
    let person = json!({"phone_number": "0429 069 971", "first_name": "Ava", "last_name": "Quokka",
                        "email": "ava.quokka@example.com", "metadata": {"note": "Quokka family"}});
    let created = app
        .call(
            Method::POST,
            "/api/v1/create-contact",
            Some(&person),
            &[("idempotency-key", "k1")],
        )
        .await;
    let contact_id = created.ok(201)["contact_id"].as_str().unwrap().to_owned();
    let list = app.post("/api/v1/create-list", &json!({"name": "Buyers"})).await;
    let list_id = list.ok(201)["list_id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/api/v1/add-contacts-to-list/{list_id}"),
        &json!({"contact": {"phone_number": "0429069971"}}),
    )
    .await
    .ok(200);
    app.post(
        "/api/v1/object-types",
        &json!({"type_name": "property", "display_name": "Property", "schema": {"address": "string"}}),
    )
    .await
    .ok(201);
    app.post(
        "/api/v1/upsert-object",
        &json!({"type_name": "property", "contact_id": contact_id, "data": {"id": "p1", "address": "1 Main St"}}),
    )
    .await
    .ok(201);
    let call = |when: chrono::DateTime<Utc>| {
        json!({"from_number": CALLER_ID, "script_id": script_id, "scheduled_time": when.to_rfc3339(),
               "contact": {"phone_number": "0429069971"}, "metadata": {"crm_note": "Quokka lead"},
               "variables": {"agent_name": "Sam"}})
    };
    let done = app.post("/api/v1/create-phone-call", &call(Utc::now())).await.ok(201)["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let later = app
        .post("/api/v1/create-phone-call", &call(Utc::now() + Duration::days(2)))
        .await
        .ok(201)["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let clock = Arc::new(ManualClock::new(Utc::now() + Duration::seconds(1)));
    common::sim_dispatcher(app, clock).run_once().await.unwrap();
    common::test_runner(app, Arc::new(RecordingNotifier::default()))
        .run_until_idle(20)
        .await
        .unwrap();
    assert!(!receiver.received().is_empty(), "the automation and webhooks ran");
    let before = found(&app.db).await;
    for table in [
        "contacts",
        "calls",
        "executions",
        "webhook_deliveries",
        "idempotency_keys",
    ] {
        assert!(
            before.iter().any(|(t, _, _)| t == table),
            "{table} held the person: {before:?}"
        );
    }
    // Another team cannot erase them.
    let (_, other) = app.other_team("others").await;
    let r = app
        .raw(
            Method::DELETE,
            &format!("/api/v1/contacts/{contact_id}?erase=true"),
            Some(&other),
            "",
        )
        .await;
    assert_eq!(r.status.as_u16(), 404);
    app.post("/api/v1/dnc", &json!({"phone_number": "0429069971", "reason": "asked"}))
        .await
        .ok(201);

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/contacts/{contact_id}?erase=true"),
            None,
            &[],
        )
        .await;
    let b = r.ok(200).clone();
    assert_eq!(b["deleted"], true);
    assert_eq!(b["erased"]["calls"], 2, "{b}");
    assert!(b["erased"]["executions"].as_u64().unwrap() >= 1, "{b}");
    assert!(b["erased"]["deliveries"].as_u64().unwrap() >= 2, "{b}");

    let after = found(&app.db).await;
    let left: Vec<_> = after.iter().filter(|(t, _, _)| t != "do_not_call").collect();
    assert!(left.is_empty(), "still named after erasure: {left:?}");
    // The calls stay, anonymised: the one done keeps its status, the one to come is cancelled.
    let c = app.get(&format!("/api/v1/get-call/{done}")).await.ok(200)["call"].clone();
    assert_eq!(
        (&c["status"], &c["progress"]),
        (&json!("completed"), &json!("ended")),
        "{c}"
    );
    assert!(c["contact_id"].is_null() && c["to_number"].is_null(), "{c}");
    let r = app.get(&format!("/api/v1/get-call-result/{done}")).await.ok(200)["call"].clone();
    assert_eq!(r["transcript"], json!([]));
    assert!(r["summary"].is_null());
    let c = app.get(&format!("/api/v1/get-call/{later}")).await.ok(200)["call"].clone();
    assert_eq!(
        (&c["progress"], &c["end_reason"]),
        (&json!("cancelled"), &json!("erased")),
        "{c}"
    );
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{contact_id}")).await.status.as_u16(),
        404
    );
    let list = app.get(&format!("/api/v1/lists/{list_id}")).await.ok(200)["list"].clone();
    assert_eq!(list["contact_count"], 0);
    // On SQLite, not even the files keep it (secure_delete, and the WAL checkpointed).
    if let Some(path) = app.database_url.strip_prefix("sqlite://") {
        for file in [path.to_owned(), format!("{path}-wal")] {
            let Ok(bytes) = std::fs::read(&file) else { continue };
            for needle in ["Quokka", "ava.quokka@example"] {
                let hit = bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
                assert!(!hit, "{file} still holds {needle}");
            }
        }
    }
    // Erasing again: there is no such contact.
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/contacts/{contact_id}?erase=true"),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 404);
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/contacts/{contact_id}?erase=yes"),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
}

/// A call under way cannot be erased mid-conversation; nothing changes.
async fn erasure_waits_for_calls_under_way(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let body = json!({"from_number": CALLER_ID, "script_id": script_id,
                      "contact": {"phone_number": "0429069971", "last_name": "Quokka"}});
    let id = app.post("/api/v1/create-phone-call", &body).await.ok(201)["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let call = app
        .db
        .get_call(app.team_id, id.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let contact_id = call.contact_id.unwrap();
    // A worker holds it, dialling.
    app.db
        .claim_due_calls(Utc::now() + Duration::seconds(1), "w1", 60_000, 10, 10, 0)
        .await
        .unwrap();
    let dialing = app.db.get_call(app.team_id, call.id).await.unwrap().unwrap();
    assert_eq!(dialing.progress.as_str(), "dialing");
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/contacts/{contact_id}?erase=true"),
            None,
            &[],
        )
        .await;
    r.error(409);
    assert_eq!(app.count("contacts").await, 1);
    assert!(!found(&app.db).await.is_empty());
}

/// Retention: transcripts and recordings older than the team keeps them are removed by the
/// sweep, once each; the calls and their analysis stay.
async fn retention_sweeps_what_is_kept_too_long(app: &TestApp) {
    use voxd::store::retention::Retention;
    let script_id = common::caller_id_and_script(app).await;
    let mut ids = Vec::new();
    for phone in ["0429069971", "0429069972"] {
        let body = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": phone, "first_name": "Ann"}});
        ids.push(
            app.post("/api/v1/create-phone-call", &body).await.ok(201)["call_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let clock = Arc::new(ManualClock::new(Utc::now() + Duration::seconds(1)));
    common::sim_dispatcher(app, clock).run_once().await.unwrap();
    // This node's recordings of the two calls.
    let dir = tempfile::tempdir().unwrap();
    for id in &ids {
        let path = voxd::voice::recording::path(dir.path(), id.parse().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"fLaC").unwrap();
    }
    let keep = Retention {
        recording_retention_days: Some(30),
        transcript_retention_days: Some(7),
    };
    assert!(app.db.set_team_retention(app.team_id, keep).await.unwrap());
    // Another team keeps everything: its calls are not touched.
    let now = Utc::now();
    let sweep = |days: i64| voxd::retention::sweep(&app.db, Some(dir.path()), now + Duration::days(days));
    assert_eq!(sweep(1).await.unwrap(), voxd::retention::Swept::default());
    let swept = sweep(8).await.unwrap();
    assert_eq!((swept.transcripts, swept.recordings), (2, 0));
    let r = app.get(&format!("/api/v1/get-call-result/{}", ids[0])).await.ok(200)["call"].clone();
    assert_eq!(r["transcript"], json!([]));
    assert!(
        r["summary"].as_str().is_some_and(|s| !s.is_empty()),
        "the analysis stays: {r}"
    );
    assert!(ids
        .iter()
        .all(|id| voxd::voice::recording::path(dir.path(), id.parse().unwrap()).exists()));
    let swept = sweep(31).await.unwrap();
    assert_eq!((swept.transcripts, swept.recordings), (0, 2));
    assert!(ids
        .iter()
        .all(|id| !voxd::voice::recording::path(dir.path(), id.parse().unwrap()).exists()));
    assert_eq!(sweep(60).await.unwrap(), voxd::retention::Swept::default(), "each once");
    let c = app.get(&format!("/api/v1/get-call/{}", ids[0])).await.ok(200)["call"].clone();
    assert_eq!(c["status"], "completed");
}

on_both_backends!(
    an_erased_person_is_nowhere,
    erasure_waits_for_calls_under_way,
    retention_sweeps_what_is_kept_too_long,
);
