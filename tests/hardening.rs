//! One tenant must not take the server down: what an attacker (or a careless team) sends is
//! refused with a 4xx, recorded as a failure, or rate-limited; nothing hangs, panics a worker or
//! loops. Each case here failed before the fix it covers.

mod common;

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use axum::http::{Method, Request};
use chrono::Utc;
use common::{Receiver, TestApp, CALLER_ID};
use serde_json::{json, Value};
use voxd::{
    automations::{notify::RecordingNotifier, AutomationSettings, Runner},
    carrier::{Carrier, Dial, Placed, ProgressSink},
    clock::{ManualClock, SystemClock},
    domain::{new_id, now, signature::standard_sign},
    store::objects::ObjectType,
};

/// Bounds a request that used to hang, so a regression fails instead of stalling the suite.
async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not answer within 30 s"))
}

async fn hook_path(app: &TestApp, def: &Value) -> (String, Option<String>) {
    let r = app.post("/api/v1/automations", def).await;
    let hook = &r.ok(201)["hook"];
    (
        hook["path"].as_str().unwrap().to_owned(),
        hook["secret"].as_str().map(str::to_owned),
    )
}

async fn post_hook(app: &TestApp, path: &str, body: &[u8], headers: &[(&str, String)]) -> common::TestResponse {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    app.send(req.body(axum::body::Body::from(body.to_vec())).unwrap()).await
}

/// A runner that refuses private targets, as a default server does.
fn guarded_runner(app: &TestApp) -> Runner {
    Runner::new(
        app.db.clone(),
        Arc::new(SystemClock),
        Arc::new(RecordingNotifier::default()),
        AutomationSettings {
            retry_base: Duration::from_millis(10),
            retry_cap: Duration::from_millis(50),
            ..AutomationSettings::default()
        },
    )
}

async fn execution(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/executions/{id}")).await.ok(200)["execution"].clone()
}

/// A reference cycle that never reaches the data (the reported one and its relatives), and shapes
/// that explode, are refused when the type is created, in every validation mode.
async fn unbounded_schemas_are_refused_at_creation(app: &TestApp) {
    let shapes = [
        json!({"$defs": {"x": {"$ref": "#/$defs/y"}, "y": {"$ref": "#/$defs/x"}}, "$ref": "#/$defs/x"}),
        json!({"$ref": "#"}),
        json!({"allOf": [{"$ref": "#"}]}),
        json!({"properties": {"a": {"anyOf": [{"$ref": "#/properties/a"}]}}}),
        json!({"if": {"$ref": "#"}, "then": {}}),
        json!({"not": {"not": {"$ref": "#"}}}),
        json!({"$ref": "https://example.com/schema.json"}),
        json!({"$ref": "#/$defs/missing"}),
    ];
    for schema in shapes {
        for mode in ["strict", "warn", "off"] {
            let body = json!({"type_name": "loop", "display_name": "L", "validation_mode": mode, "schema": schema});
            let r = within("create-object-type", app.post("/api/v1/object-types", &body)).await;
            let message = r.error(400);
            assert_eq!(r.body["field"], "schema", "{message}");
        }
    }
    // 2^20 subschemas for one value.
    let mut defs = serde_json::Map::new();
    for i in 0..20 {
        let next = format!("#/$defs/d{}", i + 1);
        defs.insert(format!("d{i}"), json!({"anyOf": [{"$ref": next}, {"$ref": next}]}));
    }
    defs.insert("d20".into(), json!({"type": "object"}));
    let body = json!({"type_name": "boom", "display_name": "B", "validation_mode": "strict",
        "schema": {"$defs": defs, "$ref": "#/$defs/d0"}});
    assert!(app
        .post("/api/v1/object-types", &body)
        .await
        .error(400)
        .contains("subschemas"));
    assert_eq!(app.count("object_types").await, 0);
    // Recursion through the data is fine, and validates.
    let tree = json!({"type_name": "tree", "display_name": "T", "validation_mode": "strict",
        "schema": {"type": "object", "properties": {"id": {"type": "string"}, "child": {"$ref": "#"}}}});
    app.post("/api/v1/object-types", &tree).await.ok(201);
    let good = json!({"type_name": "tree", "data": {"id": "a", "child": {"id": "b"}}});
    app.post("/api/v1/upsert-object", &good).await.ok(201);
    let bad = json!({"type_name": "tree", "data": {"id": "c", "child": {"id": 5}}});
    assert!(app
        .post("/api/v1/upsert-object", &bad)
        .await
        .error(400)
        .contains("1 violation"));
}

