//! The everyday operations around the contract: phone numbers, lists, contact updates and
//! deletes, listing order and time filters. Every case runs on SQLite and PostgreSQL.

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

async fn inbound_script(app: &TestApp) -> String {
    let r = app
        .post("/api/v1/scripts", &common::example_script("receptionist"))
        .await;
    r.ok(201)["script_id"].as_str().unwrap().to_owned()
}

async fn phone_numbers_are_managed_through_the_api(app: &TestApp) {
    let inbound = inbound_script(app).await;
    let outbound = app
        .post("/api/v1/scripts", &common::example_script("buyer-follow-up"))
        .await;
    let outbound = outbound.ok(201)["script_id"].as_str().unwrap().to_owned();

    // Bad input first: nothing is written by any of these.
    let r = app.post("/api/v1/phone-numbers", &json!({})).await;
    assert!(r.error(400).contains("phone_number"), "{}", r.body);
    let r = app.post("/api/v1/phone-numbers", &json!({"phone_number": 612})).await;
    r.error(400);
    let r = app
        .post("/api/v1/phone-numbers", &json!({"phone_number": "9".repeat(10_000)}))
        .await;
    assert_eq!(
        (r.status.as_u16(), &r.body["field"]),
        (400, &json!("phone_number")),
        "oversized"
    );
    let r = app
        .post("/api/v1/phone-numbers", &json!({"phone_number": "not a number"}))
        .await;
    r.error(400);
    assert_eq!(r.body["field"], "phone_number");
    let r = app
        .post(
            "/api/v1/phone-numbers",
            &json!({"phone_number": "0291234567", "extra": 1}),
        )
        .await;
    r.error(400);
    let r = app
        .post(
            "/api/v1/phone-numbers",
            &json!({"phone_number": "0291234567", "inbound_script_id": outbound}),
        )
        .await;
    assert!(r.error(400).contains("inbound script"), "{}", r.body);
    assert_eq!(r.body["field"], "inbound_script_id");
    let r = app
        .post(
            "/api/v1/phone-numbers",
            &json!({"phone_number": "0291234567", "inbound_script_id": uuid::Uuid::now_v7().to_string()}),
        )
        .await;
    r.error(404);
    let r = app
        .post(
            "/api/v1/phone-numbers",
            &json!({"phone_number": "0291234567", "inbound_script_id": "nope"}),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), &r.body["field"]),
        (400, &json!("inbound_script_id"))
    );
    assert_eq!(app.count("phone_numbers").await, 0);

    // Added in any format, stored in E.164, once per team.
    let r = app
        .post(
            "/api/v1/phone-numbers",
            &json!({"phone_number": "02 9123 4567", "inbound_script_id": inbound}),
        )
        .await;
    let n = r.ok(201)["phone_number"].clone();
    assert_eq!(n["phone_number"], CALLER_ID);
    assert_eq!(n["inbound_script_id"], inbound.as_str());
    let id = n["id"].as_str().unwrap().to_owned();
    let r = app
        .post("/api/v1/phone-numbers", &json!({"phone_number": "+61291234567"}))
        .await;
    assert!(r.error(409).contains("already has"), "{}", r.body);
    app.post("/api/v1/phone-numbers", &json!({"phone_number": "+61299990000"}))
        .await
        .ok(201);

    let all = app.get("/api/v1/phone-numbers").await;
    let listed: Vec<&str> = all.ok(200)["phone_numbers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["phone_number"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [CALLER_ID, "+61299990000"]);
    let newest = app.get("/api/v1/phone-numbers?order=desc&limit=1").await;
    assert_eq!(newest.ok(200)["phone_numbers"][0]["phone_number"], "+61299990000");
    assert!(newest.body["meta"]["next_cursor"].is_string());
    app.get(&format!("/api/v1/phone-numbers/{id}")).await.ok(200);

    // The inbound script changes, or is cleared; the field must be there.
    let r = patch(
        app,
        &format!("/api/v1/phone-numbers/{id}"),
        &json!({"inbound_script_id": null}),
    )
    .await;
    assert_eq!(r.ok(200)["phone_number"]["inbound_script_id"], Value::Null);
    let r = patch(app, &format!("/api/v1/phone-numbers/{id}"), &json!({})).await;
    assert!(r.error(400).contains("inbound_script_id"));
    let r = patch(
        app,
        &format!("/api/v1/phone-numbers/{id}"),
        &json!({"inbound_script_id": 5}),
    )
    .await;
    r.error(400);
    let r = patch(
        app,
        &format!("/api/v1/phone-numbers/{id}"),
        &json!({"inbound_script_id": outbound}),
    )
    .await;
    r.error(400);
    let r = patch(
        app,
        &format!("/api/v1/phone-numbers/{id}"),
        &json!({"inbound_script_id": inbound}),
    )
    .await;
    assert_eq!(r.ok(200)["phone_number"]["inbound_script_id"], inbound.as_str());

    // Another team sees none of it.
    let (_, other) = app.other_team("rival").await;
    app.get_as(&other, &format!("/api/v1/phone-numbers/{id}"))
        .await
        .error(404);
    let theirs = app.get_as(&other, "/api/v1/phone-numbers").await;
    assert_eq!(theirs.ok(200)["phone_numbers"], json!([]));
    let r = app
        .raw(Method::DELETE, &format!("/api/v1/phone-numbers/{id}"), Some(&other), "")
        .await;
    r.error(404);

    // A number a scheduled call rings from stays until the call is over.
    let call = app
        .post(
            "/api/v1/create-phone-call",
            &json!({"from_number": CALLER_ID, "script_id": outbound, "contact": {"phone_number": "0412345678"}}),
        )
        .await;
    let call_id = call.ok(201)["call_id"].as_str().unwrap().to_owned();
    let r = delete(app, &format!("/api/v1/phone-numbers/{id}")).await;
    assert!(r.error(409).contains("1 calls"), "{}", r.body);
    app.post(&format!("/api/v1/cancel-call/{call_id}"), &json!({}))
        .await
        .ok(200);
    let r = delete(app, &format!("/api/v1/phone-numbers/{id}")).await;
    assert_eq!(r.ok(200)["deleted"], true);
    delete(app, &format!("/api/v1/phone-numbers/{id}")).await.error(404);
    delete(app, "/api/v1/phone-numbers/not-an-id").await.error(404);
    assert_eq!(app.count("phone_numbers").await, 1);
}

