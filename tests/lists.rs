//! Lists: create, add contacts (per-item outcomes), read with members.

mod common;

use common::TestApp;
use serde_json::json;

async fn new_list(app: &TestApp) -> String {
    let r = app
        .post("/api/v1/create-list", &json!({"name": "February follow-up list"}))
        .await;
    let b = r.ok(201);
    assert_eq!(b["list"]["name"], "February follow-up list");
    assert_eq!(b["list"]["contact_count"], 0);
    b["list_id"].as_str().unwrap().to_owned()
}

async fn create_list_validates_the_name(app: &TestApp) {
    new_list(app).await;
    app.post("/api/v1/create-list", &json!({"name": "x".repeat(255)}))
        .await
        .ok(201);
    for body in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": 5}),
        json!({"name": "x".repeat(256)}),
        json!({"name": "a", "extra": 1}),
    ] {
        assert!(
            app.post("/api/v1/create-list", &body).await.error(400).contains("name") || body.get("extra").is_some()
        );
    }
    assert_eq!(app.count("lists").await, 2);
}

async fn batch_reports_each_item(app: &TestApp) {
    let list = new_list(app).await;
    let existing = app
        .post(
            "/api/v1/create-contact",
            &json!({"phone_number": "0400000001", "first_name": "Kept"}),
        )
        .await;
    let existing_id = existing.ok(201)["contact_id"].clone();
    let body = json!({"contacts": [
        {"phone_number": "0429069971", "first_name": "John", "last_name": "Smith"},
        {"phone_number": "+61400000001", "first_name": "Renamed"},
        {"phone_number": "not a phone"},
        {"phone_number": "0429 069 971"},
        {"phone_number": "0400000002", "email": 7},
        "just a string",
    ]});
    let r = app.post(&format!("/api/v1/add-contacts-to-list/{list}"), &body).await;
    let b = r.ok(200);
    let statuses: Vec<&str> = b["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["created", "reused", "invalid", "already_in_list", "invalid", "invalid"]
    );
    assert_eq!(b["results"][1]["contact_id"], existing_id);
    assert!(b["results"][2]["reason"]
        .as_str()
        .unwrap()
        .contains("contacts[2].phone_number"));
    assert!(b["results"][4]["reason"]
        .as_str()
        .unwrap()
        .contains("contacts[4].email"));
    assert_eq!(
        b["summary"],
        json!({"total": 6, "created": 1, "reused": 1, "already_in_list": 1, "invalid": 3})
    );
    // The reused contact keeps its fields; invalid items wrote nothing.
    let kept = app
        .get(&format!("/api/v1/contacts/{}", existing_id.as_str().unwrap()))
        .await;
    assert_eq!(kept.ok(200)["contact"]["first_name"], "Kept");
    assert_eq!(app.count("contacts").await, 2);
    assert_eq!(app.count("list_members").await, 2);

    // Adding the same again changes nothing.
    let again = app
        .post(
            &format!("/api/v1/add-contacts-to-list/{list}"),
            &json!({"contacts": [{"phone_number": "0429069971"}]}),
        )
        .await;
    assert_eq!(again.ok(200)["results"][0]["status"], "already_in_list");
    assert_eq!(app.count("list_members").await, 2);
}

async fn singular_alias_adds_one(app: &TestApp) {
    let list = new_list(app).await;
    let r = app
        .post(
            &format!("/api/v1/add-contact-to-list/{list}"),
            &json!({"contact": {"phone_number": "0429069971"}}),
        )
        .await;
    assert_eq!(r.ok(200)["results"][0]["status"], "created");
    let got = app.get(&format!("/api/v1/lists/{list}")).await;
    let b = got.ok(200);
    assert_eq!(b["list"]["contact_count"], 1);
    assert_eq!(b["contacts"][0]["phone_number"], "+61429069971");
}

async fn malformed_batches_are_refused_whole(app: &TestApp) {
    let list = new_list(app).await;
    let path = format!("/api/v1/add-contacts-to-list/{list}");
    let too_many: Vec<_> = (0..1001)
        .map(|i| json!({"phone_number": format!("04{i:08}")}))
        .collect();
    for body in [
        json!({}),
        json!({"contacts": []}),
        json!({"contacts": "x"}),
        json!({"contacts": [{"phone_number": "0429069971"}], "contact": {"phone_number": "0429069972"}}),
        json!({"contacts": too_many}),
        json!({"people": []}),
    ] {
        app.post(&path, &body).await.error(400);
    }
    assert_eq!(app.count("contacts").await, 0);
    assert_eq!(app.count("list_members").await, 0);
}

async fn unknown_and_foreign_lists_are_404(app: &TestApp) {
    let list = new_list(app).await;
    let body = json!({"contact": {"phone_number": "0429069971"}});
    app.post(&format!("/api/v1/add-contacts-to-list/{}", uuid::Uuid::now_v7()), &body)
        .await
        .error(404);
    app.post("/api/v1/add-contacts-to-list/nope", &body).await.error(404);
    let (_, other) = app.other_team("globex").await;
    app.post_as(&other, &format!("/api/v1/add-contacts-to-list/{list}"), &body)
        .await
        .error(404);
    app.get_as(&other, &format!("/api/v1/lists/{list}")).await.error(404);
    app.get("/api/v1/lists/nope").await.error(404);
    assert_eq!(app.count("contacts").await, 0);
}

async fn members_page_in_order(app: &TestApp) {
    let list = new_list(app).await;
    let contacts: Vec<_> = (0..5)
        .map(|i| json!({"phone_number": format!("04000000{i:02}")}))
        .collect();
    app.post(
        &format!("/api/v1/add-contacts-to-list/{list}"),
        &json!({"contacts": contacts}),
    )
    .await
    .ok(200);
    let first = app.get(&format!("/api/v1/lists/{list}?limit=2")).await;
    let b = first.ok(200).clone();
    assert_eq!(b["list"]["contact_count"], 5);
    assert_eq!(b["contacts"].as_array().unwrap().len(), 2);
    let cursor = b["meta"]["next_cursor"].as_str().unwrap();
    let rest = app.get(&format!("/api/v1/lists/{list}?limit=10&cursor={cursor}")).await;
    let phones: Vec<_> = rest.ok(200)["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["phone_number"].clone())
        .collect();
    assert_eq!(
        phones,
        [json!("+61400000002"), json!("+61400000003"), json!("+61400000004")]
    );
    assert!(rest.body["meta"]["next_cursor"].is_null());
}

/// Lists filled at the same moment with one new number share one contact (the adds race on
/// PostgreSQL; the losing insert reuses the winner's contact).
async fn concurrent_adds_of_a_new_number_share_one_contact(app: &TestApp) {
    let lists = [new_list(app).await, new_list(app).await, new_list(app).await];
    let body = json!({"contact": {"phone_number": "0412345002"}});
    let requests = lists
        .iter()
        .cycle()
        .take(9)
        .map(|list| (format!("/api/v1/add-contacts-to-list/{list}"), body.clone()))
        .collect();
    assert_eq!(common::post_all_at_once(app, requests).await, vec![200; 9]);
    assert_eq!(app.count("contacts").await, 1);
    assert_eq!(app.count("list_members").await, 3);
}

on_both_backends!(
    concurrent_adds_of_a_new_number_share_one_contact,
    create_list_validates_the_name,
    batch_reports_each_item,
    singular_alias_adds_one,
    malformed_batches_are_refused_whole,
    unknown_and_foreign_lists_are_404,
    members_page_in_order,
);
