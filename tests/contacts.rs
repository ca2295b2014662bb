//! Contacts through the front door: create, read, list; bad input; other teams.

mod common;

use axum::http::Method;
use common::TestApp;
use serde_json::json;

async fn create_normalises_and_returns_the_contact(app: &TestApp) {
    // The contract's example, verbatim.
    let body = json!({"phone_number": "0429069971", "first_name": "John", "last_name": "Smith",
                      "email": "john.smith@example.com", "title": "Mr"});
    let r = app.post("/api/v1/create-contact", &body).await;
    let b = r.ok(201);
    assert_eq!(b["contact"]["phone_number"], "+61429069971");
    assert_eq!(b["contact"]["full_name"], "John Smith");
    assert_eq!(b["contact_id"], b["contact"]["id"]);
    assert!(b["contact"]["created_at"].as_str().unwrap().ends_with('Z'));
    let id = b["contact_id"].as_str().unwrap();
    let got = app.get(&format!("/api/v1/contacts/{id}")).await;
    assert_eq!(got.ok(200)["contact"]["email"], "john.smith@example.com");
}

async fn same_number_in_another_format_is_a_conflict(app: &TestApp) {
    let first = app
        .post("/api/v1/create-contact", &json!({"phone_number": "0429069971"}))
        .await;
    let id = first.ok(201)["contact_id"].clone();
    let again = app
        .post(
            "/api/v1/create-contact",
            &json!({"phone_number": "+61 429 069 971", "first_name": "X"}),
        )
        .await;
    assert!(again.error(409).contains("already exists"));
    assert_eq!(again.body["contact_id"], id);
    assert_eq!(app.count("contacts").await, 1);
    // Another team has its own namespace of numbers.
    let (_, other) = app.other_team("globex").await;
    app.post_as(&other, "/api/v1/create-contact", &json!({"phone_number": "0429069971"}))
        .await
        .ok(201);
}

