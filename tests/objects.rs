//! Object types, upserts and links.

mod common;

use common::TestApp;
use serde_json::{json, Value};

fn contract_example() -> Value {
    json!({
        "type_name": "property",
        "display_name": "Property",
        "description": "Property records imported from a CRM",
        "validation_mode": "strict",
        "unique_by_contact": false,
        "schema": {"address": "string", "bedrooms": "number"}
    })
}

async fn contact(app: &TestApp, phone: &str) -> String {
    let r = app
        .post("/api/v1/create-contact", &json!({"phone_number": phone}))
        .await;
    r.ok(201)["contact_id"].as_str().unwrap().to_owned()
}

async fn contract_example_creates_a_type_once(app: &TestApp) {
    let r = app.post("/api/v1/object-types", &contract_example()).await;
    let b = r.ok(201);
    assert_eq!(b["object_type"]["type_name"], "property");
    assert_eq!(
        b["object_type"]["schema"],
        json!({"address": "string", "bedrooms": "number"})
    );
    assert_eq!(b["object_type"]["schema_form"], "shorthand");
    assert_eq!(b["object_type"]["validation_mode"], "strict");
    assert_eq!(b["object_type_id"], b["object_type"]["id"]);
    let dup = app.post("/api/v1/create-object-type", &contract_example()).await;
    assert!(dup.error(409).contains("property"));
    let got = app.get("/api/v1/object-types/by-name/property").await;
    assert_eq!(got.ok(200)["object_type"]["display_name"], "Property");
    app.get("/api/v1/object-types/by-name/unknown").await.error(404);
    app.get("/api/v1/object-types/by-name/Bad-Name").await.error(400);
    let (_, other) = app.other_team("globex").await;
    app.get_as(&other, "/api/v1/object-types/by-name/property")
        .await
        .error(404);
    // The other team may use the same name.
    app.post_as(&other, "/api/v1/object-types", &contract_example())
        .await
        .ok(201);
}

async fn alias_and_full_json_schema(app: &TestApp) {
    let body = json!({"type_name": "deal", "display_name": "Deal",
        "schema": {"type": "object", "properties": {"amount": {"type": "integer"}}, "required": ["amount"]}});
    let r = app.post("/api/v1/create-object-type", &body).await;
    assert_eq!(r.ok(201)["object_type"]["schema_form"], "json_schema");
}

async fn bad_types_are_refused(app: &TestApp) {
    let mut cases = Vec::new();
    for (field, value) in [
        ("type_name", json!("Property")),
        ("type_name", json!("1abc")),
        ("type_name", json!("x".repeat(65))),
        ("type_name", json!(7)),
        ("display_name", json!("")),
        ("description", json!("d".repeat(1001))),
        ("validation_mode", json!("loose")),
        ("unique_by_contact", json!("yes")),
        ("schema", json!("string")),
        ("schema", json!({"bedrooms": "numbr"})),
        ("schema", json!({"bedrooms": 3})),
        ("schema", json!({"type": "array", "properties": {}})),
    ] {
        let mut body = contract_example();
        body[field] = value;
        cases.push((field, body));
    }
    for field in ["type_name", "display_name", "schema"] {
        let mut body = contract_example();
        body.as_object_mut().unwrap().remove(field);
        cases.push((field, body));
    }
    for (field, body) in cases {
        let message = app.post("/api/v1/object-types", &body).await.error(400);
        assert!(message.contains(field), "{field}: {message}");
    }
    assert_eq!(app.count("object_types").await, 0);
}

