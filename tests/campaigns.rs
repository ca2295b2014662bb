//! Campaigns through the front door, fed by the campaign worker and dispatched by the real
//! dispatcher on the `sim` carrier (whose outcome follows a number's last digit: 0-4 answered,
//! 5 voicemail, 6 rang-out, 7 unavailable, 8 rejected, 9 failed).

mod common;

use std::sync::Arc;

use chrono::{Duration, Utc};
use common::{TestApp, CALLER_ID};
use serde_json::{json, Value};
use voxd::clock::{Clock, ManualClock};

/// A list of `numbers` (national form) through the CSV import; its id.
async fn list_of(app: &TestApp, numbers: impl Iterator<Item = String>) -> String {
    let list = app.post("/api/v1/create-list", &json!({"name": "Campaign list"})).await;
    let list_id = list.ok(201)["list_id"].as_str().unwrap().to_owned();
    let mut csv = String::from("phone_number,first_name\n");
    for (i, n) in numbers.enumerate() {
        csv.push_str(&format!("{n},Member{i}\n"));
    }
    let r = app
        .post_csv(&format!("/api/v1/lists/{list_id}/import"), "text/csv", csv)
        .await;
    assert_eq!(r.ok(200)["invalid_count"], 0, "{}", r.body);
    list_id
}

fn mobile(i: usize) -> String {
    format!("0410{i:06}")
}

async fn campaign(app: &TestApp, body: &Value) -> Value {
    app.post("/api/v1/campaigns", body).await.ok(201)["campaign"].clone()
}

async fn get(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/campaigns/{id}")).await.ok(200)["campaign"].clone()
}

/// Feeds and dispatches until the campaign leaves `running` (bounded); the most calls it had
/// open at once.
async fn run(app: &TestApp, id: &str, passes: usize) -> i64 {
    let clock = Arc::new(ManualClock::new(Utc::now() + Duration::seconds(1)));
    let dispatcher = common::sim_dispatcher(app, clock.clone());
    let campaign_id: uuid::Uuid = id.parse().unwrap();
    let mut most = 0;
    for _ in 0..passes {
        voxd::campaigns::feed(&app.db, clock.now()).await.unwrap();
        most = most.max(app.db.campaign_active_calls(campaign_id).await.unwrap());
        dispatcher.run_once().await.unwrap();
        clock.advance(Duration::seconds(1));
        let status = get(app, id).await["status"].as_str().unwrap().to_owned();
        if status != "running" && status != "scheduled" {
            return most;
        }
    }
    panic!("the campaign did not finish in {passes} passes: {}", get(app, id).await);
}

