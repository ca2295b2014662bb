//! What every endpoint shares: health, self-description, envelopes, request ids, rate limits and
//! idempotency.

mod common;

use axum::http::Method;
use common::TestApp;
use serde_json::json;

async fn health_needs_no_key(app: &TestApp) {
    let r = app.raw(Method::GET, "/api/v1/health", None, "").await;
    let b = r.ok(200);
    assert_eq!(b["database"], "ok");
    assert!(r.header("x-request-id").is_some_and(|id| !id.is_empty()));
    assert!(r.header("x-ratelimit-limit").is_none());
}

async fn health_reports_a_dead_database(app: &TestApp) {
    app.db.close().await;
    let r = app.raw(Method::GET, "/api/v1/health", None, "").await;
    assert_eq!(r.status.as_u16(), 503);
    assert_eq!(r.body["database"], "unavailable");
    assert_eq!(r.body["success"], false);
}

async fn openapi_and_docs_describe_the_routes(app: &TestApp) {
    let r = app.raw(Method::GET, "/api/v1/openapi.json", None, "").await;
    assert_eq!(r.status.as_u16(), 200);
    let spec = &r.body;
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/create-contact",
        "/api/v1/contacts/{contact_id}",
        "/api/v1/add-contacts-to-list/{list_id}",
        "/api/v1/add-contact-to-list/{list_id}",
        "/api/v1/create-object-type",
        "/api/v1/link-object-to-contact/{object_id}",
        "/api/v1/upsert-object",
    ] {
        assert!(spec["paths"].get(path).is_some(), "{path} missing from the spec");
    }
    let create = &spec["paths"]["/api/v1/create-contact"]["post"]["responses"];
    for code in ["201", "400", "401", "409", "413", "429"] {
        assert!(create.get(code).is_some(), "create-contact lacks {code}");
    }
    // The page is the embedded renderer over this document (tests/browser.rs renders it).
    let docs = app.raw(Method::GET, "/docs", None, "").await;
    let html = String::from_utf8(docs.raw).unwrap();
    assert!(html.contains("/docs/scalar.js") && html.contains("/api/v1/openapi.json"));
    let script = app.raw(Method::GET, "/docs/scalar.js", None, "").await;
    assert_eq!(script.status.as_u16(), 200);
    assert!(script.header("content-type").unwrap().starts_with("text/javascript"));
    assert!(script.raw.len() > 1_000_000, "the renderer is embedded whole");
}

async fn unknown_routes_and_methods_get_the_envelope(app: &TestApp) {
    let r = app.get("/api/v1/nothing-here").await;
    r.error(404);
    let r = app.call(Method::DELETE, "/api/v1/create-contact", None, &[]).await;
    r.error(405);
    assert_eq!(r.header("allow"), Some("POST"));
    assert_eq!(r.body["code"], "method_not_allowed");
}

