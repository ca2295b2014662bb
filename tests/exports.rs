//! CSV exports of contacts and calls: the listings' filters, every row however many pages, the
//! columns a spreadsheet needs, and nothing of another team's.

mod common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use common::{TestApp, CALLER_ID};
use serde_json::json;
use voxd::clock::ManualClock;

/// The download's rows as maps of column → cell, after checking it is a CSV attachment.
async fn download(app: &TestApp, path: &str) -> (Vec<String>, Vec<std::collections::HashMap<String, String>>) {
    let r = app.get(path).await;
    assert_eq!(r.status.as_u16(), 200, "{path}: {}", String::from_utf8_lossy(&r.raw));
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(r.header("content-disposition").unwrap().starts_with("attachment"));
    let mut reader = csv::Reader::from_reader(&r.raw[..]);
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = reader
        .records()
        .map(|rec| {
            let rec = rec.unwrap();
            assert_eq!(rec.len(), header.len(), "every row has every column");
            header.iter().cloned().zip(rec.iter().map(str::to_owned)).collect()
        })
        .collect();
    (header, rows)
}

async fn contacts_export_every_page_with_the_listings_filters(app: &TestApp) {
    app.post(
        "/api/v1/create-contact",
        &json!({"phone_number": "0429069971", "first_name": "Ava", "email": "ava@example.com",
                "metadata": {"source": "open home"}}),
    )
    .await
    .ok(201);
    // A name a spreadsheet would run as a formula.
    app.post(
        "/api/v1/create-contact",
        &json!({"phone_number": "0429069972", "first_name": "=HYPERLINK(\"http://x\")"}),
    )
    .await
    .ok(201);
    // More than one page of 500.
    let list = app.post("/api/v1/create-list", &json!({"name": "Bulk"})).await;
    let list_id = list.ok(201)["list_id"].as_str().unwrap().to_owned();
    let mut csv = String::from("phone_number,first_name\n");
    for i in 0..1100 {
        csv.push_str(&format!("+6141{i:07},Bulk {i}\n"));
    }
    assert_eq!(
        app.post_csv(&format!("/api/v1/lists/{list_id}/import"), "text/csv", csv)
            .await
            .ok(200)["created"],
        1100
    );
    // Another team's contact is not ours to export.
    let (_, other) = app.other_team("others").await;
    app.post_as(
        &other,
        "/api/v1/create-contact",
        &json!({"phone_number": "0429069979", "first_name": "Theirs"}),
    )
    .await
    .ok(201);

    let (header, rows) = download(app, "/api/v1/contacts/export.csv").await;
    assert_eq!(header[..3], ["id", "phone_number", "first_name"]);
    assert_eq!(rows.len(), 1102);
    let ids: std::collections::HashSet<&String> = rows.iter().map(|r| &r["id"]).collect();
    assert_eq!(ids.len(), 1102, "no row twice across pages");
    assert_eq!(rows[0]["phone_number"], "+61429069971");
    assert_eq!(rows[0]["email"], "ava@example.com");
    assert_eq!(rows[0]["metadata"], r#"{"source":"open home"}"#);
    assert_eq!(rows[1]["first_name"], "'=HYPERLINK(\"http://x\")");
    assert!(rows.iter().all(|r| r["first_name"] != "Theirs"));
    // The listing's filters and order.
    let (_, one) = download(app, "/api/v1/contacts/export.csv?phone_number=0429%20069%20971").await;
    assert_eq!(one.len(), 1);
    let (_, newest) = download(app, "/api/v1/contacts/export.csv?order=desc").await;
    assert_eq!(newest[0]["first_name"], "Bulk 1099");
    let after = &rows[0]["id"];
    let (_, rest) = download(app, &format!("/api/v1/contacts/export.csv?cursor={after}")).await;
    assert_eq!(rest.len(), 1101);
    // Bad filters are 400s, as on the listing.
    for q in ["order=sideways", "cursor=nope", "phone_number=hello"] {
        let r = app.get(&format!("/api/v1/contacts/export.csv?{q}")).await;
        assert_eq!(r.status.as_u16(), 400, "{q}: {}", r.body);
    }
    let r = app
        .raw(axum::http::Method::GET, "/api/v1/contacts/export.csv", None, "")
        .await;
    assert_eq!(r.status.as_u16(), 401);
}

async fn calls_export_with_results_as_columns(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    for phone in ["0429069971", "0429069976"] {
        let body = json!({"from_number": CALLER_ID, "script_id": script_id,
                          "contact": {"phone_number": phone, "first_name": "John"}});
        app.post("/api/v1/create-phone-call", &body).await.ok(201);
    }
    let clock = Arc::new(ManualClock::new(Utc::now() + Duration::seconds(1)));
    common::sim_dispatcher(app, clock).run_once().await.unwrap();

    // By script: one column per data field and objective.
    let (header, rows) = download(app, &format!("/api/v1/calls/export.csv?script_id={script_id}")).await;
    for column in [
        "status",
        "summary",
        "data.budget",
        "data.liked_property",
        "objective.feedback",
        "objective.next_step",
    ] {
        assert!(header.iter().any(|h| h == column), "{column} in {header:?}");
    }
    assert_eq!(rows.len(), 2);
    let answered = rows.iter().find(|r| r["to_number"] == "+61429069971").unwrap();
    assert_eq!(answered["status"], "completed");
    assert_eq!(answered["data.budget"], "1200000");
    assert_eq!(answered["objective.feedback"], "true");
    assert!(answered["summary"].starts_with("John"), "{}", answered["summary"]);
    let unanswered = rows.iter().find(|r| r["to_number"] == "+61429069976").unwrap();
    assert_eq!(unanswered["status"], "rang-out");
    assert_eq!(unanswered["summary"], "");
    // Without a script: data and objectives as JSON; the listing's filters apply.
    let (header, rows) = download(app, "/api/v1/calls/export.csv?status=completed").await;
    assert!(
        header.ends_with(&["data".to_owned(), "objectives".to_owned()]),
        "{header:?}"
    );
    assert_eq!(rows.len(), 1);
    let data: serde_json::Value = serde_json::from_str(&rows[0]["data"]).unwrap();
    assert_eq!(data["budget"], 1200000);
    let r = app.get("/api/v1/calls/export.csv?status=weird").await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
    // Another team exports none of ours.
    let (_, other) = app.other_team("others").await;
    let r = app.get_as(&other, "/api/v1/calls/export.csv").await;
    assert_eq!(String::from_utf8_lossy(&r.raw).lines().count(), 1, "only the header");
}

on_both_backends!(
    contacts_export_every_page_with_the_listings_filters,
    calls_export_with_results_as_columns,
);