/// A type stored before these checks with a looping schema costs its own requests a 400 (in
/// bounded time), and an automation step a recorded failure; the server keeps serving.
async fn a_stored_looping_schema_costs_a_400_not_the_server(app: &TestApp) {
    let looping = json!({"$defs": {"x": {"$ref": "#/$defs/y"}, "y": {"$ref": "#/$defs/x"}}, "$ref": "#/$defs/x"});
    for mode in ["strict", "warn"] {
        let t = ObjectType {
            id: new_id(),
            team_id: app.team_id,
            type_name: format!("legacy_{mode}"),
            display_name: "Legacy".into(),
            description: None,
            schema: sqlx::types::Json(looping.clone()),
            schema_form: "json_schema".into(),
            json_schema: sqlx::types::Json(looping.clone()),
            validation_mode: mode.into(),
            unique_by_contact: false,
            created_at: now(),
            updated_at: now(),
        };
        app.db.create_object_type(&t).await.unwrap();
        let body = json!({"type_name": t.type_name, "data": {"id": "1", "a": 1}});
        let r = within("upsert-object", app.post("/api/v1/upsert-object", &body)).await;
        // Either bound may come first (the complexity one on a fast CPU, the time one on a slow
        // or busy one): both are a 400 on the data.
        let message = r.error(400);
        assert!(
            message.contains("too complex") || message.contains("took longer"),
            "{}",
            r.body
        );
        assert_eq!(r.body["field"], "data");
    }
    let script_id = common::caller_id_and_script(app).await;
    let call = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0412345671"},
        "object": {"type_name": "legacy_warn", "data": {"id": "p1"}}});
    let r = within("create-phone-call", app.post("/api/v1/create-phone-call", &call)).await;
    assert_eq!(r.body["field"], "object.data", "{}", r.body);
    r.error(400);
    for table in ["objects", "calls", "contacts"] {
        assert_eq!(app.count(table).await, 0, "{table} written");
    }
    let def = json!({"name": "Loop", "trigger": {"type": "webhook"}, "steps": [
        {"type": "upsert_object", "object_type": "legacy_strict", "data": {"id": "trigger.id"}}]});
    let (path, _) = hook_path(app, &def).await;
    let exec = post_hook(app, &path, br#"{"id": "9"}"#, &[]).await.ok(202)["execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    within("the automation", guarded_runner(app).run_until_idle(5))
        .await
        .unwrap();
    let e = execution(app, &exec).await;
    assert_eq!(e["status"], "Failed", "{e}");
    assert_eq!(e["steps"][0]["status"], "Failed");
    let error = e["steps"][0]["error"].as_str().unwrap();
    assert!(error.contains("too complex") || error.contains("took longer"), "{e}");
    app.get("/api/v1/health").await.ok(200);
}

