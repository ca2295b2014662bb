//! Automations through the front door: definitions, inbound hooks, executions that place a call and
//! resume when it ends, the execution log, event webhooks to a local receiver.

mod common;

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::http::Method;
use chrono::Utc;
use common::{hook_signature, Receiver, TestApp, CALLER_ID};
use serde_json::{json, Value};
use voxd::{
    automations::notify::RecordingNotifier,
    clock::ManualClock,
    domain::automation::{Channel, MAX_STEPS},
};

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Utc::now() + chrono::Duration::seconds(1)))
}

/// POSTs a body to a hook with optional signature and idempotency key.
async fn hook(
    app: &TestApp,
    path: &str,
    body: &[u8],
    signature: Option<&str>,
    idem: Option<&str>,
) -> common::TestResponse {
    let mut req = axum::http::Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(s) = signature {
        req = req.header("x-webhook-signature", s);
    }
    if let Some(k) = idem {
        req = req.header("x-idempotency-key", k);
    }
    app.send(req.body(axum::body::Body::from(body.to_vec())).unwrap()).await
}

fn pipeline(script_id: &str, receiver: &str) -> Value {
    json!({
        "name": "Form lead to call to CRM",
        "trigger": {"type": "webhook", "signed": true, "signature": "body"},
        "steps": [
            {"type": "transform", "name": "Map form", "mappings": [
                {"source": "trigger.phone", "target": "phone"},
                {"source": "trigger.first_name", "target": "first_name", "transform": "uppercase"}
            ]},
            {"type": "upsert_contact", "fields": {"phone_number": "mapped.phone", "first_name": "mapped.first_name", "email": "trigger.email"}},
            {"type": "create_call", "name": "Create Call - Buyer follow-up", "script_id": script_id, "from_number": CALLER_ID},
            {"type": "transform", "name": "Map call results", "mappings": [
                {"source": "call.status", "target": "call_status"},
                {"source": "call.call_summary", "target": "summary", "transform": "truncate:500"}
            ]},
            {"type": "destination", "name": "Sync to CRM", "url": format!("{receiver}/crm/{{{{trigger.crm_id}}}}"),
             "body": {"status": "{{mapped.call_status}}", "name": "{{contact.first_name}}", "call_id": "{{call.id}}"}},
            {"type": "condition", "field": "mapped.call_status", "operator": "equals", "value": "completed",
             "then": [{"type": "notification", "channel": "sms", "to": "{{contact.phone_number}}", "body": "Thanks {{contact.first_name}}"}],
             "otherwise": [{"type": "destination", "url": format!("{receiver}/missed")}]}
        ]
    })
}

async fn signed_hook_places_a_call_and_syncs_the_result(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let receiver = Receiver::start().await;
    let created = app
        .post("/api/v1/automations", &pipeline(&script_id, &receiver.url))
        .await;
    let body = created.ok(201);
    let path = body["hook"]["path"].as_str().unwrap().to_owned();
    let secret = body["hook"]["secret"].as_str().unwrap().to_owned();
    assert!(path.starts_with("/api/v1/hooks/hk_"));
    // The token is shown once: reading the automation does not reveal it.
    let id = body["automation_id"].as_str().unwrap();
    let read = app.get(&format!("/api/v1/automations/{id}")).await;
    assert!(read.ok(200).get("hook").is_none());
    assert_eq!(read.body["automation"]["signed"], true);

    let payload = br#"{"phone": "0412 345 671", "first_name": "ada", "email": "ada@example.com", "crm_id": "12345"}"#;
    let sig = format!("sha256={}", hook_signature(&secret, payload));
    let r = hook(app, &path, payload, Some(&sig), None).await;
    let execution_id = r.ok(202)["execution_id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["status"], "Pending");

    let notifier = Arc::new(RecordingNotifier::default());
    let runner = common::test_runner(app, notifier.clone());
    runner.run_until_idle(20).await.unwrap();
    let e = app.get(&format!("/api/v1/executions/{execution_id}")).await;
    assert_eq!(e.ok(200)["execution"]["status"], "Processing", "{}", e.body);
    let call_id = e.body["execution"]["waiting_for_call_id"].as_str().unwrap().to_owned();
    let call = app.get(&format!("/api/v1/get-call/{call_id}")).await;
    assert_eq!(call.ok(200)["call"]["to_number"], "+61412345671");
    assert_eq!(call.body["call"]["metadata"]["execution_id"], execution_id.as_str());

    // Nothing moves while the call has not ended.
    runner.run_until_idle(5).await.unwrap();
    assert!(receiver.received().is_empty());
    assert_eq!(common::sim_dispatcher(app, clock()).run_once().await.unwrap(), 1);
    runner.run_until_idle(20).await.unwrap();

    let e = app.get(&format!("/api/v1/executions/{execution_id}")).await;
    let ex = &e.ok(200)["execution"];
    assert_eq!(ex["status"], "Completed", "{ex}");
    assert_eq!(ex["steps_total"], 8);
    assert_eq!(ex["steps_completed"], 7);
    let steps: Vec<(String, String)> = ex["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = [
        ("0", "Completed"),
        ("1", "Completed"),
        ("2", "Completed"),
        ("3", "Completed"),
        ("4", "Completed"),
        ("5", "Completed"),
        ("5.otherwise.0", "Skipped"),
        ("5.then.0", "Completed"),
    ];
    assert_eq!(
        steps,
        want.iter()
            .map(|(k, s)| (k.to_string(), s.to_string()))
            .collect::<Vec<_>>()
    );
    let by_key: HashMap<&str, &Value> = ex["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].as_str().unwrap(), s))
        .collect();
    assert_eq!(by_key["0"]["output"]["first_name"], "ADA");
    assert_eq!(by_key["2"]["output"]["status"], "completed");
    assert_eq!(by_key["4"]["output"]["status"], 200);
    assert_eq!(by_key["4"]["output"]["body"]["crm_id"], "crm-42");
    assert_eq!(by_key["5"]["output"]["branch"], "then");
    assert_eq!(ex["context"]["call"]["status"], "completed");
    assert!(ex["context"]["call"]["call_summary"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));

    let got = receiver.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].path, "/crm/12345");
    assert_eq!(
        got[0].body,
        json!({"status": "completed", "name": "ADA", "call_id": call_id})
    );
    let sent = notifier.0.lock().unwrap().clone();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].channel, Channel::Sms);
    assert_eq!(sent[0].to, "+61412345671");
    assert_eq!(sent[0].body, "Thanks ADA");
    // The contact was upserted with the mapped fields.
    let contacts = app.get("/api/v1/contacts?phone_number=%2B61412345671").await;
    assert_eq!(contacts.ok(200)["contacts"][0]["email"], "ada@example.com");
    assert_eq!(app.count("calls").await, 1);

    // The log lists it, filtered by automation and status.
    let list = app
        .get(&format!("/api/v1/executions?automation_id={id}&status=Completed"))
        .await;
    assert_eq!(list.ok(200)["executions"].as_array().unwrap().len(), 1);
    let none = app.get("/api/v1/executions?status=Failed").await;
    assert!(none.ok(200)["executions"].as_array().unwrap().is_empty());
    app.get("/api/v1/executions?status=Done").await.error(400);
    app.get("/api/v1/executions?automation_id=nope").await.error(400);
    app.get("/api/v1/executions?since=yesterday").await.error(400);
    app.get("/api/v1/executions?limit=0").await.error(400);
    let (_, other) = app.other_team("other").await;
    app.get_as(&other, &format!("/api/v1/executions/{execution_id}"))
        .await
        .error(404);
    app.post_as(&other, &format!("/api/v1/executions/{execution_id}/retry"), &json!({}))
        .await
        .error(404);
    let theirs = app.get_as(&other, "/api/v1/executions").await;
    assert!(theirs.ok(200)["executions"].as_array().unwrap().is_empty());
}

