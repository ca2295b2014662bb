//! The API reference as a reader sees it: `/docs` rendered in Debian's chromium (playwright-core),
//! everything served by voxd itself.

mod common;

use common::{browser_available, run_browser_script, serve_in_process, Backend, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docs_render_the_request_fields_of_create_phone_call() {
    if !browser_available() {
        return;
    }
    let app = TestApp::start(Backend::Sqlite).await.unwrap();
    let addr = serve_in_process(&app).await;
    let (report, ok) = run_browser_script("docs.mjs", &[&format!("http://{addr}")]).await;
    assert!(ok, "the page did not render: {report}");
    assert_eq!(report["title"], "voxd API reference");
    let text = report["operation_text"].as_str().unwrap();
    for field in [
        "from_number",
        "script_id",
        "contact",
        "scheduled_time",
        "retry_policy",
        "calling_window",
    ] {
        assert!(
            text.contains(field),
            "create-phone-call does not show `{field}`:\n{text}"
        );
    }
    // Parameters' descriptions come through as text, not raw markdown.
    assert!(text.contains("voxd number add"), "{text}");
    assert!(!text.contains("`voxd number add`"), "markdown shown raw:\n{text}");
    assert!(
        report["try_it"].as_u64().unwrap() >= 1,
        "no Test Request button: {report}"
    );
    assert_eq!(
        report["external_requests"],
        serde_json::json!([]),
        "the page reached outside voxd"
    );
    assert_eq!(report["failed_requests"], serde_json::json!([]));
    app.cleanup().await;
}

/// The dashboard as an operator uses it: sign in, place a call and watch it end live (the `sim`
/// carrier and the rules brain run it), read its transcript, break a script and see the problem
/// at its line, retry a dead-lettered execution, revoke a key and make one. With
/// `VOXD_SCREENSHOTS=DIR` the main pages are saved there (docs/screenshots in the README).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_chromium() {
    use std::sync::Arc;
    use voxd::{
        carrier::sim::{SimCarrier, SimDelays},
        conversation::{
            brain::rules::RulesBrain,
            tools::{RecordingSms, Tools},
        },
        dispatcher::{Dispatcher, DispatcherSettings},
    };
    if !browser_available() {
        return;
    }
    let app = TestApp::start(Backend::Sqlite).await.unwrap();
    common::add_user(&app.db, app.team_id, "ops@acme.test", "correct horse battery").await;
    let script_id = common::caller_id_and_script(&app).await;
    // A key to revoke from the page.
    let (key, _) = app.db.issue_key(app.team_id, Some("old integration")).await.unwrap();

    let endpoint = app
        .post(
            "/api/v1/webhook-endpoints",
            &serde_json::json!({"url": "http://127.0.0.1:9/voxd", "events": ["call.ended"]}),
        )
        .await;
    let endpoint_id = endpoint.ok(201)["endpoint_id"].as_str().unwrap().to_owned();
    let first_secret = endpoint.body["secret"].as_str().unwrap().to_owned();
    // A campaign over a list of two, starting tomorrow (no feed worker runs here).
    let list = app
        .post("/api/v1/create-list", &serde_json::json!({"name": "Open house"}))
        .await;
    let list_id = list.ok(201)["list_id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/api/v1/add-contacts-to-list/{list_id}"),
        &serde_json::json!({"contacts": [{"phone_number": "+61412000101"}, {"phone_number": "+61412000102"}]}),
    )
    .await
    .ok(200);
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let campaign = app
        .post(
            "/api/v1/campaigns",
            &serde_json::json!({"name": "Open house follow-up", "list_id": list_id, "script_id": script_id,
                                "from_number": common::CALLER_ID, "scheduled_time": tomorrow}),
        )
        .await;
    let campaign_id = campaign.ok(201)["campaign"]["id"].as_str().unwrap().to_owned();
    // A dead-lettered execution: its destination refuses connections.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let def = serde_json::json!({"name": "Push to CRM", "trigger": {"type": "webhook"}, "steps": [
        {"type": "destination", "url": format!("http://{closed}/crm")}
    ]});
    let path = app.post("/api/v1/automations", &def).await.ok(201)["hook"]["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .send(
            axum::http::Request::post(&path)
                .header("content-type", "application/json")
                .body(axum::body::Body::from(r#"{"phone": "0412345671"}"#))
                .unwrap(),
        )
        .await;
    let execution_id = r.ok(202)["execution_id"].as_str().unwrap().to_owned();
    let runner = common::test_runner(&app, Arc::new(voxd::automations::notify::RecordingNotifier::default()));
    for _ in 0..100 {
        runner.run_once().await.unwrap();
        let e = app.get(&format!("/api/v1/executions/{execution_id}")).await;
        if e.body["execution"]["status"] == "Dead Letter" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    let e = app.get(&format!("/api/v1/executions/{execution_id}")).await;
    assert_eq!(e.body["execution"]["status"], "Dead Letter");

    // The dispatcher places calls as `serve` would, on the simulated network.
    let dispatcher = Dispatcher::new(
        app.db.clone(),
        Arc::new(voxd::clock::SystemClock),
        Arc::new(SimCarrier {
            delays: SimDelays {
                ring: std::time::Duration::from_millis(300),
                answer: std::time::Duration::from_millis(300),
            },
        }),
        Arc::new(RulesBrain),
        Arc::new(Tools::new(true, Arc::new(RecordingSms::default()))),
        DispatcherSettings {
            calls_per_second_per_number: 0,
            ..Default::default()
        },
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(dispatcher.run(async move {
        let _ = stopped.await;
    }));

    let addr = serve_in_process(&app).await;
    let ids = serde_json::json!({
        "script_id": script_id,
        "execution_id": execution_id,
        "revoke_key_id": key.id.to_string(),
        "endpoint_id": endpoint_id,
        "to_number": "+61412345671",
    });
    let shots = std::env::var("VOXD_SCREENSHOTS").unwrap_or_default();
    let (report, ok) = run_browser_script(
        "dashboard.mjs",
        &[
            &format!("http://{addr}"),
            "ops@acme.test",
            "correct horse battery",
            &ids.to_string(),
            &shots,
        ],
    )
    .await;
    let _ = stop.send(());
    let _ = running.await;
    assert!(ok, "the dashboard run failed: {report:#}");
    assert_eq!(report["sign_in_url"], "/sign-in");
    assert_eq!(report["live_without_reload"], true, "{report:#}");
    assert!(report["transcript_turns"].as_u64().unwrap() >= 2, "{report:#}");
    let call_page = report["call_page"].as_str().unwrap();
    assert!(call_page.contains("completed"), "{call_page}");
    assert!(
        call_page.contains("No recording"),
        "a simulated call has none: {call_page}"
    );
    let problem = report["script_problem"].as_str().unwrap();
    assert!(problem.starts_with("line "), "{problem}");
    assert!(
        report["simulation"].as_str().unwrap().contains("assistant"),
        "{report:#}"
    );
    assert_eq!(report["softphone_script"], script_id.as_str(), "{report:#}");
    let rotated = report["rotated_secret"].as_str().unwrap();
    assert!(!rotated.is_empty() && rotated != first_secret, "{report:#}");
    assert_eq!(report["softphone_status"], "idle", "{report:#}");
    assert_ne!(report["execution_status_after_retry"], "Dead Letter");
    assert_eq!(report["failed_requests"], serde_json::json!([]), "{report:#}");
    assert_eq!(report["external_requests"], serde_json::json!([]));
    // What the page showed happened: the call, the revoked key, the new key that works.
    let calls = app.get("/api/v1/calls").await;
    assert_eq!(calls.body["calls"][0]["progress"], "ended");
    let keys = app.db.list_keys(app.team_id).await.unwrap();
    assert!(keys.iter().find(|k| k.id == key.id).unwrap().revoked_at.is_some());
    let c = app.get(&format!("/api/v1/campaigns/{campaign_id}")).await;
    assert_eq!(c.body["campaign"]["status"], "paused", "{}", c.body);
    assert_eq!(app.get("/api/v1/dnc/+61412999000").await.status, 200);
    let new_key = report["new_key"].as_str().unwrap();
    assert_eq!(app.get_as(new_key, "/api/v1/contacts").await.status, 200);
    app.cleanup().await;
}