async fn a_campaign_calls_its_list_to_the_end(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let list_id = list_of(app, (0..1000).map(mobile)).await;
    // 20 members asked not to be called before; 5 more once it has started.
    for i in (0..1000).step_by(50) {
        app.post("/api/v1/dnc", &json!({"phone_number": mobile(i)}))
            .await
            .ok(201);
    }
    let body = json!({"name": "Thousand", "list_id": list_id, "script_id": script_id, "from_number": CALLER_ID,
                      "max_concurrent_calls": 7});
    let preview = app.post("/api/v1/campaigns?dry_run=true", &body).await;
    assert_eq!(
        preview.ok(200)["preview"],
        json!({"members": 1000, "to_call": 980, "do_not_call": 20})
    );
    assert_eq!(app.count("campaigns").await, 0, "a dry run creates nothing");
    let c = campaign(app, &body).await;
    let id = c["id"].as_str().unwrap().to_owned();
    assert_eq!(c["status"], "scheduled");
    for i in [901, 903, 905, 907, 911] {
        app.post("/api/v1/dnc", &json!({"phone_number": mobile(i)}))
            .await
            .ok(201);
    }
    // Another call of the team, and one of another team, are not kept waiting behind it.
    let (other_team, other_key) = app.other_team("others").await;
    let n = voxd::store::numbers::PhoneNumber {
        id: voxd::domain::new_id(),
        team_id: other_team,
        number: "+61291234599".into(),
        inbound_script_id: None,
        trunk_id: None,
        twilio: false,
        created_at: voxd::domain::now(),
    };
    app.db.add_number(&n).await.unwrap();
    let theirs = app
        .post_as(
            &other_key,
            "/api/v1/scripts",
            &common::example_script("buyer-follow-up"),
        )
        .await;
    let their_script = theirs.ok(201)["script_id"].as_str().unwrap().to_owned();
    let most = {
        let clock = Arc::new(ManualClock::new(Utc::now() + Duration::seconds(1)));
        voxd::campaigns::feed(&app.db, clock.now()).await.unwrap();
        let ours = json!({"from_number": CALLER_ID, "script_id": script_id, "contact": {"phone_number": "0429069971"}});
        let ours = app.post("/api/v1/create-phone-call", &ours).await.ok(201)["call_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let theirs = json!({"from_number": "+61291234599", "script_id": their_script, "contact": {"phone_number": "0429069972"}});
        let theirs = app
            .post_as(&other_key, "/api/v1/create-phone-call", &theirs)
            .await
            .ok(201)["call_id"]
            .as_str()
            .unwrap()
            .to_owned();
        common::sim_dispatcher(app, clock).run_once().await.unwrap();
        for (key, call) in [(&app.key, &ours), (&other_key, &theirs)] {
            let c = app.get_as(key, &format!("/api/v1/get-call/{call}")).await.ok(200)["call"].clone();
            assert_eq!(
                c["progress"], "ended",
                "ran in the first pass, beside the campaign: {c}"
            );
        }
        run(app, &id, 400).await
    };
    assert!(most <= 7, "at most 7 calls open at once, saw {most}");
    let done = get(app, &id).await;
    assert_eq!(done["status"], "completed", "{done:#}");
    let counts = &done["counts"];
    assert_eq!(
        (&counts["total"], &counts["pending"], &counts["suppressed"]),
        (&json!(1000), &json!(0), &json!(25)),
        "{counts:#}"
    );
    let ended: i64 = counts["ended"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_i64().unwrap())
        .sum();
    assert_eq!(ended, 975, "{counts:#}");
    assert_eq!(counts["ended"]["failed"], 100, "{counts:#}");
    // Its calls, through the calls listing.
    let mut seen = 0;
    let mut cursor = String::new();
    loop {
        let page = app
            .get(&format!("/api/v1/calls?campaign_id={id}&limit=200{cursor}"))
            .await
            .ok(200)
            .clone();
        seen += page["calls"].as_array().unwrap().len();
        match page["meta"]["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, 975);
    let log = app.get(&format!("/api/v1/campaigns/{id}/log?limit=200")).await.ok(200)["log"].clone();
    let kinds: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"created"));
    assert!(
        kinds.contains(&"running") && kinds.contains(&"members_skipped"),
        "{kinds:?}"
    );
    assert_eq!(kinds.last(), Some(&"completed"));
}

async fn campaigns_refuse_bad_input_and_follow_their_states(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let list_id = list_of(app, (0..6).map(mobile)).await;
    let good = json!({"name": "Six", "list_id": list_id, "script_id": script_id, "from_number": CALLER_ID,
                      "max_concurrent_calls": 2, "scheduled_time": (Utc::now() + Duration::days(1)).to_rfc3339()});
    let with = |k: &str, v: Value| {
        let mut b = good.clone();
        b[k] = v;
        b
    };
    let without = |k: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    for (body, status) in [
        (without("name"), 400),
        (with("name", json!("")), 400),
        (with("name", json!(5)), 400),
        (without("from_number"), 400),
        (with("from_numbers", json!([CALLER_ID])), 400),
        (with("from_number", json!("0299999999")), 400),
        (with("max_concurrent_calls", json!(0)), 400),
        (with("calls_per_minute", json!(601)), 400),
        (with("list_id", json!(uuid::Uuid::now_v7().to_string())), 404),
        (with("list_id", json!("nope")), 400),
        (with("script_id", json!(uuid::Uuid::now_v7().to_string())), 404),
        (with("calling_window", json!({"start": "18:00", "end": "09:00"})), 400),
        (with("surprise", json!(true)), 400),
        (with("redial_of", json!(uuid::Uuid::now_v7().to_string())), 404),
    ] {
        let r = app.post("/api/v1/campaigns", &body).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
        assert_eq!(r.body["success"], false);
    }
    // Another team's list is not ours to call.
    let (_, other) = app.other_team("others").await;
    let theirs = app
        .post_as(&other, "/api/v1/create-list", &json!({"name": "Theirs"}))
        .await;
    let theirs = theirs.ok(201)["list_id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.post("/api/v1/campaigns", &with("list_id", json!(theirs)))
            .await
            .status
            .as_u16(),
        404
    );
    assert_eq!(
        (app.count("campaigns").await, app.count("campaign_members").await),
        (0, 0)
    );

    let c = campaign(app, &good).await;
    let id = c["id"].as_str().unwrap().to_owned();
    let act = |what: &'static str| {
        let path = format!("/api/v1/campaigns/{id}/{what}");
        async move { app.post(&path, &json!({})).await }
    };
    assert_eq!(
        act("resume").await.status.as_u16(),
        409,
        "only a paused campaign resumes"
    );
    assert_eq!(act("pause").await.ok(200)["campaign"]["status"], "paused");
    assert_eq!(get(app, &id).await["status_reason"], "paused through the API");
    // Paused (and not yet due): the worker leaves it alone.
    voxd::campaigns::feed(&app.db, Utc::now() + Duration::days(2))
        .await
        .unwrap();
    assert_eq!(get(app, &id).await["counts"]["pending"], 6);
    assert_eq!(act("resume").await.ok(200)["campaign"]["status"], "running");
    // Due now: two calls at a time.
    voxd::campaigns::feed(&app.db, Utc::now()).await.unwrap();
    let counts = get(app, &id).await["counts"].clone();
    assert_eq!(
        (&counts["pending"], &counts["scheduled"]),
        (&json!(4), &json!(2)),
        "{counts:#}"
    );
    let r = act("cancel").await;
    assert_eq!(r.ok(200)["campaign"]["status"], "cancelled");
    let counts = get(app, &id).await["counts"].clone();
    assert_eq!(
        (&counts["pending"], &counts["skipped"], &counts["ended"]["cancelled"]),
        (&json!(0), &json!(4), &json!(2)),
        "{counts:#}"
    );
    assert_eq!(act("pause").await.status.as_u16(), 409);
    let listed = app.get("/api/v1/campaigns").await.ok(200)["campaigns"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    // Another team sees none of it.
    for path in [format!("/api/v1/campaigns/{id}"), format!("/api/v1/campaigns/{id}/log")] {
        assert_eq!(app.get_as(&other, &path).await.status.as_u16(), 404);
    }
    assert_eq!(
        app.get_as(&other, "/api/v1/campaigns").await.ok(200)["campaigns"],
        json!([])
    );
}

async fn a_failing_campaign_pauses_itself(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    // Every number ends in 9: every call fails.
    let list_id = list_of(app, (0..30).map(|i| mobile(i * 10 + 9))).await;
    let body = json!({"name": "Broken", "list_id": list_id, "script_id": script_id, "from_number": CALLER_ID,
                      "max_concurrent_calls": 5});
    let id = campaign(app, &body).await["id"].as_str().unwrap().to_owned();
    run(app, &id, 50).await;
    let c = get(app, &id).await;
    assert_eq!(c["status"], "paused", "{c:#}");
    assert!(
        c["status_reason"].as_str().unwrap().contains("circuit breaker"),
        "{c:#}"
    );
    assert!(
        c["counts"]["pending"].as_i64().unwrap() > 0,
        "it stopped before the end: {c:#}"
    );
    let log = app.get(&format!("/api/v1/campaigns/{id}/log")).await.ok(200)["log"].clone();
    assert!(log.to_string().contains("of the last 10 calls failed"), "{log}");
}

async fn a_redial_calls_only_the_unreached(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let list_id = list_of(app, (0..10).map(mobile)).await;
    let body = json!({"name": "First", "list_id": list_id, "script_id": script_id, "from_number": CALLER_ID});
    let first = campaign(app, &body).await["id"].as_str().unwrap().to_owned();
    run(app, &first, 30).await;
    assert_eq!(get(app, &first).await["status"], "completed");
    // Unreached: voicemail (5), rang out (6), unavailable (7).
    let redial = json!({"name": "Again", "list_id": list_id, "script_id": script_id, "from_number": CALLER_ID,
                        "redial_of": first});
    let r = app.post("/api/v1/campaigns?dry_run=true", &redial).await;
    assert_eq!(r.ok(200)["preview"]["to_call"], 3);
    let again = campaign(app, &redial).await["id"].as_str().unwrap().to_owned();
    run(app, &again, 30).await;
    let calls = app.get(&format!("/api/v1/calls?campaign_id={again}")).await.ok(200)["calls"].clone();
    let mut called: Vec<String> = calls
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["to_number"].as_str().unwrap().to_owned())
        .collect();
    called.sort();
    assert_eq!(called, ["+61410000005", "+61410000006", "+61410000007"]);
    // A campaign still running cannot be redialled.
    let third = campaign(
        app,
        &json!({"name": "Later", "list_id": list_id, "script_id": script_id, "from_number": CALLER_ID,
                                      "scheduled_time": (Utc::now() + Duration::days(1)).to_rfc3339()}),
    )
    .await;
    let r = app
        .post(
            "/api/v1/campaigns",
            &json!({"name": "No", "list_id": list_id, "script_id": script_id,
                                                  "from_number": CALLER_ID, "redial_of": third["id"]}),
        )
        .await;
    assert_eq!(r.status.as_u16(), 400, "{}", r.body);
}

