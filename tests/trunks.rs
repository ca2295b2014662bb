//! SIP trunks through the API: adding, listing, reading, removing, and numbers put on them; bad
//! input gets a 4xx and writes nothing; a password goes in sealed and never comes back; another
//! team's trunks are a 404. Every case runs on SQLite and PostgreSQL.

mod common;

use axum::http::Method;
use common::{TestApp, CALLER_ID};
use serde_json::{json, Value};

async fn patch(app: &TestApp, path: &str, body: &Value) -> common::TestResponse {
    app.call(Method::PATCH, path, Some(body), &[]).await
}

async fn delete(app: &TestApp, path: &str) -> common::TestResponse {
    app.call(Method::DELETE, path, None, &[]).await
}

async fn trunks_are_managed_through_the_api(app: &TestApp) {
    // Bad input: each is refused and writes nothing.
    let refused: Vec<(Value, u16, &str)> = vec![
        // Refused by the body's shape (the message names the field).
        (json!({}), 400, ""),
        (json!({"name": "main"}), 400, ""),
        (json!({"name": 7, "uri": "sip:pbx.example"}), 400, ""),
        // Refused by the trunks service (`field` says which).
        (json!({"name": "", "uri": "sip:pbx.example"}), 400, "name"),
        (json!({"name": "x".repeat(101), "uri": "sip:pbx.example"}), 400, "name"),
        (json!({"name": "main", "uri": "sip:user@pbx.example"}), 400, "uri"),
        (json!({"name": "main", "uri": "sip:pbx.example:70000"}), 400, "uri"),
        (
            json!({"name": "main", "uri": format!("sip:{}", "a".repeat(300))}),
            400,
            "uri",
        ),
        (
            json!({"name": "main", "uri": "sip:pbx.example", "transport": "tcp"}),
            400,
            "transport",
        ),
        (
            json!({"name": "main", "uri": "sip:pbx.example", "transport": "carrier-pigeon"}),
            400,
            "transport",
        ),
        (
            json!({"name": "main", "uri": "sip:pbx.example", "password": "hunter22"}),
            400,
            "username",
        ),
        (
            json!({"name": "main", "uri": "sip:pbx.example", "username": "u\u{7}"}),
            400,
            "username",
        ),
        (
            json!({"name": "main", "uri": "sip:pbx.example", "colour": "red"}),
            400,
            "",
        ),
    ];
    for (body, status, field) in refused {
        let r = app.post("/api/v1/trunks", &body).await;
        r.error(status);
        if !field.is_empty() {
            assert_eq!(r.body["field"], field, "{body}: {}", r.body);
        }
    }
    let r = app
        .raw(Method::POST, "/api/v1/trunks", Some(&app.key), "{not json")
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    assert_eq!(app.count("sip_trunks").await, 0, "refused requests wrote a trunk");

    // A trunk with credentials: the password is neither returned nor stored in the clear.
    let r = app
        .post(
            "/api/v1/trunks",
            &json!({"name": " main ", "uri": "sip:pbx.example:5080", "username": "acme", "password": "s3cret-trunk-pass"}),
        )
        .await;
    let trunk = r.ok(201)["trunk"].clone();
    assert_eq!(trunk["name"], "main");
    assert_eq!(trunk["uri"], "sip:pbx.example:5080");
    assert_eq!(trunk["transport"], "udp");
    assert_eq!(trunk["username"], "acme");
    assert_eq!(trunk["has_password"], true);
    assert!(
        !r.body.to_string().contains("s3cret"),
        "the password came back: {}",
        r.body
    );
    let id = trunk["id"].as_str().unwrap().to_owned();
    let stored = app.db.list_trunks(app.team_id).await.unwrap();
    let sealed = stored[0].password.as_ref().expect("the password is stored");
    assert!(
        !sealed.windows(6).any(|w| w == b"s3cret"),
        "the password is stored in the clear"
    );

    // The same name again is a conflict; an open trunk (no credentials) on the default port.
    let r = app
        .post("/api/v1/trunks", &json!({"name": "main", "uri": "sip:other.example"}))
        .await;
    r.error(409);
    let r = app
        .post("/api/v1/trunks", &json!({"name": "backup", "uri": "10.1.2.3"}))
        .await;
    let backup = r.ok(201)["trunk"].clone();
    assert_eq!(backup["uri"], "sip:10.1.2.3:5060");
    assert_eq!(backup["has_password"], false);

    // Reading: one, and pages of the list.
    let got = app.get(&format!("/api/v1/trunks/{id}")).await;
    assert_eq!(got.ok(200)["trunk"], trunk);
    let page = app.get("/api/v1/trunks?limit=1").await;
    let page = page.ok(200);
    assert_eq!(page["trunks"].as_array().unwrap().len(), 1);
    assert_eq!(page["trunks"][0]["id"], id.as_str());
    let cursor = page["meta"]["next_cursor"].as_str().expect("a next page").to_owned();
    let next = app.get(&format!("/api/v1/trunks?limit=1&cursor={cursor}")).await;
    assert_eq!(next.ok(200)["trunks"][0]["id"], backup["id"]);
    app.get("/api/v1/trunks/not-an-id").await.error(404);
    app.get("/api/v1/trunks/0190a6f0-0000-7000-8000-000000000000")
        .await
        .error(404);

    // Another team sees none of it, and cannot put its numbers on our trunk.
    let (other_team, other) = app.other_team("rival").await;
    app.get_as(&other, &format!("/api/v1/trunks/{id}")).await.error(404);
    let theirs = app.get_as(&other, "/api/v1/trunks").await;
    assert_eq!(theirs.ok(200)["trunks"], json!([]));
    let r = app
        .raw(Method::DELETE, &format!("/api/v1/trunks/{id}"), Some(&other), "")
        .await;
    r.error(404);
    let r = app
        .post_as(
            &other,
            "/api/v1/phone-numbers",
            &json!({"phone_number": "+61290000001", "trunk_id": id}),
        )
        .await;
    r.error(404);
    assert!(app.db.list_trunks(other_team).await.unwrap().is_empty());

    // A number on the trunk, from the start or by a change; a wrong trunk changes nothing.
    let r = app
        .post(
            "/api/v1/phone-numbers",
            &json!({"phone_number": CALLER_ID, "trunk_id": id}),
        )
        .await;
    let number = r.ok(201)["phone_number"].clone();
    assert_eq!(number["trunk_id"], id.as_str());
    let number_id = number["id"].as_str().unwrap();
    let path = format!("/api/v1/phone-numbers/{number_id}");
    patch(app, &path, &json!({})).await.error(400);
    patch(app, &path, &json!({"trunk_id": 5})).await.error(400);
    patch(app, &path, &json!({"trunk_id": "0190a6f0-0000-7000-8000-000000000000"}))
        .await
        .error(404);
    assert_eq!(app.get(&path).await.ok(200)["phone_number"]["trunk_id"], id.as_str());

    // A trunk numbers ring through is not removed.
    let r = delete(app, &format!("/api/v1/trunks/{id}")).await;
    assert!(r.error(409).contains("1 number"), "{}", r.body);
    let moved = patch(app, &path, &json!({"trunk_id": backup["id"]})).await;
    assert_eq!(moved.ok(200)["phone_number"]["trunk_id"], backup["id"]);
    let off = patch(app, &path, &json!({"trunk_id": null})).await;
    assert_eq!(off.ok(200)["phone_number"]["trunk_id"], Value::Null);
    let r = delete(app, &format!("/api/v1/trunks/{id}")).await;
    assert_eq!(r.ok(200)["deleted"], true);
    app.get(&format!("/api/v1/trunks/{id}")).await.error(404);
    delete(app, &format!("/api/v1/trunks/{id}")).await.error(404);
    assert_eq!(app.count("sip_trunks").await, 1);
}

on_both_backends!(trunks_are_managed_through_the_api);
