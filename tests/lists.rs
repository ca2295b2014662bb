//! Lists: create, add contacts (per-item outcomes), read with members, import from CSV.

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

async fn import_csv(app: &TestApp, list_id: &str, content_type: &str, csv: String) -> common::TestResponse {
    app.post_csv(&format!("/api/v1/lists/{list_id}/import"), content_type, csv)
        .await
}

async fn members_import_from_csv(app: &TestApp) {
    let list_id = new_list(app).await;
    // A contact the team has already: reused as it is.
    app.post(
        "/api/v1/create-contact",
        &json!({"phone_number": "0429069972", "first_name": "Old"}),
    )
    .await
    .ok(201);
    let mut csv = String::from("phone_number,first_name,last_name,email,timezone,metadata.source,notes\n");
    csv.push_str("0429 069 971,Ava,Smith,ava@example.com,Australia/Perth,open home,call after 5\n");
    csv.push_str("+61429069972,New,Name,,,,\n");
    csv.push_str("not a number,Bob,,,,,\n");
    csv.push_str("0429069973,Cy,,not-an-email,,,\n");
    csv.push_str("0429069971,Ava,Again,,,,\n");
    // Enough rows to cross several batches of 1000.
    for i in 0..2500 {
        csv.push_str(&format!("+6141{i:07},Bulk {i},,,,,\n"));
    }
    let r = import_csv(app, &list_id, "text/csv", csv.clone()).await;
    let b = r.ok(200).clone();
    assert_eq!(
        (&b["created"], &b["reused"], &b["already_in_list"], &b["invalid_count"]),
        (&json!(2501), &json!(1), &json!(1), &json!(2)),
        "{b:#}"
    );
    let invalid: Vec<(u64, String)> = b["invalid"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["row"].as_u64().unwrap(), e["reason"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(invalid[0].0, 4, "{invalid:?}");
    assert!(invalid[0].1.contains("phone_number"), "{invalid:?}");
    assert_eq!(invalid[1].0, 5);
    assert!(invalid[1].1.contains("email"), "{invalid:?}");
    assert_eq!(b["ignored_columns"], json!(["notes"]));
    // The row's fields and metadata are the contact's; a reused contact keeps its own.
    let ava = app.get("/api/v1/contacts?phone_number=0429069971").await.ok(200)["contacts"][0].clone();
    assert_eq!(
        (&ava["first_name"], &ava["last_name"]),
        (&json!("Ava"), &json!("Smith"))
    );
    assert_eq!(ava["timezone"], "Australia/Perth");
    assert_eq!(ava["metadata"]["source"], "open home");
    let old = app.get("/api/v1/contacts?phone_number=0429069972").await.ok(200)["contacts"][0].clone();
    assert_eq!(old["first_name"], "Old");
    let list = app.get(&format!("/api/v1/lists/{list_id}")).await.ok(200)["list"].clone();
    assert_eq!(list["contact_count"], 2502);
    // The same file again changes nothing.
    let again = import_csv(app, &list_id, "text/csv; charset=utf-8", csv).await;
    let b = again.ok(200);
    assert_eq!(
        (&b["created"], &b["reused"], &b["already_in_list"], &b["invalid_count"]),
        (&json!(0), &json!(0), &json!(2503), &json!(2)),
        "{b:#}"
    );
    assert_eq!(app.count("contacts").await, 2502);
}

async fn list_imports_refuse_what_they_cannot_read(app: &TestApp) {
    let list_id = new_list(app).await;
    let csv = || "phone_number\n0429069971\n".to_owned();
    assert_eq!(import_csv(app, &list_id, "application/json", csv()).await.status, 415);
    let r = import_csv(app, &list_id, "text/csv", "name,number\nAnn,0429069971\n".into()).await;
    r.error(400);
    assert!(
        r.body["message"].as_str().unwrap().contains("phone_number"),
        "{}",
        r.body
    );
    import_csv(app, &list_id, "text/csv", String::new()).await.error(400);
    let unknown = uuid::Uuid::now_v7().to_string();
    import_csv(app, &unknown, "text/csv", csv()).await.error(404);
    import_csv(app, "not-an-id", "text/csv", csv()).await.error(404);
    let (_, other) = app.other_team("others").await;
    let theirs = app
        .post_as(&other, "/api/v1/create-list", &json!({"name": "Theirs"}))
        .await;
    let theirs = theirs.ok(201)["list_id"].as_str().unwrap().to_owned();
    import_csv(app, &theirs, "text/csv", csv()).await.error(404);
    // Said to be over the limit: refused before reading.
    let req = axum::http::Request::builder()
        .method("POST")
        .uri(format!("/api/v1/lists/{list_id}/import"))
        .header("authorization", format!("Bearer {}", app.key))
        .header("content-type", "text/csv")
        .header("content-length", (64u64 * 1024 * 1024 + 1).to_string())
        .body(axum::body::Body::from(csv()))
        .unwrap();
    assert_eq!(app.send(req).await.error(413), "the file is larger than 67108864 bytes");
    assert_eq!(app.count("contacts").await, 0);
    assert_eq!(app.count("list_members").await, 0);
}

on_both_backends!(
    members_import_from_csv,
    list_imports_refuse_what_they_cannot_read,
    concurrent_adds_of_a_new_number_share_one_contact,
    create_list_validates_the_name,
    batch_reports_each_item,
    singular_alias_adds_one,
    malformed_batches_are_refused_whole,
    unknown_and_foreign_lists_are_404,
    members_page_in_order,
);