/// With `join_new_members`, contacts added to the list later are called too; such a campaign
/// runs until it is cancelled.
async fn new_members_join_when_the_campaign_says_so(app: &TestApp) {
    let script_id = common::caller_id_and_script(app).await;
    let list_id = list_of(app, (0..2).map(mobile)).await;
    let body = json!({"name": "Open", "list_id": list_id, "script_id": script_id, "from_number": CALLER_ID,
                      "join_new_members": true});
    let id = campaign(app, &body).await["id"].as_str().unwrap().to_owned();
    let clock = Arc::new(ManualClock::new(Utc::now() + Duration::seconds(1)));
    let dispatcher = common::sim_dispatcher(app, clock.clone());
    for _ in 0..3 {
        voxd::campaigns::feed(&app.db, clock.now()).await.unwrap();
        dispatcher.run_once().await.unwrap();
    }
    let c = get(app, &id).await;
    assert_eq!(
        (&c["status"], &c["counts"]["total"]),
        (&json!("running"), &json!(2)),
        "{c:#}"
    );
    app.post(
        &format!("/api/v1/add-contacts-to-list/{list_id}"),
        &json!({"contact": {"phone_number": mobile(2)}}),
    )
    .await
    .ok(200);
    for _ in 0..2 {
        voxd::campaigns::feed(&app.db, clock.now()).await.unwrap();
        dispatcher.run_once().await.unwrap();
    }
    let c = get(app, &id).await;
    assert_eq!(
        (&c["counts"]["total"], &c["counts"]["ended"]["completed"]),
        (&json!(3), &json!(3)),
        "{c:#}"
    );
    let log = app.get(&format!("/api/v1/campaigns/{id}/log")).await.ok(200)["log"].to_string();
    assert!(log.contains("1 members added to the list joined"), "{log}");
    let r = app.post(&format!("/api/v1/campaigns/{id}/cancel"), &json!({})).await;
    assert_eq!(r.ok(200)["campaign"]["status"], "cancelled");
}

on_both_backends!(
    new_members_join_when_the_campaign_says_so,
    a_campaign_calls_its_list_to_the_end,
    campaigns_refuse_bad_input_and_follow_their_states,
    a_failing_campaign_pauses_itself,
    a_redial_calls_only_the_unreached,
);
