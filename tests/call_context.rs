//! Each call runs with its team's region and the callee's time zone (they used to be AU and UTC
//! for every call on a server): what "tomorrow" means, how a local number reads, which day is the
//! next business day. Through the front door: create the call over HTTP, dispatch it with the
//! `sim` carrier at a chosen moment, read the result.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc, Weekday};
use common::TestApp;
use serde_json::{json, Value};
use voxd::{
    clock::ManualClock,
    domain::{api_key, new_id, now},
    store::{keys::ApiKey, numbers::PhoneNumber, teams::Team},
};

/// Asks when suits, after working out the next business day and reading a number the callee's
/// way; the date said is collected.
fn script() -> Value {
    json!({
        "name": "Context", "type": "outbound", "main_flow_id": "main",
        "data_collection": [{"name": "when", "type": "date", "from_step": "ask"}],
        "flows": [{"id": "main", "name": "Main", "steps": [
            {"id": "nbd", "type": "function", "function": "next_business_day",
             "output": {"date": "custom.nbd"},
             "conditions": [{"outcome": "success", "next": "phone"}, {"otherwise": true, "next": "phone"}]},
            {"id": "phone", "type": "function", "function": "normalize_phone",
             "input": {"phone": "{{custom.callback}}"}, "output": {"phone": "custom.e164"},
             "conditions": [{"outcome": "success", "next": "ask"}, {"otherwise": true, "next": "ask"}]},
            {"id": "ask", "type": "voice",
             "script": "Say: Next business day {{custom.nbd}}, number {{custom.e164}}. When suits you?",
             "conditions": [{"otherwise": true, "end_flow": "success"}]}
        ]}]
    })
}

/// A team of its own region and zone, with a key and a caller id.
async fn team(app: &TestApp, region: &str, timezone: &str, caller_id: &str) -> String {
    let team = Team {
        id: new_id(),
        name: format!("t-{region}"),
        region: region.into(),
        timezone: timezone.into(),
        requests_per_second: None,
        max_concurrent_calls: None,
        created_at: now(),
        recordings: true,
    };
    app.db.create_team(&team).await.unwrap();
    let generated = api_key::generate();
    let key = ApiKey {
        id: new_id(),
        team_id: team.id,
        name: None,
        prefix: generated.prefix.clone(),
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
    };
    app.db.create_key(&key, &generated.hash).await.unwrap();
    let number = PhoneNumber {
        id: new_id(),
        team_id: team.id,
        number: caller_id.into(),
        inbound_script_id: None,
        trunk_id: None,
        twilio: false,
        created_at: now(),
    };
    app.db.add_number(&number).await.unwrap();
    generated.secret
}

/// Places one call for `key`'s team to `to`, dispatched at `at`; the call's result.
async fn call_at(app: &TestApp, key: &str, from: &str, to: &str, callback: &str, at: DateTime<Utc>) -> Value {
    let script_id = app.post_as(key, "/api/v1/scripts", &script()).await.ok(201)["script_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({"from_number": from, "script_id": script_id, "contact": {"phone_number": to},
        "variables": {"callback": callback},
        "metadata": {"sim_persona": {"lines": ["tomorrow"]}}});
    let call_id = app.post_as(key, "/api/v1/create-phone-call", &body).await.ok(201)["call_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let clock = Arc::new(ManualClock::new(at));
    assert_eq!(common::sim_dispatcher(app, clock).run_once().await.unwrap(), 1);
    let r = app.get_as(key, &format!("/api/v1/get-call-result/{call_id}")).await;
    let result = r.ok(200)["call"].clone();
    assert_eq!(result["status"], "completed", "{result}");
    result
}

fn assistant_said(result: &Value) -> String {
    result["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["role"] == "assistant")
        .map(|t| t["text"].as_str().unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A day after today (so the call is due), at the given UTC hour and minute.
fn tomorrow_utc(hour: u32, minute: u32) -> DateTime<Utc> {
    let d = Utc::now().date_naive() + Duration::days(1);
    Utc.from_utc_datetime(&d.and_hms_opt(hour, minute, 0).unwrap())
}

/// At 23:30 UTC it is already the next morning in Sydney: "tomorrow" is the day after that.
async fn tomorrow_is_the_callees(app: &TestApp) {
    let key = team(app, "AU", "Australia/Sydney", "+61291234567").await;
    let at = tomorrow_utc(23, 30);
    let result = call_at(app, &key, "+61291234567", "0412345671", "0412345678", at).await;
    let sydney_today = at.with_timezone(&chrono_tz::Australia::Sydney).date_naive();
    assert_eq!(sydney_today, at.date_naive() + Duration::days(1));
    let expected = (sydney_today + Duration::days(1)).to_string();
    assert_eq!(
        result["structured_data"]["when"],
        expected.as_str(),
        "{}",
        result["structured_data"]
    );
}

/// A US team's callee gives a local number: it reads as a US number.
async fn local_numbers_read_in_the_teams_region(app: &TestApp) {
    let key = team(app, "US", "America/New_York", "+12126647660").await;
    let result = call_at(
        app,
        &key,
        "(212) 664-7660",
        "(212) 664-7661",
        "(212) 664-7662",
        tomorrow_utc(15, 0),
    )
    .await;
    let said = assistant_said(&result);
    assert!(said.contains("number +12126647662"), "{said}");
}

/// The next business day is counted from the callee's today: Sunday evening in UTC is Monday
/// morning in Sydney, so it is Tuesday, not Monday.
async fn next_business_day_is_counted_where_the_callee_is(app: &TestApp) {
    let key = team(app, "AU", "Australia/Sydney", "+61291234567").await;
    let mut day: NaiveDate = Utc::now().date_naive() + Duration::days(1);
    while day.weekday() != Weekday::Sun {
        day += Duration::days(1);
    }
    let at = Utc.from_utc_datetime(&day.and_hms_opt(20, 0, 0).unwrap());
    let result = call_at(app, &key, "+61291234567", "0412345671", "0412345678", at).await;
    let tuesday = day + Duration::days(2);
    let said = assistant_said(&result);
    assert!(said.contains(&format!("Next business day {tuesday}")), "{said}");
}

on_both_backends!(
    tomorrow_is_the_callees,
    local_numbers_read_in_the_teams_region,
    next_business_day_is_counted_where_the_callee_is,
);
