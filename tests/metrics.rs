//! `/metrics`, read with a Prometheus text parser: the families move when a call runs, labels
//! carry no personal data, and a configured token is required.

mod common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use common::{Receiver, TestApp, CALLER_ID};
use prometheus_parse::{Scrape, Value};
use serde_json::json;
use voxd::{
    api::{metrics::MetricsToken, ApiSettings},
    carrier::sim::{SimCarrier, SimDelays},
    clock::ManualClock,
    conversation::{
        brain::{rules::RulesBrain, Timed},
        tools::{RecordingSms, Tools},
    },
    dispatcher::{Dispatcher, DispatcherSettings},
};

async fn scrape(app: &TestApp) -> (Scrape, String) {
    let r = app.get("/metrics").await;
    assert_eq!(r.status.as_u16(), 200, "{}", String::from_utf8_lossy(&r.raw));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(r.raw.clone()).unwrap();
    let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("Prometheus text format");
    (scrape, text)
}

/// The sum of a family's samples whose labels include `labels` (a histogram counts its
/// observations).
fn value(s: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match &x.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
            _ => 0.0,
        })
        .sum()
}

async fn the_families_move_when_a_call_runs(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let receiver = Receiver::start().await;
    app.post(
        "/api/v1/webhook-endpoints",
        &json!({"url": format!("{}/hook", receiver.url), "events": ["call.ended"]}),
    )
    .await
    .ok(201);
    let (before, _) = scrape(app).await;
    let created = value(
        &before,
        "voxd_http_requests_total",
        &[("route", "/api/v1/create-phone-call"), ("status", "201")],
    );
    let late = value(&before, "voxd_dispatch_lateness_seconds", &[]);
    let decided = value(
        &before,
        "voxd_brain_seconds",
        &[("brain", "rules"), ("operation", "decide")],
    );

    let body = json!({"from_number": CALLER_ID, "script_id": script_id,
                      "contact": {"phone_number": "0429069971", "first_name": "Ava"}});
    let call_id = app.post("/api/v1/create-phone-call", &body).await.ok(201)["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (mid, _) = scrape(app).await;
    assert_eq!(value(&mid, "voxd_calls", &[("progress", "scheduled")]), 1.0);
    // The dispatcher with the brain timed, as `serve` runs it.
    let clock = Arc::new(ManualClock::new(Utc::now() + Duration::seconds(1)));
    let dispatcher = Dispatcher::new(
        app.db.clone(),
        clock,
        Arc::new(SimCarrier {
            delays: SimDelays::default(),
        }),
        Arc::new(Timed(Arc::new(RulesBrain))),
        Arc::new(Tools::new(true, Arc::new(RecordingSms::default()))),
        DispatcherSettings {
            calls_per_second_per_number: 0,
            ..Default::default()
        },
    );
    dispatcher.run_once().await.unwrap();
    common::test_runner(app, Arc::new(voxd::automations::notify::RecordingNotifier::default()))
        .run_until_idle(10)
        .await
        .unwrap();

    let (after, text) = scrape(app).await;
    // Counters are the process's (tests beside this one count too): at least this call's.
    assert!(
        value(
            &after,
            "voxd_http_requests_total",
            &[("route", "/api/v1/create-phone-call"), ("status", "201")]
        ) >= created + 1.0
    );
    assert!(
        value(
            &after,
            "voxd_http_request_duration_seconds",
            &[("route", "/api/v1/create-phone-call")]
        ) >= 1.0
    );
    assert_eq!(
        value(&after, "voxd_calls", &[("progress", "ended"), ("status", "completed")]),
        1.0
    );
    assert_eq!(value(&after, "voxd_calls", &[("progress", "scheduled")]), 0.0);
    assert_eq!(value(&after, "voxd_live_calls", &[]), 0.0);
    assert!(value(&after, "voxd_dispatch_lateness_seconds", &[]) >= late + 1.0);
    assert!(
        value(
            &after,
            "voxd_brain_seconds",
            &[("brain", "rules"), ("operation", "decide")]
        ) > decided
    );
    assert!(
        value(
            &after,
            "voxd_brain_seconds",
            &[("brain", "rules"), ("operation", "analyse")]
        ) >= 1.0
    );
    assert_eq!(
        value(&after, "voxd_webhook_deliveries", &[("status", "delivered")]),
        1.0
    );
    // Route templates, not paths with ids; and nothing that names the callee.
    app.get(&format!("/api/v1/get-call/{call_id}")).await.ok(200);
    let (_, text_last) = scrape(app).await;
    // (The parser splits label values at braces: the template is looked for in the text.)
    assert!(
        text_last.contains(r#"voxd_http_requests_total{method="GET",route="/api/v1/get-call/{call_id}",status="200"}"#)
    );
    for secret in [call_id.as_str(), "+61429069971", "Ava", &app.team_id.to_string()] {
        assert!(
            !text.contains(secret) && !text_last.contains(secret),
            "{secret} in /metrics"
        );
    }
}

async fn a_metrics_token_is_required_when_set(app: &TestApp) {
    let settings = ApiSettings {
        metrics_token: Some(MetricsToken("scrape-me".into())),
        ..ApiSettings::default()
    };
    let guarded = TestApp::start_with(app.backend(), settings).await.unwrap();
    for auth in [None, Some("Bearer nope"), Some("scrape-me")] {
        let mut req = axum::http::Request::builder().uri("/metrics");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let r = guarded.send(req.body(axum::body::Body::empty()).unwrap()).await;
        assert_eq!(r.status.as_u16(), 401, "{auth:?}");
        assert_eq!(r.body["success"], false);
    }
    let req = axum::http::Request::builder()
        .uri("/metrics")
        .header("authorization", "Bearer scrape-me")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(guarded.send(req).await.status.as_u16(), 200);
    guarded.cleanup().await;
}

on_both_backends!(the_families_move_when_a_call_runs, a_metrics_token_is_required_when_set);