async fn lists_are_found_renamed_emptied_and_deleted(app: &TestApp) {
    let mut ids = Vec::new();
    for name in ["First", "Second", "Third"] {
        let r = app.post("/api/v1/create-list", &json!({"name": name})).await;
        ids.push(r.ok(201)["list_id"].as_str().unwrap().to_owned());
    }
    let page = app.get("/api/v1/lists?limit=2").await;
    let names: Vec<&str> = page.ok(200)["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["First", "Second"]);
    let cursor = page.body["meta"]["next_cursor"].as_str().unwrap().to_owned();
    let rest = app.get(&format!("/api/v1/lists?limit=2&cursor={cursor}")).await;
    assert_eq!(rest.ok(200)["lists"][0]["name"], "Third");
    assert_eq!(rest.body["meta"]["next_cursor"], Value::Null);
    let newest = app.get("/api/v1/lists?order=desc").await;
    assert_eq!(newest.ok(200)["lists"][0]["name"], "Third");
    app.get("/api/v1/lists?order=sideways").await.error(400);

    let list = &ids[0];
    let r = patch(app, &format!("/api/v1/lists/{list}"), &json!({"name": "  Renamed  "})).await;
    assert_eq!(r.ok(200)["list"]["name"], "Renamed");
    patch(app, &format!("/api/v1/lists/{list}"), &json!({"name": ""}))
        .await
        .error(400);
    patch(app, &format!("/api/v1/lists/{list}"), &json!({"name": "x".repeat(256)}))
        .await
        .error(400);
    patch(app, &format!("/api/v1/lists/{list}"), &json!({"name": 3}))
        .await
        .error(400);
    patch(app, &format!("/api/v1/lists/{list}"), &json!({}))
        .await
        .error(400);

    let added = app
        .post(
            &format!("/api/v1/add-contacts-to-list/{list}"),
            &json!({"contacts": [{"phone_number": "0412000001"}, {"phone_number": "0412000002"}]}),
        )
        .await;
    let member = added.ok(200)["results"][0]["contact_id"].as_str().unwrap().to_owned();
    let r = delete(app, &format!("/api/v1/lists/{list}/contacts/{member}")).await;
    assert_eq!(r.ok(200)["removed"], true);
    delete(app, &format!("/api/v1/lists/{list}/contacts/{member}"))
        .await
        .error(404);
    let shown = app.get(&format!("/api/v1/lists/{list}")).await;
    assert_eq!(shown.ok(200)["list"]["contact_count"], 1);
    app.get(&format!("/api/v1/contacts/{member}")).await.ok(200);

    let (_, other) = app.other_team("rival").await;
    app.get_as(&other, &format!("/api/v1/lists/{list}")).await.error(404);
    assert_eq!(app.get_as(&other, "/api/v1/lists").await.ok(200)["lists"], json!([]));
    let r = app
        .raw(Method::DELETE, &format!("/api/v1/lists/{list}"), Some(&other), "")
        .await;
    r.error(404);

    assert_eq!(
        delete(app, &format!("/api/v1/lists/{list}")).await.ok(200)["deleted"],
        true
    );
    delete(app, &format!("/api/v1/lists/{list}")).await.error(404);
    assert_eq!(app.count("contacts").await, 2, "the members stay as contacts");
}

async fn contacts_are_updated_and_deleted(app: &TestApp) {
    let create = |phone: &str| json!({"phone_number": phone, "first_name": "Ada", "email": "ada@example.com", "metadata": {"a": 1, "b": 2}});
    let id = app.post("/api/v1/create-contact", &create("0412345678")).await.ok(201)["contact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app.post("/api/v1/create-contact", &create("0412999999")).await.ok(201)["contact_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/v1/contacts/{id}");

    let r = patch(
        app,
        &path,
        &json!({"last_name": "Lovelace", "email": null, "metadata": {"a": null, "c": 3}}),
    )
    .await;
    let c = r.ok(200)["contact"].clone();
    assert_eq!(c["first_name"], "Ada");
    assert_eq!(c["full_name"], "Ada Lovelace");
    assert_eq!(c["email"], Value::Null);
    assert_eq!(c["metadata"], json!({"b": 2, "c": 3}));

    // Refusals change nothing.
    assert!(patch(app, &path, &json!({}))
        .await
        .error(400)
        .contains("changes nothing"));
    assert_eq!(
        patch(app, &path, &json!({"email": "not-an-email"})).await.body["field"],
        "email"
    );
    patch(app, &path, &json!({"phone_number": null})).await.error(400);
    patch(app, &path, &json!({"nickname": "x"})).await.error(400);
    patch(app, &path, &json!({"timezone": "Mars/Olympus"})).await.error(400);
    let r = patch(app, &path, &json!({"metadata": {"notes": "x".repeat(20 * 1024)}})).await;
    assert!(r.error(400).contains("metadata"), "oversized metadata: {}", r.body);
    let r = patch(app, &path, &json!({"phone_number": "+61412999999"})).await;
    r.error(409);
    assert_eq!(r.body["contact_id"], other.as_str());
    let (_, rival) = app.other_team("rival").await;
    let r = app
        .raw(Method::PATCH, &path, Some(&rival), r#"{"first_name": "Eve"}"#)
        .await;
    r.error(404);
    let now = app.get(&path).await;
    assert_eq!(now.ok(200)["contact"]["first_name"], "Ada");
    assert_eq!(now.body["contact"]["phone_number"], "+61412345678");

    // The number changes, normalised.
    let r = patch(app, &path, &json!({"phone_number": "0412 111 222"})).await;
    assert_eq!(r.ok(200)["contact"]["phone_number"], "+61412111222");

    // Deleting waits for the contact's calls to be over; ended calls stay, detached.
    let script_id = common::caller_id_and_script(app).await;
    let call = app
        .post(
            "/api/v1/create-phone-call",
            &json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": "+61412111222"}}),
        )
        .await;
    let call_id = call.ok(201)["call_id"].as_str().unwrap().to_owned();
    let r = delete(app, &path).await;
    assert!(r.error(409).contains("cancel"), "{}", r.body);
    let list = app.post("/api/v1/create-list", &json!({"name": "L"})).await.ok(201)["list_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/api/v1/add-contacts-to-list/{list}"),
        &json!({"contact": {"phone_number": "+61412111222"}}),
    )
    .await
    .ok(200);
    app.post(&format!("/api/v1/cancel-call/{call_id}"), &json!({}))
        .await
        .ok(200);
    assert_eq!(delete(app, &path).await.ok(200)["deleted"], true);
    app.get(&path).await.error(404);
    delete(app, &path).await.error(404);
    let kept = app.get(&format!("/api/v1/get-call/{call_id}")).await;
    assert_eq!(kept.ok(200)["call"]["contact_id"], Value::Null);
    assert_eq!(
        app.get(&format!("/api/v1/lists/{list}")).await.ok(200)["list"]["contact_count"],
        0
    );
}

async fn listings_run_newest_first_and_take_dates(app: &TestApp) {
    for phone in ["0412000001", "0412000002", "0412000003"] {
        app.post("/api/v1/create-contact", &json!({"phone_number": phone}))
            .await
            .ok(201);
    }
    let phones = |r: &common::TestResponse| -> Vec<String> {
        r.body["contacts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["phone_number"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = app.get("/api/v1/contacts?order=desc&limit=2").await;
    first.ok(200);
    assert_eq!(phones(&first), ["+61412000003", "+61412000002"]);
    let cursor = first.body["meta"]["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .get(&format!("/api/v1/contacts?order=desc&limit=2&cursor={cursor}"))
        .await;
    second.ok(200);
    assert_eq!(phones(&second), ["+61412000001"]);
    let r = app.get("/api/v1/contacts?order=DESC").await;
    assert!(r.error(400).contains("order"), "{}", r.body);

    let script_id = common::caller_id_and_script(app).await;
    for phone in ["0412000001", "0412000002"] {
        app.post(
            "/api/v1/create-phone-call",
            &json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": phone}}),
        )
        .await
        .ok(201);
    }
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().unwrap();
    let count = |path: String| async move { app.get(&path).await.ok(200)["calls"].as_array().unwrap().len() };
    assert_eq!(count(format!("/api/v1/calls?created_after={today}")).await, 2);
    assert_eq!(count(format!("/api/v1/calls?created_after={tomorrow}")).await, 0);
    assert_eq!(
        count(format!("/api/v1/calls?created_before={tomorrow}&order=desc")).await,
        2
    );
    assert_eq!(
        count(format!("/api/v1/calls?created_after={today}T00:00:00%2B00:00")).await,
        2
    );
    let r = app.get("/api/v1/calls?created_after=last-tuesday").await;
    assert!(r.error(400).contains("neither a date"), "{}", r.body);
    let newest = app.get("/api/v1/calls?order=desc&limit=1").await;
    assert_eq!(newest.ok(200)["calls"][0]["to_number"], "+61412000002");
    let r = app.get(&format!("/api/v1/executions?since={today}&order=desc")).await;
    r.ok(200);
}

/// A script calls were made with stays (its calls keep it for their results): a 409, not a 500.
async fn a_script_with_calls_is_kept(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let call = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0412345671"}});
    app.post("/api/v1/create-phone-call", &call).await.ok(201);
    let r = delete(app, &format!("/api/v1/scripts/{script_id}")).await;
    assert!(r.error(409).contains("1 calls were made"), "{}", r.body);
    app.get(&format!("/api/v1/scripts/{script_id}")).await.ok(200);
    let unused = app
        .post("/api/v1/scripts", &common::example_script("receptionist"))
        .await;
    let unused = unused.ok(201)["script_id"].as_str().unwrap().to_owned();
    assert_eq!(
        delete(app, &format!("/api/v1/scripts/{unused}")).await.ok(200)["deleted"],
        true
    );
}

on_both_backends!(
    a_script_with_calls_is_kept,
    phone_numbers_are_managed_through_the_api,
    lists_are_found_renamed_emptied_and_deleted,
    contacts_are_updated_and_deleted,
    listings_run_newest_first_and_take_dates,
);