async fn rate_limit_refuses_with_retry_after(app: &TestApp) {
    let (_, key) = app.team_with_rate("slow", 3).await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = app.get_as(&key, "/api/v1/contacts").await;
        r.ok(200);
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        remaining.push(r.header("x-ratelimit-remaining").unwrap().to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let refused = app.get_as(&key, "/api/v1/contacts").await;
    refused.error(429);
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    // Other keys are not affected.
    app.get("/api/v1/contacts").await.ok(200);
    let body = json!({"phone_number": "0429069971"});
    app.post_as(&key, "/api/v1/create-contact", &body).await.error(429);
    assert_eq!(app.count("contacts").await, 0);
}

async fn idempotency_replays_and_refuses_mismatch(app: &TestApp) {
    let body = json!({"phone_number": "0429069971"});
    let first = app
        .call(
            Method::POST,
            "/api/v1/create-contact",
            Some(&body),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    first.ok(201);
    assert!(first.header("idempotent-replayed").is_none());
    let replay = app
        .call(
            Method::POST,
            "/api/v1/create-contact",
            Some(&body),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(
        replay.status.as_u16(),
        201,
        "a replay, not a 409 duplicate: {}",
        replay.body
    );
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.body, first.body);
    let x_header = app
        .call(
            Method::POST,
            "/api/v1/create-contact",
            Some(&body),
            &[("X-Idempotency-Key", "k-1")],
        )
        .await;
    assert_eq!(x_header.body, first.body);
    let other_body = json!({"phone_number": "0429069972"});
    let mismatch = app
        .call(
            Method::POST,
            "/api/v1/create-contact",
            Some(&other_body),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    assert!(mismatch.error(409).contains("Idempotency-Key"));
    // Same key on another endpoint is another request.
    let list = app
        .call(
            Method::POST,
            "/api/v1/create-list",
            Some(&json!({"name": "L"})),
            &[("Idempotency-Key", "k-1")],
        )
        .await;
    list.error(409);
    // Keys belong to a team.
    let (_, other) = app.other_team("globex").await;
    let theirs = app
        .raw(Method::POST, "/api/v1/create-contact", Some(&other), body.to_string())
        .await;
    theirs.ok(201);
    let long_key = "k".repeat(256);
    app.call(
        Method::POST,
        "/api/v1/create-list",
        Some(&json!({"name": "L"})),
        &[("Idempotency-Key", &long_key)],
    )
    .await
    .error(400);
    assert_eq!(app.count("contacts").await, 2);
    assert_eq!(app.count("lists").await, 0);
}

async fn client_errors_are_replayed_too(app: &TestApp) {
    let bad = json!({"phone_number": "nope"});
    let first = app
        .call(
            Method::POST,
            "/api/v1/create-contact",
            Some(&bad),
            &[("Idempotency-Key", "bad-1")],
        )
        .await;
    first.error(400);
    let again = app
        .call(
            Method::POST,
            "/api/v1/create-contact",
            Some(&bad),
            &[("Idempotency-Key", "bad-1")],
        )
        .await;
    again.error(400);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
}

on_both_backends!(
    health_needs_no_key,
    health_reports_a_dead_database,
    openapi_and_docs_describe_the_routes,
    unknown_routes_and_methods_get_the_envelope,
    rate_limit_refuses_with_retry_after,
    idempotency_replays_and_refuses_mismatch,
    client_errors_are_replayed_too,
    every_documented_operation_guards_its_door,
);

/// With the key cache on, a revocation reaches a running server within the cache's lifetime.
#[tokio::test]
async fn revocation_takes_effect_within_the_key_cache_ttl() {
    let ttl = std::time::Duration::from_millis(300);
    let settings = voxd::api::ApiSettings {
        key_cache_ttl: ttl,
        ..Default::default()
    };
    let app = TestApp::start_with(common::Backend::Sqlite, settings).await.unwrap();
    app.get("/api/v1/contacts").await.ok(200);
    for key in app.db.list_keys(app.team_id).await.unwrap() {
        app.db.revoke_key(key.id, voxd::domain::now()).await.unwrap();
    }
    app.get("/api/v1/contacts").await.ok(200);
    tokio::time::sleep(ttl + std::time::Duration::from_millis(100)).await;
    assert_eq!(app.get("/api/v1/contacts").await.error(401), "invalid API key");
    app.cleanup().await;
}

/// Every operation of the served spec, swept for what all of them must do: refuse a missing or
/// wrong key with 401; refuse malformed and oversize bodies with 400 and 413; answer 404 for ids
/// that do not exist. All in the envelope, and nothing written.
async fn every_documented_operation_guards_its_door(app: &TestApp) {
    let spec = app.raw(Method::GET, "/api/v1/openapi.json", None, "").await.body;
    let mut swept = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        let concrete = path
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    uuid::Uuid::now_v7().to_string()
                } else {
                    seg.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let method: Method = method.to_uppercase().parse().unwrap();
            let public = path == "/api/v1/health";
            // The hook token is the credential: an unknown one is a 404 whatever the body.
            if path.starts_with("/api/v1/hooks/") {
                for body in ["{}", "{not json", "[]"] {
                    app.raw(method.clone(), &concrete, None, body).await.error(404);
                }
                swept += 1;
                continue;
            }
            if !public {
                let r = app.raw(method.clone(), &concrete, None, "{}").await;
                r.error(401);
                let r = app.raw(method.clone(), &concrete, Some("vxd_wrong"), "{}").await;
                r.error(401);
            }
            let csv = op["requestBody"]["content"].get("text/csv").is_some();
            if csv {
                // CSV imports: JSON is refused as such, a file without the needed column is a 400;
                // an id that names nothing is a 404 before the body is read.
                let send = |content_type: &'static str, body: &'static str| {
                    let req = axum::http::Request::builder()
                        .method(method.clone())
                        .uri(&concrete)
                        .header("authorization", format!("Bearer {}", app.key))
                        .header("content-type", content_type)
                        .body(axum::body::Body::from(body))
                        .unwrap();
                    app.send(req)
                };
                let (json, bad) = if path.contains('{') { (404, 404) } else { (415, 400) };
                send("application/json", "{}").await.error(json);
                send("text/csv", "name\nAnn\n").await.error(bad);
            } else if op.get("requestBody").is_some() {
                app.raw(method.clone(), &concrete, Some(&app.key), "{not json")
                    .await
                    .error(400);
                app.raw(method.clone(), &concrete, Some(&app.key), "[]")
                    .await
                    .error(400);
                // A body that says it is not JSON is refused as such.
                let req = axum::http::Request::builder()
                    .method(method.clone())
                    .uri(&concrete)
                    .header("authorization", format!("Bearer {}", app.key))
                    .header("content-type", "text/plain")
                    .body(axum::body::Body::from("{}"))
                    .unwrap();
                app.send(req).await.error(415);
                let huge = format!("{{\"x\": \"{}\"}}", "y".repeat(1024 * 1024 + 1));
                app.raw(method.clone(), &concrete, Some(&app.key), huge)
                    .await
                    .error(413);
            }
            if path.contains('{') && method == Method::GET {
                let r = app.get(&concrete).await;
                let status = r.status.as_u16();
                // A uuid that names nothing; by-name lookups take the segment as a (valid-looking or not) name.
                assert!(status == 404 || status == 400, "{method} {path}: {status}");
                assert_eq!(r.body["success"], false);
            }
            swept += 1;
        }
    }
    assert!(swept >= 16, "only {swept} operations in the spec");
    for table in [
        "contacts",
        "lists",
        "list_members",
        "object_types",
        "objects",
        "object_contacts",
        "automations",
        "executions",
        "webhook_endpoints",
    ] {
        assert_eq!(app.count(table).await, 0, "{table} was written");
    }
}