async fn bad_input_is_a_400_naming_the_field_and_writes_nothing(app: &TestApp) {
    let cases = [
        (json!({}), "phone_number"),
        (json!({"phone_number": 429069971}), "phone_number"),
        (json!({"phone_number": "hello"}), "phone_number"),
        (json!({"phone_number": "0429069971", "email": "nope"}), "email"),
        (
            json!({"phone_number": "0429069971", "first_name": "x".repeat(256)}),
            "first_name",
        ),
        (
            json!({"phone_number": "0429069971", "timezone": "Mars/Base"}),
            "timezone",
        ),
        (json!({"phone_number": "0429069971", "metadata": [1, 2]}), "metadata"),
        (json!({"phone_number": "0429069971", "phone": "typo"}), "phone"),
        (json!(["0429069971"]), "map"),
    ];
    for (body, field) in cases {
        let r = app.post("/api/v1/create-contact", &body).await;
        let message = r.error(400);
        assert!(message.contains(field), "{body} → {message}");
    }
    let malformed = app
        .raw(
            Method::POST,
            "/api/v1/create-contact",
            Some(&app.key),
            "{\"phone_number\": ",
        )
        .await;
    assert!(malformed.error(400).contains("malformed JSON"));
    let empty = app
        .raw(Method::POST, "/api/v1/create-contact", Some(&app.key), "")
        .await;
    assert!(empty.error(400).contains("required"));
    let huge = format!(
        "{{\"phone_number\": \"0429069971\", \"address\": \"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    app.raw(Method::POST, "/api/v1/create-contact", Some(&app.key), huge)
        .await
        .error(413);
    assert_eq!(app.count("contacts").await, 0);
}

async fn keys_are_required_and_checked(app: &TestApp) {
    let body = json!({"phone_number": "0429069971"}).to_string();
    let r = app
        .raw(Method::POST, "/api/v1/create-contact", None, body.clone())
        .await;
    assert!(r.error(401).contains("Authorization"));
    let r = app
        .raw(
            Method::POST,
            "/api/v1/create-contact",
            Some("vxd_not-a-real-key"),
            body.clone(),
        )
        .await;
    assert!(r.error(401).contains("invalid"));
    // A revoked key stops working at once.
    let id: uuid::Uuid = match &app.db {
        voxd::store::Db::Sqlite { read, .. } => sqlx::query_scalar("SELECT id FROM api_keys")
            .fetch_one(read)
            .await
            .unwrap(),
        voxd::store::Db::Postgres(p) => sqlx::query_scalar("SELECT id FROM api_keys")
            .fetch_one(p)
            .await
            .unwrap(),
    };
    assert!(app.db.revoke_key(id, voxd::domain::now()).await.unwrap());
    let r = app
        .raw(Method::POST, "/api/v1/create-contact", Some(&app.key), body)
        .await;
    // The same answer as for a key that never existed: nothing tells a caller a key once was.
    assert_eq!(r.error(401), "invalid API key");
    assert_eq!(app.count("contacts").await, 0);
}

async fn other_teams_and_malformed_ids_are_404(app: &TestApp) {
    let id = app
        .post("/api/v1/create-contact", &json!({"phone_number": "0429069971"}))
        .await
        .ok(201)["contact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, other) = app.other_team("globex").await;
    app.get_as(&other, &format!("/api/v1/contacts/{id}")).await.error(404);
    app.get("/api/v1/contacts/not-a-uuid").await.error(404);
    app.get(&format!("/api/v1/contacts/{}", uuid::Uuid::now_v7()))
        .await
        .error(404);
    let listed = app.get_as(&other, "/api/v1/contacts").await;
    assert_eq!(listed.ok(200)["contacts"].as_array().unwrap().len(), 0);
}

async fn list_filters_and_pages(app: &TestApp) {
    for i in 0..7 {
        let phone = format!("04290699{i:02}");
        let body = json!({"phone_number": phone, "email": format!("p{i}@example.com")});
        app.post("/api/v1/create-contact", &body).await.ok(201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/api/v1/contacts?limit=3&cursor={c}"),
            None => "/api/v1/contacts?limit=3".to_owned(),
        };
        let r = app.get(&path).await;
        let b = r.ok(200);
        for c in b["contacts"].as_array().unwrap() {
            seen.push(c["phone_number"].as_str().unwrap().to_owned());
        }
        cursor = b["meta"]["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    let expected: Vec<String> = (0..7).map(|i| format!("+614290699{i:02}")).collect();
    assert_eq!(seen, expected, "every contact once, in creation order");

    let by_phone = app.get("/api/v1/contacts?phone_number=0429069903").await;
    let list = by_phone.ok(200)["contacts"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["email"], "p3@example.com");
    let by_email = app.get("/api/v1/contacts?email=p5@example.com").await;
    assert_eq!(by_email.ok(200)["contacts"][0]["phone_number"], "+61429069905");

    app.get("/api/v1/contacts?limit=0").await.error(400);
    app.get("/api/v1/contacts?limit=201").await.error(400);
    app.get("/api/v1/contacts?limit=abc").await.error(400);
    app.get("/api/v1/contacts?cursor=garbage").await.error(400);
    app.get("/api/v1/contacts?phone_number=hello").await.error(400);
}

async fn concurrent_creates_all_succeed(app: &TestApp) {
    let mut tasks = Vec::new();
    for i in 0..60 {
        let router = app.router.clone();
        let key = app.key.clone();
        tasks.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let req = axum::http::Request::post("/api/v1/create-contact")
                .header("authorization", format!("Bearer {key}"))
                .body(axum::body::Body::from(
                    json!({"phone_number": format!("0412345{i:03}")}).to_string(),
                ))
                .unwrap();
            router.oneshot(req).await.unwrap().status().as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    assert_eq!(app.count("contacts").await, 60);
}

on_both_backends!(
    create_normalises_and_returns_the_contact,
    same_number_in_another_format_is_a_conflict,
    bad_input_is_a_400_naming_the_field_and_writes_nothing,
    keys_are_required_and_checked,
    other_teams_and_malformed_ids_are_404,
    list_filters_and_pages,
    concurrent_creates_all_succeed,
);