async fn upsert_creates_then_updates_by_default_keys(app: &TestApp) {
    app.post("/api/v1/object-types", &contract_example()).await.ok(201);
    let data = json!({"external_ids": {"rex": {"property_id": "R-100"}}, "address": "1 Main St", "bedrooms": 3});
    let first = app
        .post("/api/v1/upsert-object", &json!({"type_name": "property", "data": data}))
        .await;
    let b = first.ok(201).clone();
    assert_eq!(b["created"], true);
    assert_eq!(b["object"]["upsert_key"], "$.external_ids.rex.property_id");
    assert_eq!(b["object"]["upsert_value"], "R-100");
    let data = json!({"external_ids": {"rex": {"property_id": "R-100"}}, "address": "1 Main St", "bedrooms": 4});
    let second = app
        .post("/api/v1/upsert-object", &json!({"type_name": "property", "data": data}))
        .await;
    assert_eq!(second.ok(200)["object_id"], b["object_id"]);
    assert_eq!(second.body["object"]["data"]["bedrooms"], 4);
    // `$.id` is the second default; an explicit key works too.
    let by_id = json!({"object_type_id": b["object"]["object_type_id"], "data": {"id": 42, "address": "2 Side St"}});
    app.post("/api/v1/upsert-object", &by_id).await.ok(201);
    app.post("/api/v1/upsert-object", &by_id).await.ok(200);
    let explicit = json!({"type_name": "property", "upsert_key": "$.crm.ref", "data": {"crm": {"ref": "X1"}}});
    app.post("/api/v1/upsert-object", &explicit).await.ok(201);
    app.post("/api/v1/upsert-object", &explicit).await.ok(200);
    // No key at all: always a new object.
    let keyless = json!({"type_name": "property", "data": {"address": "3 Any St"}});
    app.post("/api/v1/upsert-object", &keyless).await.ok(201);
    app.post("/api/v1/upsert-object", &keyless).await.ok(201);
    assert_eq!(app.count("objects").await, 5);

    let listed = app.get("/api/v1/objects?type_name=property&limit=2").await;
    let page = listed.ok(200).clone();
    assert_eq!(page["objects"].as_array().unwrap().len(), 2);
    let cursor = page["meta"]["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("/api/v1/objects?type_name=property&limit=10&cursor={cursor}"))
        .await;
    assert_eq!(rest.ok(200)["objects"].as_array().unwrap().len(), 3);
    app.get("/api/v1/objects?type_name=nothing").await.error(404);
}

async fn validation_modes(app: &TestApp) {
    app.post("/api/v1/object-types", &contract_example()).await.ok(201);
    let bad = json!({"type_name": "property", "data": {"id": "p1", "address": 12, "bedrooms": "three"}});
    let strict = app.post("/api/v1/upsert-object", &bad).await;
    strict.error(400);
    assert_eq!(strict.body["errors"].as_array().unwrap().len(), 2);
    assert_eq!(app.count("objects").await, 0);

    let mut warn = contract_example();
    warn["type_name"] = json!("listing");
    warn["validation_mode"] = json!("warn");
    app.post("/api/v1/object-types", &warn).await.ok(201);
    let r = app
        .post(
            "/api/v1/upsert-object",
            &json!({"type_name": "listing", "data": {"id": "l1", "bedrooms": "three"}}),
        )
        .await;
    assert_eq!(r.ok(201)["violations"][0]["path"], "/bedrooms");

    let mut off = contract_example();
    off["type_name"] = json!("note");
    off["validation_mode"] = json!("off");
    app.post("/api/v1/object-types", &off).await.ok(201);
    let r = app
        .post(
            "/api/v1/upsert-object",
            &json!({"type_name": "note", "data": {"bedrooms": "many"}}),
        )
        .await;
    assert!(r.ok(201).get("violations").is_none());
}

async fn upsert_bad_input(app: &TestApp) {
    app.post("/api/v1/object-types", &contract_example()).await.ok(201);
    let cid = contact(app, "0429069971").await;
    let cases = [
        (json!({"data": {"id": 1}}), 400),
        (
            json!({"type_name": "property", "object_type_id": "x", "data": {"id": 1}}),
            400,
        ),
        (json!({"type_name": "property"}), 400),
        (json!({"type_name": "property", "data": [1]}), 400),
        (
            json!({"type_name": "property", "data": {"id": 1}, "upsert_key": "$.missing"}),
            400,
        ),
        (
            json!({"type_name": "property", "data": {"id": 1}, "upsert_key": "no path"}),
            400,
        ),
        (json!({"type_name": "property", "data": {"id": {"nested": true}}}), 400),
        (
            json!({"type_name": "property", "data": {"id": 1}, "contact_id": 5}),
            400,
        ),
        (json!({"type_name": "property", "data": {"id": 1}, "bogus": 5}), 400),
        (json!({"type_name": "ghost", "data": {"id": 1}}), 404),
        (json!({"object_type_id": uuid::Uuid::now_v7(), "data": {"id": 1}}), 404),
        (
            json!({"type_name": "property", "data": {"id": 1}, "contact_id": uuid::Uuid::now_v7()}),
            404,
        ),
        (
            json!({"type_name": "property", "data": {"id": 1}, "contact_id": "nope"}),
            404,
        ),
        (
            json!({"type_name": "property", "data": {"id": 1, "blob": "x".repeat(300 * 1024)}}),
            400,
        ),
    ];
    for (body, status) in cases {
        app.post("/api/v1/upsert-object", &body).await.error(status);
    }
    // Another team's type and contact are unknown here.
    let (_, other) = app.other_team("globex").await;
    app.post_as(
        &other,
        "/api/v1/upsert-object",
        &json!({"type_name": "property", "data": {"id": 1}}),
    )
    .await
    .error(404);
    let mut ex = contract_example();
    ex["validation_mode"] = json!("off");
    app.post_as(&other, "/api/v1/object-types", &ex).await.ok(201);
    let foreign = json!({"type_name": "property", "data": {"id": 1}, "contact_id": cid});
    app.post_as(&other, "/api/v1/upsert-object", &foreign).await.error(404);
    assert_eq!(app.count("objects").await, 0);
}

async fn links_are_idempotent_and_scoped(app: &TestApp) {
    app.post("/api/v1/object-types", &contract_example()).await.ok(201);
    let cid = contact(app, "0429069971").await;
    let up = app
        .post(
            "/api/v1/upsert-object",
            &json!({"type_name": "property", "data": {"id": "p1"}, "contact_id": cid}),
        )
        .await;
    let oid = up.ok(201)["object_id"].as_str().unwrap().to_owned();
    assert_eq!(up.body["object"]["contacts"][0]["contact_id"], cid.as_str());

    let link = app
        .post(
            &format!("/api/v1/link-contact-to-object/{oid}"),
            &json!({"contact_id": cid, "metadata": {"role": "owner"}}),
        )
        .await;
    assert_eq!(link.ok(200)["created"], false);
    assert_eq!(link.body["link"]["metadata"]["role"], "owner");
    let other_contact = contact(app, "0429069972").await;
    let alias = app
        .post(
            &format!("/api/v1/link-object-to-contact/{oid}"),
            &json!({"contact_id": other_contact}),
        )
        .await;
    assert_eq!(alias.ok(200)["created"], true);
    app.post(
        &format!("/api/v1/link-object-to-contact/{oid}"),
        &json!({"contact_id": other_contact}),
    )
    .await
    .ok(200);
    assert_eq!(app.count("object_contacts").await, 2);
    let got = app.get(&format!("/api/v1/objects/{oid}")).await;
    assert_eq!(got.ok(200)["object"]["contacts"].as_array().unwrap().len(), 2);

    for (path, body, status) in [
        (format!("/api/v1/link-contact-to-object/{oid}"), json!({}), 400),
        (
            format!("/api/v1/link-contact-to-object/{oid}"),
            json!({"contact_id": cid, "metadata": "x"}),
            400,
        ),
        (
            format!("/api/v1/link-contact-to-object/{oid}"),
            json!({"contact_id": uuid::Uuid::now_v7()}),
            404,
        ),
        (
            "/api/v1/link-contact-to-object/nope".to_owned(),
            json!({"contact_id": cid}),
            404,
        ),
        (
            format!("/api/v1/link-contact-to-object/{}", uuid::Uuid::now_v7()),
            json!({"contact_id": cid}),
            404,
        ),
    ] {
        app.post(&path, &body).await.error(status);
    }
    let (_, other) = app.other_team("globex").await;
    app.post_as(
        &other,
        &format!("/api/v1/link-contact-to-object/{oid}"),
        &json!({"contact_id": cid}),
    )
    .await
    .error(404);
    app.get_as(&other, &format!("/api/v1/objects/{oid}")).await.error(404);
    app.get("/api/v1/objects/nope").await.error(404);
    assert_eq!(app.count("object_contacts").await, 2);
}

async fn unique_by_contact_is_enforced(app: &TestApp) {
    let mut t = contract_example();
    t["type_name"] = json!("home");
    t["unique_by_contact"] = json!(true);
    app.post("/api/v1/object-types", &t).await.ok(201);
    let cid = contact(app, "0429069971").await;
    let first = app
        .post(
            "/api/v1/upsert-object",
            &json!({"type_name": "home", "data": {"address": "1 A St"}, "contact_id": cid}),
        )
        .await;
    let oid = first.ok(201)["object_id"].clone();
    // Without a key, the contact's own object is updated rather than a second one created.
    let second = app
        .post(
            "/api/v1/upsert-object",
            &json!({"type_name": "home", "data": {"address": "2 B St"}, "contact_id": cid}),
        )
        .await;
    assert_eq!(second.ok(200)["object_id"], oid);
    // Another object of the type cannot be linked to the same contact.
    let other = app
        .post(
            "/api/v1/upsert-object",
            &json!({"type_name": "home", "data": {"id": "h2"}}),
        )
        .await;
    let other_id = other.ok(201)["object_id"].as_str().unwrap().to_owned();
    let refused = app
        .post(
            &format!("/api/v1/link-contact-to-object/{other_id}"),
            &json!({"contact_id": cid}),
        )
        .await;
    refused.error(409);
    assert_eq!(refused.body["object_id"], oid);
    let refused = app
        .post(
            "/api/v1/upsert-object",
            &json!({"type_name": "home", "data": {"id": "h2"}, "contact_id": cid}),
        )
        .await;
    refused.error(409);
    assert_eq!(app.count("object_contacts").await, 1);
    assert_eq!(app.count("objects").await, 2);
}

/// Upserts of one new key at the same moment make one object (they race on PostgreSQL; the losing
/// insert updates the winner's object).
async fn concurrent_upserts_of_a_new_key_make_one_object(app: &TestApp) {
    app.post("/api/v1/object-types", &contract_example()).await.ok(201);
    let requests = (0..10)
        .map(|i| {
            let body = json!({"type_name": "property", "data": {"id": "p-77", "address": format!("{i} Race St"), "bedrooms": i}});
            ("/api/v1/upsert-object".to_owned(), body)
        })
        .collect();
    let statuses = common::post_all_at_once(app, requests).await;
    assert!(statuses.iter().all(|s| *s == 200 || *s == 201), "{statuses:?}");
    let created = statuses.iter().filter(|s| **s == 201).count();
    assert_eq!(created, 1);
    assert_eq!(app.count("objects").await, 1);
}

on_both_backends!(
    concurrent_upserts_of_a_new_key_make_one_object,
    contract_example_creates_a_type_once,
    alias_and_full_json_schema,
    bad_types_are_refused,
    upsert_creates_then_updates_by_default_keys,
    validation_modes,
    upsert_bad_input,
    links_are_idempotent_and_scoped,
    unique_by_contact_is_enforced,
);