/// A bad date format is refused when the automation is saved; a format the value cannot fill
/// fails its step with the reason (it used to panic the worker and leave the execution stuck).
async fn date_transforms_are_checked_and_never_panic(app: &TestApp) {
    for format in ["date:%Q", "date:%", "date:%Y-%"] {
        let def = json!({"name": "Dates", "trigger": {"type": "webhook"}, "steps": [
            {"type": "transform", "mappings": [{"source": "trigger.d", "target": "d", "transform": format}]}]});
        let r = app.post("/api/v1/automations", &def).await;
        r.error(400);
        assert_eq!(r.body["field"], "steps[0].mappings[0].transform", "{}", r.body);
    }
    assert_eq!(app.count("automations").await, 0);
    let def = json!({"name": "Time of a date", "trigger": {"type": "webhook"}, "steps": [
        {"type": "transform", "mappings": [{"source": "trigger.d", "target": "t", "transform": "date:HH:mm"}]}]});
    let (path, _) = hook_path(app, &def).await;
    let exec = post_hook(app, &path, br#"{"d": "2026-03-04"}"#, &[]).await.ok(202)["execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let runner = guarded_runner(app);
    runner.run_until_idle(5).await.unwrap();
    let e = execution(app, &exec).await;
    assert_eq!(e["status"], "Failed", "{e}");
    assert!(e["steps"][0]["error"].as_str().unwrap().contains("time of day"), "{e}");
    // Retryable: it runs again and fails the same way, not stuck in Processing.
    app.post(&format!("/api/v1/executions/{exec}/retry"), &json!({}))
        .await
        .ok(200);
    runner.run_until_idle(5).await.unwrap();
    assert_eq!(execution(app, &exec).await["status"], "Failed");
}

/// An execution claimed again and again without committing a step (its worker died on it each
/// time) is dead-lettered instead of run once more.
async fn a_poison_execution_is_dead_lettered(app: &TestApp) {
    let def = json!({"name": "Poison", "trigger": {"type": "webhook"}, "steps": [
        {"type": "transform", "mappings": [{"source": "trigger.a", "target": "a"}]}]});
    let (path, _) = hook_path(app, &def).await;
    let exec = post_hook(app, &path, br#"{"a": 1}"#, &[]).await.ok(202)["execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Six workers claim it and die (their leases run out at once).
    for i in 0..6 {
        let now_ms = Utc::now().timestamp_millis() + i;
        let claimed = app
            .db
            .claim_executions(now_ms, &format!("dead-{i}"), -1000, 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
    }
    guarded_runner(app).run_until_idle(5).await.unwrap();
    let e = execution(app, &exec).await;
    assert_eq!(e["status"], "Dead Letter", "{e}");
    assert!(e["error"].as_str().unwrap().contains("picked up 6 times"), "{e}");
    // A retry starts it afresh, and it completes.
    app.post(&format!("/api/v1/executions/{exec}/retry"), &json!({}))
        .await
        .ok(200);
    guarded_runner(app).run_until_idle(5).await.unwrap();
    assert_eq!(execution(app, &exec).await["status"], "Completed");
}

/// A call whose worker is lost on every attempt stops being retried after a few.
async fn a_call_that_keeps_losing_its_worker_stops(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let body = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0412345671"},
        "retry_policy": {"max_attempts": 10, "backoff_seconds": 1}});
    let call_id = app.post("/api/v1/create-phone-call", &body).await.ok(201)["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut at = Utc::now() + chrono::Duration::seconds(1);
    for _ in 0..6 {
        // Each pass recovers the previous (lost) attempt, then claims the call again and "dies".
        app.db.claim_due_calls(at, "doomed", -1000, 10, 10, 0).await.unwrap();
        at += chrono::Duration::hours(1);
    }
    let call = app.get(&format!("/api/v1/get-call/{call_id}")).await.ok(200)["call"].clone();
    assert_eq!(call["progress"], "ended", "{call}");
    assert_eq!(call["end_reason"], "worker lost");
    assert_eq!(call["attempts"], voxd::domain::call::MAX_LOST_ATTEMPTS, "{call}");
}

/// A carrier that panics mid-call.
struct PanickingCarrier;

#[async_trait]
impl Carrier for PanickingCarrier {
    fn name(&self) -> &'static str {
        "panicking"
    }
    async fn place(&self, _: Dial, _: &dyn ProgressSink) -> Placed {
        panic!("carrier exploded")
    }
}

/// A panic while a call runs ends that attempt `failed` with the reason, at once.
async fn a_panicking_call_attempt_is_recorded(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let body = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0412345671"}});
    let call_id = app.post("/api/v1/create-phone-call", &body).await.ok(201)["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tools =
        voxd::conversation::tools::Tools::new(true, Arc::new(voxd::conversation::tools::RecordingSms::default()));
    let clock = Arc::new(ManualClock::new(Utc::now() + chrono::Duration::seconds(1)));
    let dispatcher = voxd::dispatcher::Dispatcher::new(
        app.db.clone(),
        clock,
        Arc::new(PanickingCarrier),
        Arc::new(voxd::conversation::brain::rules::RulesBrain),
        Arc::new(tools),
        Default::default(),
    );
    assert_eq!(dispatcher.run_once().await.unwrap(), 1);
    let call = app.get(&format!("/api/v1/get-call/{call_id}")).await.ok(200)["call"].clone();
    assert_eq!(call["progress"], "ended", "{call}");
    assert_eq!(call["status"], "failed");
    assert_eq!(call["end_reason"], "worker error");
}

/// New signed hooks use Standard Webhooks signatures: a captured request cannot be replayed (the
/// id dedupes, the timestamp expires) and a tampered one is refused. Body-only HMAC stays
/// available for Voxworks senders.
async fn signed_hooks_are_replay_safe(app: &TestApp) {
    let def = json!({"name": "Signed", "trigger": {"type": "webhook", "signed": true}, "steps": [
        {"type": "transform", "mappings": [{"source": "trigger.a", "target": "a"}]}]});
    let r = app.post("/api/v1/automations", &def).await;
    assert_eq!(r.ok(201)["automation"]["trigger"]["signature"], "standard");
    let path = r.body["hook"]["path"].as_str().unwrap().to_owned();
    let secret = r.body["hook"]["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let body = br#"{"a": 1}"#;
    let signed = |id: &str, ts: i64, body: &[u8]| {
        vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", ts.to_string()),
            ("webhook-signature", standard_sign(&secret, id, ts, body)),
        ]
    };
    let ts = Utc::now().timestamp();
    let first = post_hook(app, &path, body, &signed("msg_1", ts, body)).await;
    let exec = first.ok(202)["execution_id"].clone();
    // The same request five times: one execution.
    for _ in 0..5 {
        let again = post_hook(app, &path, body, &signed("msg_1", ts, body)).await;
        assert_eq!(again.ok(200)["duplicate"], true);
        assert_eq!(again.body["execution_id"], exec);
    }
    // Even with an idempotency key of the replayer's choosing.
    let mut h = signed("msg_1", ts, body);
    h.push(("idempotency-key", "fresh".into()));
    assert_eq!(post_hook(app, &path, body, &h).await.ok(200)["duplicate"], true);
    // Old, future, tampered, missing.
    let old = ts - 301;
    assert!(post_hook(app, &path, body, &signed("msg_2", old, body))
        .await
        .error(401)
        .contains("minutes"));
    post_hook(app, &path, body, &signed("msg_3", ts + 400, body))
        .await
        .error(401);
    let mut tampered = signed("msg_4", ts, body);
    tampered[1].1 = (ts + 1).to_string();
    post_hook(app, &path, body, &tampered).await.error(401);
    post_hook(app, &path, br#"{"a": 2}"#, &signed("msg_5", ts, body))
        .await
        .error(401);
    assert!(post_hook(app, &path, body, &[]).await.error(401).contains("webhook-id"));
    assert_eq!(app.count("executions").await, 1);

    // The body-only scheme, on request, and a switch of scheme makes a new secret of its kind.
    let id = r.body["automation_id"].as_str().unwrap();
    let mut body_def = def.clone();
    body_def["trigger"]["signature"] = json!("body");
    let r = app
        .call(Method::PUT, &format!("/api/v1/automations/{id}"), Some(&body_def), &[])
        .await;
    let body_secret = r.ok(200)["hook"]["secret"].as_str().unwrap().to_owned();
    assert!(body_secret.starts_with("hks_"));
    let sig = common::hook_signature(&body_secret, body);
    post_hook(app, &path, body, &[("x-webhook-signature", sig.clone())])
        .await
        .ok(202);
    // Replayable by design (documented), unless an idempotency key is sent.
    post_hook(app, &path, body, &[("x-webhook-signature", sig)])
        .await
        .ok(202);
    post_hook(app, &path, body, &signed("msg_9", ts, body)).await.error(401);
}

/// Hook idempotency follows the API's rule: both header spellings, and the same key with another
/// body is a 409 that starts nothing.
async fn hook_idempotency_matches_the_api(app: &TestApp) {
    let def = json!({"name": "Open", "trigger": {"type": "webhook"}, "steps": [
        {"type": "transform", "mappings": [{"source": "trigger.a", "target": "a"}]}]});
    let (path, _) = hook_path(app, &def).await;
    for header in ["idempotency-key", "x-idempotency-key"] {
        let key = format!("k-{header}");
        let first = post_hook(app, &path, br#"{"a": 1}"#, &[(header, key.clone())]).await;
        let id = first.ok(202)["execution_id"].clone();
        let again = post_hook(app, &path, br#"{"a": 1}"#, &[(header, key.clone())]).await;
        assert_eq!(again.ok(200)["execution_id"], id);
        let other = post_hook(app, &path, br#"{"a": 2}"#, &[(header, key)]).await;
        assert!(other.error(409).contains("different body"));
    }
    assert_eq!(app.count("executions").await, 2);
    post_hook(app, &path, b"{}", &[("idempotency-key", "x".repeat(256))])
        .await
        .error(400);
}

/// Private targets are refused in every IPv6 spelling that embeds a private IPv4 address, and a
/// name resolving to one fails at once, permanently, naming the setting.
async fn private_targets_are_refused_in_every_form(app: &TestApp) {
    let receiver = Receiver::start().await;
    let port = receiver.url.rsplit(':').next().unwrap().to_owned();
    for host in [
        "[::127.0.0.1]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "[::ffff:127.0.0.1]",
        "localhost",
        "localhost.",
    ] {
        let def = json!({"name": "Out", "trigger": {"type": "webhook"}, "steps": [
            {"type": "destination", "url": format!("http://{host}:{port}/x")}]});
        let (path, _) = hook_path(app, &def).await;
        let exec = post_hook(app, &path, b"{}", &[]).await.ok(202)["execution_id"]
            .as_str()
            .unwrap()
            .to_owned();
        guarded_runner(app).run_until_idle(5).await.unwrap();
        let e = execution(app, &exec).await;
        assert_eq!(e["status"], "Failed", "{host}: {e}");
        assert_eq!(e["steps"][0]["attempts"], 1, "{host}: retried as if transient");
        let error = e["steps"][0]["error"].as_str().unwrap();
        assert!(
            error.contains("set allow_private_network to allow it"),
            "{host}: {error}"
        );
    }
    assert!(receiver.received().is_empty());
    // Event webhooks to a name resolving to loopback: one try, failed, with the hint.
    app.post(
        "/api/v1/webhook-endpoints",
        &json!({"url": format!("http://localhost:{port}/e"), "events": ["call.scheduled"]}),
    )
    .await
    .ok(201);
    let script_id = common::caller_id_and_script(app).await;
    let call = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0412345671"}});
    app.post("/api/v1/create-phone-call", &call).await.ok(201);
    guarded_runner(app).run_until_idle(5).await.unwrap();
    let id = app.get("/api/v1/webhook-endpoints").await.body["endpoints"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let log = app.get(&format!("/api/v1/webhook-endpoints/{id}/deliveries")).await;
    let d = &log.ok(200)["deliveries"][0];
    assert_eq!(d["status"], "failed", "{d}");
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(
        d["last_error"],
        "localhost resolves to a private address (set allow_private_network to allow it)"
    );
    assert!(receiver.received().is_empty());
}

/// Explicit non-JSON bodies are a 415 (a missing content type is still read as JSON); NUL in text
/// is refused the same way on both backends, in bodies, queries and paths.
async fn content_types_and_nul_are_refused_alike(app: &TestApp) {
    let contact = br#"{"phone_number": "0412345671"}"#.to_vec();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let req = Request::post("/api/v1/create-contact")
            .header("authorization", format!("Bearer {}", app.key))
            .header("content-type", ct)
            .body(axum::body::Body::from(contact.clone()))
            .unwrap();
        let r = app.send(req).await;
        assert!(r.error(415).contains("application/json"), "{ct}");
    }
    let def = json!({"name": "Open", "trigger": {"type": "webhook"}, "steps": [
        {"type": "transform", "mappings": [{"source": "trigger.a", "target": "a"}]}]});
    let (path, _) = hook_path(app, &def).await;
    let req = Request::post(&path)
        .header("content-type", "text/plain")
        .body(axum::body::Body::from("{}"))
        .unwrap();
    app.send(req).await.error(415);
    assert_eq!(app.count("contacts").await, 0);
    assert_eq!(app.count("executions").await, 0);
    for ct in [
        None,
        Some("application/json; charset=utf-8"),
        Some("application/merge-patch+json"),
    ] {
        let mut req = Request::post("/api/v1/create-contact").header("authorization", format!("Bearer {}", app.key));
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let phone = format!("04123456{}", 70 + app.count("contacts").await);
        let body = json!({"phone_number": phone}).to_string();
        app.send(req.body(axum::body::Body::from(body)).unwrap()).await.ok(201);
    }

    let nul = json!({"phone_number": "0412345679", "first_name": "A\u{0}B"});
    let r = app.post("/api/v1/create-contact", &nul).await;
    assert!(r.error(400).contains("NUL"));
    assert_eq!(r.body["field"], "first_name");
    let nested = json!({"type_name": "t", "display_name": "T", "schema": {"a\u{0}": "string"}});
    assert!(app
        .post("/api/v1/object-types", &nested)
        .await
        .error(400)
        .contains("NUL"));
    post_hook(app, &path, br#"{"a": "\u0000"}"#, &[]).await.error(400);
    app.get("/api/v1/contacts?phone_number=%00").await.error(400);
    app.get("/api/v1/object-types/by-name/a%00b").await.error(400);
    // A backslash before `u0000` is text, not NUL.
    let escaped = json!({"phone_number": "0412345678", "first_name": "\\u0000"});
    app.post("/api/v1/create-contact", &escaped).await.ok(201);
    assert_eq!(app.count("executions").await, 0);
}

/// Requests with a missing, unknown or revoked key are limited per client address, cheaply: once
/// limited, no lookup is made (the database may be gone and the answer is still 429). A hook's
/// unknown tokens count the same. A team's limit is shared by all its keys.
async fn the_unauthenticated_are_limited_per_address(backend: common::Backend) {
    let settings = voxd::api::ApiSettings {
        unauthenticated_per_second: 3,
        trusted_proxy_header: Some(axum::http::HeaderName::from_static("x-forwarded-for")),
        key_cache_ttl: Duration::ZERO,
        ..Default::default()
    };
    let Some(app) = TestApp::start_with(backend, settings).await else {
        return;
    };
    let from = |ip: &str, key: Option<&str>, path: &str| {
        let mut req = Request::get(path).header("x-forwarded-for", format!("10.9.9.9, {ip}"));
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        req.body(axum::body::Body::empty()).unwrap()
    };
    for key in [None, Some("vxd_made_up"), Some("vxd_made_up_too")] {
        app.send(from("203.0.113.7", key, "/api/v1/contacts")).await.error(401);
    }
    let r = app
        .send(from("203.0.113.7", Some("vxd_another"), "/api/v1/contacts"))
        .await;
    r.error(429);
    assert!(r.header("retry-after").is_some());
    // Other addresses are not affected, and good keys work from them.
    app.send(from("203.0.113.8", Some("vxd_made_up"), "/api/v1/contacts"))
        .await
        .error(401);
    app.send(from("203.0.113.8", Some(&app.key), "/api/v1/contacts"))
        .await
        .ok(200);
    // Unknown hook tokens from one address: 404 until limited.
    let hook = |ip: &str| {
        Request::post(format!("/api/v1/hooks/hk_nothing_{ip}"))
            .header("x-forwarded-for", ip)
            .body(axum::body::Body::from("{}"))
            .unwrap()
    };
    for _ in 0..3 {
        app.send(hook("198.51.100.3")).await.error(404);
    }
    app.send(hook("198.51.100.3")).await.error(429);
    // Once limited, nothing is looked up: with the database closed the answer is still 429.
    app.db.close().await;
    for _ in 0..50 {
        app.send(from("203.0.113.7", Some("vxd_flood"), "/api/v1/contacts"))
            .await
            .error(429);
    }
    app.cleanup().await;

    // All of a team's keys share its limit.
    let app = TestApp::start_with(backend, voxd::api::ApiSettings::default())
        .await
        .unwrap();
    let (team, first) = app.team_with_rate("pair", 4).await;
    let second = voxd::domain::api_key::generate();
    let key = voxd::store::keys::ApiKey {
        id: new_id(),
        team_id: team,
        name: Some("second".into()),
        prefix: second.prefix.clone(),
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
    };
    app.db.create_key(&key, &second.hash).await.unwrap();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let k = if i % 2 == 0 { &first } else { &second.secret };
        statuses.push(app.get_as(k, "/api/v1/contacts").await.status.as_u16());
    }
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert!(limited >= 3, "two keys at 4/s each got {statuses:?}");
    app.cleanup().await;
}

/// These tests make their own apps (other settings); named like `on_both_backends!`'s.
mod limits {
    mod sqlite {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_unauthenticated_are_limited_per_address() {
            super::super::the_unauthenticated_are_limited_per_address(crate::common::Backend::Sqlite).await;
        }
    }
    mod postgres {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn the_unauthenticated_are_limited_per_address() {
            super::super::the_unauthenticated_are_limited_per_address(crate::common::Backend::Postgres).await;
        }
    }
}

on_both_backends!(
    unbounded_schemas_are_refused_at_creation,
    a_stored_looping_schema_costs_a_400_not_the_server,
    date_transforms_are_checked_and_never_panic,
    a_poison_execution_is_dead_lettered,
    a_call_that_keeps_losing_its_worker_stops,
    a_panicking_call_attempt_is_recorded,
    signed_hooks_are_replay_safe,
    hook_idempotency_matches_the_api,
    private_targets_are_refused_in_every_form,
    content_types_and_nul_are_refused_alike,
    another_teams_ids_are_404_everywhere,
);

/// Every operation of the served spec that takes an id (or name), called by another team with
/// the first team's ids: a 404 each, and nothing of the first team changes. A new id-taking path
/// fails this test until the sweep knows how to make its resource.
async fn another_teams_ids_are_404_everywhere(app: &TestApp) {
    let id = |r: &common::TestResponse, field: &str| r.body[field].as_str().unwrap_or_default().to_owned();
    // One of everything, in the first team.
    let script_id = common::caller_id_and_script(app).await;
    let contact = app
        .post(
            "/api/v1/create-contact",
            &json!({"phone_number": "0412345671", "first_name": "Ann"}),
        )
        .await;
    let contact_id = id(&contact, "contact_id");
    let list = app.post("/api/v1/create-list", &json!({"name": "Buyers"})).await;
    let list_id = id(&list, "list_id");
    app.post(
        &format!("/api/v1/add-contacts-to-list/{list_id}"),
        &json!({"contact": {"phone_number": "0412345671"}}),
    )
    .await
    .ok(200);
    app.post(
        "/api/v1/object-types",
        &json!({"type_name": "property", "display_name": "Property", "schema": {"address": "string"}}),
    )
    .await
    .ok(201);
    let object = app
        .post(
            "/api/v1/upsert-object",
            &json!({"type_name": "property", "data": {"id": "p1", "address": "1 Main St"}}),
        )
        .await;
    let object_id = id(&object, "object_id");
    app.post(
        "/api/v1/webhook-endpoints",
        &json!({"url": "https://crm.example.com/voxd", "events": ["call.scheduled"]}),
    )
    .await
    .ok(201);
    let call = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0412345672"},
        "scheduled_time": (Utc::now() + chrono::Duration::days(1)).to_rfc3339()});
    let call_id = id(&app.post("/api/v1/create-phone-call", &call).await, "call_id");
    let def = json!({"name": "Hook", "trigger": {"type": "webhook"}, "steps": [
        {"type": "transform", "mappings": [{"source": "trigger.a", "target": "a"}]}]});
    let automation = app.post("/api/v1/automations", &def).await;
    let automation_id = id(&automation, "automation_id");
    let path = automation.body["hook"]["path"].as_str().unwrap().to_owned();
    let execution_id = id(&post_hook(app, &path, b"{}", &[]).await, "execution_id");
    // Fan the call's event out to a delivery (refused: a private network is not involved here,
    // but the name does not resolve; either way the delivery row exists).
    guarded_runner(app).run_until_idle(3).await.unwrap();
    let endpoints = app.get("/api/v1/webhook-endpoints").await;
    let endpoint_id = endpoints.body["endpoints"][0]["id"].as_str().unwrap().to_owned();
    let deliveries = app
        .get(&format!("/api/v1/webhook-endpoints/{endpoint_id}/deliveries"))
        .await;
    let delivery_id = deliveries.body["deliveries"][0]["id"].as_str().unwrap().to_owned();
    let campaign = app
        .post(
            "/api/v1/campaigns",
            &json!({"name": "Buyers", "list_id": list_id, "script_id": script_id, "from_number": CALLER_ID,
                    "scheduled_time": (Utc::now() + chrono::Duration::days(3)).to_rfc3339()}),
        )
        .await;
    let campaign_id = campaign.body["campaign"]["id"].as_str().unwrap_or_default().to_owned();
    app.post(
        "/api/v1/dnc",
        &json!({"phone_number": "0412345673", "reason": "Buyers"}),
    )
    .await
    .ok(201);
    let numbers = app.get("/api/v1/phone-numbers").await;
    let number_id = numbers.body["phone_numbers"][0]["id"].as_str().unwrap().to_owned();
    let trunk = app
        .post("/api/v1/trunks", &json!({"name": "pbx", "uri": "sip:pbx.example"}))
        .await;
    let trunk_id = trunk.body["trunk"]["id"].as_str().unwrap_or_default().to_owned();
    let ids: std::collections::HashMap<&str, String> = [
        ("number_id", number_id.clone()),
        ("trunk_id", trunk_id.clone()),
        ("phone_number", "+61412345673".to_owned()),
        ("campaign_id", campaign_id.clone()),
        ("contact_id", contact_id.clone()),
        ("list_id", list_id.clone()),
        ("object_id", object_id.clone()),
        ("type_name", "property".to_owned()),
        ("call_id", call_id.clone()),
        ("script_id", script_id.clone()),
        ("version", "1".to_owned()),
        ("automation_id", automation_id.clone()),
        ("execution_id", execution_id.clone()),
        ("endpoint_id", endpoint_id.clone()),
        ("delivery_id", delivery_id.clone()),
    ]
    .into_iter()
    .collect();
    for (name, value) in &ids {
        assert!(!value.is_empty(), "no {name} was made");
    }

    let (_, other) = app.other_team("intruders").await;
    let their_contact = app
        .post_as(&other, "/api/v1/create-contact", &json!({"phone_number": "0499999999"}))
        .await;
    let their_contact_id = id(&their_contact, "contact_id");
    // Bodies valid enough to get past input checks to the lookup.
    let body_for = |path: &str| -> Value {
        match path {
            p if p.contains("add-contact") => json!({"contact": {"phone_number": "0412345679"}}),
            p if p.contains("link-") => json!({"contact_id": their_contact_id}),
            p if p.contains("reschedule-call") => {
                json!({"scheduled_time": (Utc::now() + chrono::Duration::days(2)).to_rfc3339()})
            }
            "/api/v1/scripts/{script_id}" => common::example_script("buyer-follow-up"),
            "/api/v1/scripts/{script_id}/test" => json!({"cases": [{"name": "peek", "persona": "cooperative"}]}),
            "/api/v1/contacts/{contact_id}" => json!({"first_name": "Mallory"}),
            "/api/v1/lists/{list_id}" => json!({"name": "Taken over"}),
            "/api/v1/phone-numbers/{number_id}" => json!({"inbound_script_id": null}),
            "/api/v1/automations/{automation_id}" => def.clone(),
            "/api/v1/webhook-endpoints/{endpoint_id}" => {
                json!({"url": "https://evil.example.com/", "events": ["call.ended"]})
            }
            _ => json!({}),
        }
    };
    let spec = app.get("/api/v1/openapi.json").await.body;
    let mut swept = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        if !path.contains('{') || path.starts_with("/api/v1/hooks/") {
            continue; // no id; or the hook token, which is its own credential
        }
        let concrete = path
            .split('/')
            .map(|seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(param) => ids
                    .get(param)
                    .unwrap_or_else(|| panic!("{path}: the sweep has no `{param}` of the first team; add one"))
                    .clone(),
                None => seg.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                continue;
            }
            let body = serde_json::to_vec(&body_for(path)).unwrap();
            let r = app.raw(method.clone(), &concrete, Some(&other), body).await;
            assert_eq!(r.status.as_u16(), 404, "{method} {path} as another team: {}", r.body);
            assert_eq!(r.body["success"], false);
            let text = String::from_utf8_lossy(&r.raw);
            for secret in ["Ann", "1 Main St", "crm.example.com", "Buyers"] {
                assert!(!text.contains(secret), "{method} {path} leaked `{secret}`: {text}");
            }
            swept.push(format!("{method} {path}"));
        }
    }
    assert!(
        swept.len() >= 25,
        "only {} id-taking operations: {swept:?}",
        swept.len()
    );
    // The first team's things are all still there, unchanged.
    for (path, field, expect) in [
        (
            format!("/api/v1/contacts/{contact_id}"),
            "/contact/first_name",
            json!("Ann"),
        ),
        (format!("/api/v1/lists/{list_id}"), "/list/name", json!("Buyers")),
        ("/api/v1/dnc/+61412345673".to_owned(), "/entry/reason", json!("Buyers")),
        (
            format!("/api/v1/campaigns/{campaign_id}"),
            "/campaign/status",
            json!("scheduled"),
        ),
        (
            format!("/api/v1/objects/{object_id}"),
            "/object/data/address",
            json!("1 Main St"),
        ),
        (
            format!("/api/v1/get-call/{call_id}"),
            "/call/progress",
            json!("scheduled"),
        ),
        (format!("/api/v1/scripts/{script_id}"), "/success", json!(true)),
        (
            format!("/api/v1/automations/{automation_id}"),
            "/automation/enabled",
            json!(true),
        ),
        (
            format!("/api/v1/webhook-endpoints/{endpoint_id}"),
            "/endpoint/url",
            json!("https://crm.example.com/voxd"),
        ),
        (format!("/api/v1/executions/{execution_id}"), "/success", json!(true)),
        (
            format!("/api/v1/webhook-deliveries/{delivery_id}"),
            "/success",
            json!(true),
        ),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.body.pointer(field), Some(&expect), "{path}: {}", r.body);
    }
    assert_eq!(app.count("list_members").await, 1);
    assert_eq!(app.count("object_contacts").await, 0);
}