async fn bad_hook_requests_are_refused_and_create_nothing(app: &TestApp) {
    let def = json!({"name": "Signed", "trigger": {"type": "webhook", "signed": true, "signature": "body"},
        "steps": [{"type": "transform", "mappings": [{"source": "trigger.a", "target": "a"}]}]});
    let body = app.post("/api/v1/automations", &def).await.ok(201).clone();
    let path = body["hook"]["path"].as_str().unwrap().to_owned();
    let secret = body["hook"]["secret"].as_str().unwrap().to_owned();
    let id = body["automation_id"].as_str().unwrap().to_owned();
    let payload = br#"{"a": 1}"#;
    let good = hook_signature(&secret, payload);

    assert!(hook(app, &path, payload, None, None)
        .await
        .error(401)
        .contains("required"));
    assert!(hook(app, &path, payload, Some(&hook_signature("wrong", payload)), None)
        .await
        .error(401)
        .contains("does not match"));
    hook(app, &path, payload, Some("sha256=nothex"), None).await.error(401);
    // A signature of another body.
    hook(app, &path, br#"{"a": 2}"#, Some(&good), None).await.error(401);
    hook(app, "/api/v1/hooks/hk_unknown", payload, None, None)
        .await
        .error(404);
    let not_json = b"{not json";
    hook(app, &path, not_json, Some(&hook_signature(&secret, not_json)), None)
        .await
        .error(400);
    let array = b"[1, 2]";
    hook(app, &path, array, Some(&hook_signature(&secret, array)), None)
        .await
        .error(400);
    let huge = format!("{{\"x\": \"{}\"}}", "y".repeat(1024 * 1024 + 1));
    hook(
        app,
        &path,
        huge.as_bytes(),
        Some(&hook_signature(&secret, huge.as_bytes())),
        None,
    )
    .await
    .error(413);
    hook(app, &path, payload, Some(&good), Some(&"k".repeat(256)))
        .await
        .error(400);
    assert_eq!(app.count("executions").await, 0);

    // The same idempotency key: one execution, the replay names it.
    let first = hook(app, &path, payload, Some(&good), Some("form-77")).await;
    let exec = first.ok(202)["execution_id"].clone();
    let again = hook(app, &path, payload, Some(&good), Some("form-77")).await;
    assert_eq!(again.ok(200)["execution_id"], exec);
    assert_eq!(again.body["duplicate"], true);
    assert_eq!(app.count("executions").await, 1);
    // A day later the key is forgotten (the server's hourly sweep), and it starts a new execution.
    let tomorrow = (Utc::now() + chrono::Duration::hours(25)).timestamp_millis();
    assert_eq!(app.db.expire_hook_receipts(tomorrow).await.unwrap(), 1);
    let later = hook(app, &path, payload, Some(&good), Some("form-77")).await;
    assert_ne!(later.ok(202)["execution_id"], exec);
    assert_eq!(app.count("executions").await, 2);

    // Disabled: the token is unknown until enabled again.
    app.post(&format!("/api/v1/automations/{id}/disable"), &json!({}))
        .await
        .ok(200);
    hook(app, &path, payload, Some(&good), None).await.error(404);
    app.post(&format!("/api/v1/automations/{id}/enable"), &json!({}))
        .await
        .ok(200);
    hook(app, &path, payload, Some(&good), None).await.ok(202);
    // Rotation: the old token stops working, the new one works with the new secret.
    let rotated = app
        .post(&format!("/api/v1/automations/{id}/rotate-hook"), &json!({}))
        .await;
    let new_path = rotated.ok(200)["hook"]["path"].as_str().unwrap().to_owned();
    let new_secret = rotated.body["hook"]["secret"].as_str().unwrap().to_owned();
    hook(app, &path, payload, Some(&good), None).await.error(404);
    hook(
        app,
        &new_path,
        payload,
        Some(&hook_signature(&new_secret, payload)),
        None,
    )
    .await
    .ok(202);
    assert_eq!(app.count("executions").await, 4);
}

async fn hooks_are_rate_limited(app: &TestApp) {
    let def = json!({"name": "Open", "trigger": {"type": "webhook"},
        "steps": [{"type": "transform", "mappings": [{"source": "trigger.a", "target": "a"}]}]});
    let path = app.post("/api/v1/automations", &def).await.ok(201)["hook"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    app.db.set_team_limits(app.team_id, Some(5), None).await.unwrap();
    let mut limited = 0;
    for _ in 0..20 {
        let r = hook(app, &path, b"{}", None, None).await;
        if r.status.as_u16() == 429 {
            assert!(r.header("retry-after").is_some());
            limited += 1;
        }
    }
    assert!(limited > 0, "20 hooks at once were never limited at 5/s");
}

async fn definitions_are_checked_and_scoped_to_the_team(app: &TestApp) {
    let t = json!({"type": "transform", "mappings": [{"source": "trigger.a", "target": "a"}]});
    let base = |steps: Value| json!({"name": "x", "trigger": {"type": "webhook"}, "steps": steps});
    let r = app
        .post("/api/v1/automations", &base(json!([t, {"type": "teleport"}])))
        .await;
    assert!(r.error(400).contains("steps[1]"), "{}", r.body);
    let many: Vec<Value> = (0..=MAX_STEPS).map(|_| t.clone()).collect();
    assert!(app
        .post("/api/v1/automations", &base(Value::Array(many)))
        .await
        .error(400)
        .contains("at most 20"));
    let r = app
        .post(
            "/api/v1/automations",
            &base(json!([{"type": "condition", "field": "contact.email", "operator": "is_empty"}])),
        )
        .await;
    assert!(r.error(400).contains("cannot exist here"));
    assert_eq!(r.body["field"], "steps[0].field");
    app.post(
        "/api/v1/automations",
        &json!({"name": "x", "trigger": {"type": "cron"}, "steps": [t]}),
    )
    .await
    .error(400);
    app.post(
        "/api/v1/automations",
        &json!({"name": 5, "trigger": {"type": "webhook"}, "steps": [t]}),
    )
    .await
    .error(400);
    app.post(
        "/api/v1/automations",
        &json!({"trigger": {"type": "webhook"}, "steps": [t]}),
    )
    .await
    .error(400);
    // Scripts must be the team's (and outbound for a create-call step).
    let (_, other_key) = app.other_team("other").await;
    let foreign = app
        .post_as(
            &other_key,
            "/api/v1/scripts",
            &common::example_script("buyer-follow-up"),
        )
        .await;
    let foreign = foreign.ok(201)["script_id"].as_str().unwrap().to_owned();
    let call_step =
        json!({"type": "create_call", "script_id": foreign, "from_number": CALLER_ID, "to": "trigger.phone"});
    let r = app.post("/api/v1/automations", &base(json!([call_step]))).await;
    assert!(r.error(400).contains("not one of your team's"));
    assert_eq!(r.body["field"], "steps[0].script_id");
    let r = app
        .post(
            "/api/v1/automations",
            &json!({"name": "x", "trigger": {"type": "call_completed", "script_ids": [foreign]}, "steps": [t]}),
        )
        .await;
    assert!(r.error(400).contains("not one of your team's"));
    assert_eq!(r.body["field"], "trigger.script_ids[0]");
    let inbound = app
        .post("/api/v1/scripts", &common::example_script("receptionist"))
        .await;
    let inbound = inbound.ok(201)["script_id"].as_str().unwrap().to_owned();
    let call_step =
        json!({"type": "create_call", "script_id": inbound, "from_number": CALLER_ID, "to": "trigger.phone"});
    assert!(app
        .post("/api/v1/automations", &base(json!([call_step])))
        .await
        .error(400)
        .contains("inbound"));
    assert_eq!(app.count("automations").await, 0);
    let on_calls = json!({"name": "c", "trigger": {"type": "call_completed"}, "steps": [t]});
    let id = app.post("/api/v1/automations", &on_calls).await.ok(201)["automation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(&format!("/api/v1/automations/{id}/rotate-hook"), &json!({}))
        .await
        .error(409);
    app.raw(Method::DELETE, &format!("/api/v1/automations/{id}"), Some(&app.key), "")
        .await
        .ok(200);

    let mut ids = Vec::new();
    for i in 0..3 {
        let mut d = base(json!([t]));
        d["name"] = json!(format!("a{i}"));
        ids.push(
            app.post("/api/v1/automations", &d).await.ok(201)["automation_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let page = app.get("/api/v1/automations?limit=2").await;
    assert_eq!(page.ok(200)["automations"].as_array().unwrap().len(), 2);
    let cursor = page.body["meta"]["next_cursor"].as_str().unwrap().to_owned();
    let rest = app.get(&format!("/api/v1/automations?limit=2&cursor={cursor}")).await;
    assert_eq!(rest.ok(200)["automations"][0]["id"], ids[2].as_str());
    assert!(rest.body["meta"]["next_cursor"].is_null());

    // Replacing keeps the token: no new hook credentials unless signing is turned on.
    let replaced = app
        .raw(
            Method::PUT,
            &format!("/api/v1/automations/{}", ids[0]),
            Some(&app.key),
            serde_json::to_string(&json!({"name": "renamed", "trigger": {"type": "webhook"}, "steps": [t]})).unwrap(),
        )
        .await;
    assert!(replaced.ok(200).get("hook").is_none());
    let signed = app
        .raw(
            Method::PUT,
            &format!("/api/v1/automations/{}", ids[0]),
            Some(&app.key),
            serde_json::to_string(
                &json!({"name": "renamed", "trigger": {"type": "webhook", "signed": true, "signature": "body"}, "steps": [t]}),
            )
            .unwrap(),
        )
        .await;
    assert!(signed.ok(200)["hook"]["secret"].as_str().is_some());
    assert!(
        signed.body["hook"]["token"].is_null(),
        "the kept token is not shown again"
    );

    for path in [format!("/api/v1/automations/{}", ids[0]), "/api/v1/automations".into()] {
        let r = app.get_as(&other_key, &path).await;
        if path.ends_with("automations") {
            assert!(r.ok(200)["automations"].as_array().unwrap().is_empty());
        } else {
            r.error(404);
        }
    }
    app.post_as(
        &other_key,
        &format!("/api/v1/automations/{}/disable", ids[0]),
        &json!({}),
    )
    .await
    .error(404);
    let del = app
        .raw(
            Method::DELETE,
            &format!("/api/v1/automations/{}", ids[1]),
            Some(&other_key),
            "",
        )
        .await;
    del.error(404);
    let del = app
        .raw(
            Method::DELETE,
            &format!("/api/v1/automations/{}", ids[1]),
            Some(&app.key),
            "",
        )
        .await;
    assert_eq!(del.ok(200)["deleted"], true);
    app.get(&format!("/api/v1/automations/{}", ids[1])).await.error(404);
}

/// Event webhooks to a receiver that is down, then back: every event arrives, in order per call,
/// each with one `webhook-id` however many tries it took, signed with the endpoint's secret.
async fn a_receiver_that_comes_back_gets_every_event_in_order(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let receiver = Receiver::start().await;
    receiver.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let events = ["call.scheduled", "call.started", "call.ended", "call.analyzed"];
    let created = app
        .post(
            "/api/v1/webhook-endpoints",
            &json!({"url": format!("{}/events", receiver.url), "events": events}),
        )
        .await;
    let secret = created.ok(201)["secret"].as_str().unwrap().to_owned();
    let endpoint_id = created.body["endpoint_id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let mut calls = Vec::new();
    for phone in ["0412345671", "0412345682"] {
        let body = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": phone}});
        calls.push(
            app.post("/api/v1/create-phone-call", &body).await.ok(201)["call_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    common::sim_dispatcher(app, clock()).run_once().await.unwrap();
    let runner = common::test_runner(app, Arc::new(RecordingNotifier::default()));
    for _ in 0..10 {
        runner.run_once().await.unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let tried = receiver.received();
    assert!(tried.len() >= 4, "some tries reached the receiver while it was down");
    receiver.down.store(false, std::sync::atomic::Ordering::SeqCst);
    // Bounded: retries are at most 100 ms apart here.
    for _ in 0..100 {
        runner.run_once().await.unwrap();
        let log = app
            .get(&format!(
                "/api/v1/webhook-endpoints/{endpoint_id}/deliveries?status=pending"
            ))
            .await;
        if log.ok(200)["deliveries"].as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let all = receiver.received();
    let delivered: Vec<&common::Received> = all.iter().filter(|r| r.headers.contains_key("webhook-id")).collect();
    let mut ids_by_try: HashMap<String, Vec<Value>> = HashMap::new();
    for r in &delivered {
        ids_by_try
            .entry(r.headers["webhook-id"].clone())
            .or_default()
            .push(r.body.clone());
        // Standard Webhooks signature over id.timestamp.body.
        let body = serde_json::to_vec(&r.body).unwrap();
        let ts: i64 = r.headers["webhook-timestamp"].parse().unwrap();
        let expected = voxd::domain::signature::standard_sign(&secret, &r.headers["webhook-id"], ts, &body);
        assert!(r.headers["webhook-signature"].split(' ').any(|s| s == expected));
    }
    // Every try of one message carried the same body; 4 events × 2 calls, one id each.
    assert_eq!(ids_by_try.len(), 8, "{:?}", ids_by_try.keys());
    assert!(ids_by_try
        .values()
        .all(|bodies| bodies.windows(2).all(|w| w[0] == w[1])));
    assert!(
        ids_by_try.values().any(|bodies| bodies.len() > 1),
        "some message needed several tries"
    );
    // The successful deliveries, per call, in event order.
    let ok_after: Vec<&common::Received> = {
        let mut seen = std::collections::HashSet::new();
        delivered
            .iter()
            .rev()
            .filter(|r| seen.insert(r.headers["webhook-id"].clone()))
            .copied()
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect()
    };
    for call in &calls {
        let order: Vec<&str> = ok_after
            .iter()
            .filter(|r| r.body["data"]["id"] == call.as_str())
            .map(|r| r.body["type"].as_str().unwrap())
            .collect();
        assert_eq!(order, events, "call {call}");
    }
    let log = app
        .get(&format!(
            "/api/v1/webhook-endpoints/{endpoint_id}/deliveries?status=delivered"
        ))
        .await;
    let delivered_log = log.ok(200)["deliveries"].as_array().unwrap().clone();
    assert_eq!(delivered_log.len(), 8);
    let one = app
        .get(&format!(
            "/api/v1/webhook-deliveries/{}",
            delivered_log[0]["id"].as_str().unwrap()
        ))
        .await;
    let tries = one.ok(200)["delivery"]["tries"].as_array().unwrap().clone();
    assert!(tries.len() >= 2);
    assert_eq!(tries[0]["status_code"], 503);
    assert_eq!(tries.last().unwrap()["status_code"], 200);

    let (_, other) = app.other_team("other").await;
    let first_id = delivered_log[0]["id"].as_str().unwrap();
    app.get_as(&other, &format!("/api/v1/webhook-deliveries/{first_id}"))
        .await
        .error(404);
    app.post_as(
        &other,
        &format!("/api/v1/webhook-deliveries/{first_id}/redeliver"),
        &json!({}),
    )
    .await
    .error(404);
    // Redeliver: the same webhook-id again.
    let redo = app
        .post(
            &format!(
                "/api/v1/webhook-deliveries/{}/redeliver",
                delivered_log[0]["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(redo.ok(200)["delivery"]["status"], "pending");
    let before = receiver.received().len();
    runner.run_until_idle(5).await.unwrap();
    let after = receiver.received();
    assert_eq!(after.len(), before + 1);
    assert_eq!(
        after.last().unwrap().headers["webhook-id"],
        delivered_log[0]["webhook_id"].as_str().unwrap()
    );

    // Rotation: both signatures during the overlap.
    let rotated = app
        .post(
            &format!("/api/v1/webhook-endpoints/{endpoint_id}/rotate-secret"),
            &json!({"overlap_seconds": 60}),
        )
        .await;
    let new_secret = rotated.ok(200)["secret"].as_str().unwrap().to_owned();
    app.post(
        &format!(
            "/api/v1/webhook-deliveries/{}/redeliver",
            delivered_log[1]["id"].as_str().unwrap()
        ),
        &json!({}),
    )
    .await
    .ok(200);
    runner.run_until_idle(5).await.unwrap();
    let last = receiver.received().last().unwrap().clone();
    let body = serde_json::to_vec(&last.body).unwrap();
    let ts: i64 = last.headers["webhook-timestamp"].parse().unwrap();
    let sigs: Vec<&str> = last.headers["webhook-signature"].split(' ').collect();
    assert_eq!(sigs.len(), 2);
    assert!(sigs.contains(
        &voxd::domain::signature::standard_sign(&new_secret, &last.headers["webhook-id"], ts, &body).as_str()
    ));
    assert!(sigs
        .contains(&voxd::domain::signature::standard_sign(&secret, &last.headers["webhook-id"], ts, &body).as_str()));
}

async fn endpoints_validate_and_stay_in_their_team(app: &TestApp) {
    let bad = [
        json!({"url": "ftp://x.test", "events": ["call.ended"]}),
        json!({"url": "https://x.test", "events": []}),
        json!({"url": "https://x.test", "events": ["call.exploded"]}),
        json!({"url": "https://x.test"}),
        json!({"url": 7, "events": ["call.ended"]}),
        json!({"url": "https://x.test", "events": ["call.ended"], "extra": 1}),
    ];
    for b in bad {
        app.post("/api/v1/webhook-endpoints", &b).await.error(400);
    }
    assert_eq!(app.count("webhook_endpoints").await, 0);
    let r = app
        .post(
            "/api/v1/webhook-endpoints",
            &json!({"url": "https://crm.example.com/h", "events": ["call.ended"]}),
        )
        .await;
    let id = r.ok(201)["endpoint_id"].as_str().unwrap().to_owned();
    assert!(app
        .get(&format!("/api/v1/webhook-endpoints/{id}"))
        .await
        .ok(200)
        .get("secret")
        .is_none());
    app.post(
        &format!("/api/v1/webhook-endpoints/{id}/rotate-secret"),
        &json!({"overlap_seconds": -1}),
    )
    .await
    .error(400);
    let (_, other) = app.other_team("other").await;
    app.get_as(&other, &format!("/api/v1/webhook-endpoints/{id}"))
        .await
        .error(404);
    app.get_as(&other, &format!("/api/v1/webhook-endpoints/{id}/deliveries"))
        .await
        .error(404);
    app.post_as(
        &other,
        &format!("/api/v1/webhook-endpoints/{id}/rotate-secret"),
        &json!({}),
    )
    .await
    .error(404);
    let path = format!("/api/v1/webhook-endpoints/{id}");
    let bad = json!({"url": "https://crm.example.com/h", "events": ["call.nope"]});
    app.raw(Method::PUT, &path, Some(&app.key), bad.to_string())
        .await
        .error(400);
    let good = json!({"url": "https://crm.example.com/h", "events": ["call.ended"]});
    app.raw(Method::PUT, &path, Some(&other), good.to_string())
        .await
        .error(404);
    let kept = app.get(&path).await;
    assert_eq!(kept.ok(200)["endpoint"]["events"], json!(["call.ended"]));
    app.raw(Method::DELETE, &path, Some(&other), "").await.error(404);
    assert_eq!(
        app.raw(Method::DELETE, &path, Some(&app.key), "").await.ok(200)["deleted"],
        true
    );
    assert_eq!(app.count("webhook_endpoints").await, 0);
}

/// A destination that keeps failing dead-letters the execution (and says so to subscribed
/// endpoints); a retry resumes at that step without re-running the steps before it.
async fn failing_steps_dead_letter_and_retry_resumes(app: &TestApp) {
    let receiver = Receiver::start().await;
    receiver.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let events = Receiver::start().await;
    app.post(
        "/api/v1/webhook-endpoints",
        &json!({"url": format!("{}/events", events.url), "events": ["execution.failed"]}),
    )
    .await
    .ok(201);
    let def = json!({"name": "Push", "trigger": {"type": "webhook"}, "steps": [
        {"type": "upsert_contact", "fields": {"phone_number": "trigger.phone"}},
        {"type": "destination", "url": format!("{}/crm", receiver.url)},
        {"type": "source", "url": format!("{}/enrich", receiver.url), "method": "POST"},
        {"type": "destination", "url": format!("{}/crm2?c={{{{source.crm_id}}}}", receiver.url)}
    ]});
    let path = app.post("/api/v1/automations", &def).await.ok(201)["hook"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let exec = hook(app, &path, br#"{"phone": "0412345671"}"#, None, None)
        .await
        .ok(202)["execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let runner = common::test_runner(app, Arc::new(RecordingNotifier::default()));
    for _ in 0..40 {
        runner.run_once().await.unwrap();
        let e = app.get(&format!("/api/v1/executions/{exec}")).await;
        if e.body["execution"]["status"] == "Dead Letter" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let e = app.get(&format!("/api/v1/executions/{exec}")).await;
    let ex = e.ok(200)["execution"].clone();
    assert_eq!(ex["status"], "Dead Letter", "{ex}");
    assert!(ex["error"].as_str().unwrap().contains("3 times"));
    assert_eq!(ex["steps"][1]["status"], "Failed");
    assert_eq!(ex["steps"][1]["attempts"], 3);
    assert_eq!(receiver.received().len(), 3);
    runner.run_until_idle(5).await.unwrap();
    let told = events.received();
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].body["type"], "execution.failed");
    assert_eq!(told[0].body["data"]["execution_id"], exec.as_str());

    app.post(&format!("/api/v1/executions/{exec}/retry"), &json!({}))
        .await
        .ok(200);
    app.post(&format!("/api/v1/executions/{exec}/retry"), &json!({}))
        .await
        .error(409);
    receiver.down.store(false, std::sync::atomic::Ordering::SeqCst);
    runner.run_until_idle(10).await.unwrap();
    let ex = app.get(&format!("/api/v1/executions/{exec}")).await.ok(200)["execution"].clone();
    assert_eq!(ex["status"], "Completed", "{ex}");
    assert_eq!(ex["steps"][0]["attempts"], 1, "the finished step did not run again");
    let paths: Vec<String> = receiver.received().iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths, ["/crm", "/crm", "/crm", "/crm", "/enrich", "/crm2"]);
    assert_eq!(ex["context"]["source"]["crm_id"], "crm-42");
    app.get(&format!("/api/v1/executions/{}", uuid::Uuid::now_v7()))
        .await
        .error(404);
    app.post(
        &format!("/api/v1/executions/{}/retry", uuid::Uuid::now_v7()),
        &json!({}),
    )
    .await
    .error(404);
}

/// A Call Completed automation with a status filter runs for matching calls only, with `call.*`,
/// `contact.*` and `objects.*` hydrated; calls it places itself do not start it again.
async fn call_completed_triggers_with_filters(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let receiver = Receiver::start().await;
    let def = json!({"name": "Voicemail follow-up", "trigger": {"type": "call_completed", "statuses": ["voicemail"]},
        "steps": [{"type": "destination", "url": format!("{}/vm", receiver.url),
                   "body": {"call": "{{call.id}}", "status": "{{call.status}}", "phone": "{{contact.phone_number}}",
                            "address": "{{objects.property.address}}"}}]});
    // The voicemail contact has a property linked: `objects.property.*` is hydrated.
    app.post("/api/v1/object-types", &property_type()).await.ok(201);
    let contact = app
        .post("/api/v1/create-contact", &json!({"phone_number": "0412345675"}))
        .await;
    let contact_id = contact.ok(201)["contact_id"].clone();
    app.post(
        "/api/v1/upsert-object",
        &json!({"type_name": "property", "contact_id": contact_id,
        "data": {"id": "p-1", "address": "1 Harbour St", "bedrooms": 3}}),
    )
    .await
    .ok(201);
    app.post("/api/v1/automations", &def).await.ok(201);
    let mut ids = Vec::new();
    // Last digit 5: voicemail; 1: answered.
    for phone in ["0412345675", "0412345671"] {
        // The call's own object is the one `objects.property` shows.
        let body = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": phone},
            "object": {"type_name": "property", "data": {"id": format!("p-{phone}"), "address": format!("{phone} Call St"), "bedrooms": 1}}});
        ids.push(
            app.post("/api/v1/create-phone-call", &body).await.ok(201)["call_id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    common::sim_dispatcher(app, clock()).run_once().await.unwrap();
    let runner = common::test_runner(app, Arc::new(RecordingNotifier::default()));
    runner.run_until_idle(20).await.unwrap();
    let got = receiver.received();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].body,
        json!({"call": ids[0], "status": "voicemail", "phone": "+61412345675", "address": "0412345675 Call St"})
    );
    let list = app.get("/api/v1/executions").await;
    let ex = &list.ok(200)["executions"][0];
    assert_eq!(ex["trigger"], "call.ended");
    assert_eq!(ex["status"], "Completed");

    // Call Scheduled: runs when a call is created, with the call and contact hydrated.
    let def = json!({"name": "Tell the CRM", "trigger": {"type": "call_scheduled", "script_ids": [script_id]},
        "steps": [{"type": "destination", "url": format!("{}/scheduled", receiver.url),
                   "body": {"call": "{{call.id}}", "progress": "{{call.progress}}", "phone": "{{contact.phone_number}}"}}]});
    app.post("/api/v1/automations", &def).await.ok(201);
    let body = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0412345691"}});
    let call = app.post("/api/v1/create-phone-call", &body).await.ok(201)["call_id"].clone();
    runner.run_until_idle(20).await.unwrap();
    let got = receiver.received();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        got[1].body,
        json!({"call": call, "progress": "scheduled", "phone": "+61412345691"})
    );
}

/// Runs the workers until each execution has ended or waits for a call (bounded: about 3 s).
async fn settle(app: &TestApp, runner: &voxd::automations::Runner, ids: &[&str]) {
    for _ in 0..100 {
        runner.run_once().await.unwrap();
        let mut open = false;
        for id in ids {
            let e = app.get(&format!("/api/v1/executions/{id}")).await;
            let ex = &e.body["execution"];
            // Waiting for a call counts as settled: only the dispatcher moves it on.
            open |=
                matches!(ex["status"].as_str(), Some("Pending" | "Processing")) && ex["waiting_for_call_id"].is_null();
        }
        if !open {
            return;
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("executions still running after 100 passes");
}

fn property_type() -> Value {
    json!({"type_name": "property", "display_name": "Property", "validation_mode": "strict",
           "schema": {"address": "string", "bedrooms": "number"}})
}

/// Upsert-object steps write typed objects linked to the contact; data breaking a strict schema
/// fails the execution at once (no retries), naming the schema.
async fn upsert_object_steps_link_and_validate(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    app.post("/api/v1/object-types", &property_type()).await.ok(201);
    let def = json!({"name": "Listing enquiry", "trigger": {"type": "webhook"}, "steps": [
        {"type": "upsert_contact", "fields": {"phone_number": "trigger.phone"}},
        {"type": "upsert_object", "object_type": "property",
         "data": {"id": "trigger.property_id", "address": "trigger.address", "bedrooms": "trigger.beds"}},
        {"type": "transform", "mappings": [{"source": "objects.property.address", "target": "where", "transform": "lowercase"}]},
        {"type": "create_call", "script_id": script_id, "from_number": CALLER_ID, "object": "objects.property"}
    ]});
    let path = app.post("/api/v1/automations", &def).await.ok(201)["hook"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let good = br#"{"phone": "0412345671", "property_id": "p-9", "address": "9 Bay Rd", "beds": 4}"#;
    let ok = hook(app, &path, good, None, None).await.ok(202)["execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bad = br#"{"phone": "0412345671", "property_id": "p-10", "address": "10 Bay Rd", "beds": "many"}"#;
    let failed = hook(app, &path, bad, None, None).await.ok(202)["execution_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let runner = common::test_runner(app, Arc::new(RecordingNotifier::default()));
    // Both upsert the same new contact at once; on PostgreSQL one may lose the insert race, which
    // is a transient failure retried shortly after.
    settle(app, &runner, &[&ok, &failed]).await;

    let ex = app.get(&format!("/api/v1/executions/{ok}")).await.ok(200)["execution"].clone();
    // The call carries the object the step upserted.
    assert_eq!(ex["status"], "Processing", "{ex}");
    let call = app
        .get(&format!(
            "/api/v1/get-call/{}",
            ex["waiting_for_call_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(call.ok(200)["object"]["data"]["address"], "9 Bay Rd");
    assert_eq!(ex["context"]["mapped"]["where"], "9 bay rd");
    let object_id = ex["steps"][1]["output"]["object_id"].as_str().unwrap().to_owned();
    assert_eq!(call.body["call"]["object_id"], object_id.as_str());
    let object = app.get(&format!("/api/v1/objects/{object_id}")).await;
    assert_eq!(object.ok(200)["object"]["data"]["bedrooms"], 4);
    assert_eq!(
        object.body["object"]["contacts"][0]["contact_id"],
        ex["context"]["contact"]["id"]
    );
    let ex = app.get(&format!("/api/v1/executions/{failed}")).await.ok(200)["execution"].clone();
    assert_eq!(ex["status"], "Failed", "{ex}");
    assert_eq!(ex["steps"][1]["status"], "Failed");
    assert_eq!(ex["steps"][1]["attempts"], 1);
    assert!(ex["error"].as_str().unwrap().contains("property"), "{ex}");
    assert_eq!(app.count("objects").await, 1);
}

/// Without `allow_private_network`, event webhooks to loopback are refused, not sent.
async fn private_addresses_are_refused_by_default(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let receiver = Receiver::start().await;
    app.post(
        "/api/v1/webhook-endpoints",
        &json!({"url": format!("{}/e", receiver.url), "events": ["call.scheduled"]}),
    )
    .await
    .ok(201);
    let body = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0412345671"}});
    app.post("/api/v1/create-phone-call", &body).await.ok(201);
    let guarded = voxd::automations::Runner::new(
        app.db.clone(),
        Arc::new(voxd::clock::SystemClock),
        Arc::new(RecordingNotifier::default()),
        voxd::automations::AutomationSettings::default(),
    );
    guarded.run_until_idle(5).await.unwrap();
    assert!(receiver.received().is_empty());
    let endpoints = app.get("/api/v1/webhook-endpoints").await;
    let id = endpoints.ok(200)["endpoints"][0]["id"].as_str().unwrap().to_owned();
    let log = app.get(&format!("/api/v1/webhook-endpoints/{id}/deliveries")).await;
    let d = &log.ok(200)["deliveries"][0];
    assert_eq!(d["status"], "failed");
    assert!(d["last_error"].as_str().unwrap().contains("private"), "{d}");
}

/// Two workers (as two processes would) share one queue: each execution runs once, each step once.
async fn two_workers_never_run_an_execution_twice(app: &TestApp) {
    let receiver = Receiver::start().await;
    let def = json!({"name": "Fan", "trigger": {"type": "webhook"}, "steps": [
        {"type": "transform", "mappings": [{"source": "trigger.n", "target": "n", "transform": "to_string"}]},
        {"type": "destination", "url": format!("{}/crm", receiver.url), "body": {"n": "{{mapped.n}}"}}
    ]});
    let path = app.post("/api/v1/automations", &def).await.ok(201)["hook"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    const N: usize = 60;
    for n in 0..N {
        hook(app, &path, json!({"n": n}).to_string().as_bytes(), None, None)
            .await
            .ok(202);
    }
    let notifier: Arc<RecordingNotifier> = Arc::default();
    let a = common::test_runner(app, notifier.clone()).with_owner("worker-a");
    let b = common::test_runner(app, notifier).with_owner("worker-b");
    for _ in 0..50 {
        let (x, y) = tokio::join!(a.run_once(), b.run_once());
        if x.unwrap() + y.unwrap() == 0 {
            break;
        }
    }
    let done = app.get("/api/v1/executions?status=Completed&limit=200").await;
    assert_eq!(done.ok(200)["executions"].as_array().unwrap().len(), N);
    let mut seen: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.body["n"].as_str().unwrap().to_owned())
        .collect();
    seen.sort();
    let mut want: Vec<String> = (0..N).map(|n| n.to_string()).collect();
    want.sort();
    assert_eq!(seen, want, "each destination step ran exactly once");
}

/// Two call-completed automations that each call back on the other's calls stop after a chain of
/// `MAX_CHAIN` automation-placed calls (one automation never restarts on its own calls).
async fn call_triggered_chains_stop(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    for name in ["A", "B"] {
        let def = json!({"name": name, "trigger": {"type": "call_completed"}, "steps": [
            {"type": "create_call", "script_id": script_id, "from_number": CALLER_ID}]});
        app.post("/api/v1/automations", &def).await.ok(201);
    }
    let body = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0412345671"}});
    app.post("/api/v1/create-phone-call", &body).await.ok(201);
    let runner = common::test_runner(app, Arc::new(RecordingNotifier::default()));
    // An hour ahead: calls the automations place during the test are due at once.
    let dispatcher = common::sim_dispatcher(app, Arc::new(ManualClock::new(Utc::now() + chrono::Duration::hours(1))));
    for _ in 0..30 {
        let dialled = dispatcher.run_once().await.unwrap();
        let worked = runner.run_until_idle(10).await.unwrap();
        if dialled + worked == 0 {
            break;
        }
    }
    // The first call, then two calls (one per automation) at each depth 1 to MAX_CHAIN.
    let max = voxd::automations::events::MAX_CHAIN as i64;
    assert_eq!(app.count("calls").await, 1 + 2 * max);
}

on_both_backends!(
    call_triggered_chains_stop,
    two_workers_never_run_an_execution_twice,
    upsert_object_steps_link_and_validate,
    private_addresses_are_refused_by_default,
    signed_hook_places_a_call_and_syncs_the_result,
    bad_hook_requests_are_refused_and_create_nothing,
    hooks_are_rate_limited,
    definitions_are_checked_and_scoped_to_the_team,
    a_receiver_that_comes_back_gets_every_event_in_order,
    endpoints_validate_and_stay_in_their_team,
    failing_steps_dead_letter_and_retry_resumes,
    call_completed_triggers_with_filters,
);

/// A one-connection SMTP server on 127.0.0.1 that answers `rcpt` to RCPT TO and records the message.
async fn fake_smtp(rcpt: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 fake ESMTP\r\n").await.unwrap();
        let mut data = String::new();
        let mut in_data = false;
        while let Ok(Some(line)) = lines.next_line().await {
            if in_data {
                if line == "." {
                    in_data = false;
                    write.write_all(b"250 queued\r\n").await.unwrap();
                } else {
                    data.push_str(&line);
                    data.push('\n');
                }
                continue;
            }
            let verb = line.split([' ', ':']).next().unwrap_or_default().to_uppercase();
            let answer = match verb.as_str() {
                "EHLO" | "HELO" => "250 fake\r\n",
                "MAIL" => "250 OK\r\n",
                "RCPT" => rcpt,
                "DATA" => {
                    in_data = true;
                    "354 go ahead\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await.unwrap();
                    break;
                }
                _ => "250 OK\r\n",
            };
            write.write_all(answer.as_bytes()).await.unwrap();
        }
        data
    });
    (url, task)
}

#[tokio::test]
async fn email_notifications_go_through_the_smtp_relay() {
    use voxd::automations::notify::{Channels, Notification, Notifier, SendError, Smtp};
    let (url, server) = fake_smtp("250 OK\r\n").await;
    let channels = Channels {
        smtp: Some(Smtp::new(&url, "voxd@example.com").unwrap()),
        sms: None,
    };
    let n = Notification {
        channel: Channel::Email,
        to: "sales@example.com".into(),
        subject: Some("Enterprise lead: Ada".into()),
        body: "Ada wrote: enterprise plan".into(),
    };
    channels.send(&n).await.unwrap();
    let message = server.await.unwrap();
    assert!(message.contains("Subject: Enterprise lead: Ada"), "{message}");
    assert!(message.contains("To: sales@example.com"), "{message}");
    assert!(message.contains("Ada wrote: enterprise plan"), "{message}");

    // A relay that refuses the recipient for good: a permanent failure, not retried.
    let (url, _server) = fake_smtp("550 no such user\r\n").await;
    let channels = Channels {
        smtp: Some(Smtp::new(&url, "voxd@example.com").unwrap()),
        sms: None,
    };
    assert!(matches!(channels.send(&n).await, Err(SendError::Permanent(_))));
    // No relay configured, or no SMS channel: a clear permanent failure.
    let none = Channels { smtp: None, sms: None };
    match none.send(&n).await {
        Err(SendError::Permanent(m)) => assert!(m.contains("smtp_url"), "{m}"),
        other => panic!("{other:?}"),
    }
    let sms = Notification {
        channel: Channel::Sms,
        ..n
    };
    assert!(matches!(none.send(&sms).await, Err(SendError::Permanent(_))));
    assert!(Smtp::new("http://x", "a@b.c").is_err());
}
