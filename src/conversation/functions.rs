//! Built-in functions for function steps: deterministic checks and arithmetic the assistant must
//! not improvise. Each takes its inputs (rendered text) and returns success or failure with outputs.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use phonenumber::{country, Type};
use serde_json::{json, Map, Value};

use crate::domain::phone;

pub struct FunctionResult {
    pub success: bool,
    pub outputs: Map<String, Value>,
}

/// What a function may read besides its inputs.
pub struct FunctionContext {
    pub today: NaiveDate,
    pub region: country::Id,
}

type Function = fn(&BTreeMap<String, String>, &FunctionContext) -> FunctionResult;

pub const NAMES: [&str; 5] = [
    "validate_email",
    "normalize_phone",
    "next_business_day",
    "is_mobile",
    TRANSFER,
];

/// Hands the call to a person: input `to`, a phone number (read in the team's region) or a
/// `sip:`/`sips:` URI. Not a function of its inputs alone (the line carries it out), so the
/// engine runs it itself; success means the line took the transfer, and the call ends
/// `transferred`; failure (the line cannot, or the far end refused) takes the failure path.
pub const TRANSFER: &str = "transfer_call";

/// Where a `transfer_call` step sends the call: E.164, or the SIP URI as given.
pub fn transfer_target(inputs: &BTreeMap<String, String>, region: country::Id) -> Option<String> {
    let to = input(inputs, "to");
    if to.starts_with("sip:") || to.starts_with("sips:") {
        let ok = to.len() <= 255
            && to.contains('@')
            && !to
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
        return ok.then(|| to.to_owned());
    }
    phone::normalize("to", to, region).ok()
}

/// Whether `name` is a function a step may name (the pure ones and `transfer_call`).
pub fn exists(name: &str) -> bool {
    name == TRANSFER || lookup(name).is_some()
}

pub fn lookup(name: &str) -> Option<Function> {
    Some(match name {
        "validate_email" => validate_email,
        "normalize_phone" => normalize_phone,
        "next_business_day" => next_business_day,
        "is_mobile" => is_mobile,
        _ => return None,
    })
}

fn result(success: bool, outputs: Value) -> FunctionResult {
    FunctionResult {
        success,
        outputs: outputs.as_object().cloned().unwrap_or_default(),
    }
}

fn input<'a>(inputs: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    inputs.get(name).map(|s| s.trim()).unwrap_or_default()
}

/// `email` → success when it is a valid address; output `email` (trimmed, lower-cased domain).
fn validate_email(inputs: &BTreeMap<String, String>, _: &FunctionContext) -> FunctionResult {
    let email = input(inputs, "email");
    match email.parse::<email_address::EmailAddress>() {
        Ok(e) => result(
            true,
            json!({"email": format!("{}@{}", e.local_part(), e.domain().to_lowercase())}),
        ),
        Err(_) => result(false, json!({"email": email})),
    }
}

/// `phone` → success when it is a valid number; output `phone` in E.164.
fn normalize_phone(inputs: &BTreeMap<String, String>, ctx: &FunctionContext) -> FunctionResult {
    match phone::normalize("phone", input(inputs, "phone"), ctx.region) {
        Ok(e164) => result(true, json!({ "phone": e164 })),
        Err(_) => result(false, json!({})),
    }
}

/// `date` (YYYY-MM-DD, default today) and `days` (default 1) → the date that many business days
/// later (Monday to Friday); outputs `date` and `spoken` ("Monday 30 November").
fn next_business_day(inputs: &BTreeMap<String, String>, ctx: &FunctionContext) -> FunctionResult {
    let start = match input(inputs, "date") {
        "" => ctx.today,
        d => match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
            Ok(d) => d,
            Err(_) => return result(false, json!({})),
        },
    };
    let days: u32 = match input(inputs, "days") {
        "" => 1,
        n => match n.parse() {
            Ok(n) if n <= 365 => n,
            _ => return result(false, json!({})),
        },
    };
    let mut date = start;
    let mut left = days;
    while left > 0 {
        date += Duration::days(1);
        if !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    result(
        true,
        json!({"date": date.format("%Y-%m-%d").to_string(), "spoken": date.format("%A %-d %B").to_string()}),
    )
}

/// `phone` → success when the number is a mobile (so it can receive SMS).
fn is_mobile(inputs: &BTreeMap<String, String>, ctx: &FunctionContext) -> FunctionResult {
    let Ok(e164) = phone::normalize("phone", input(inputs, "phone"), ctx.region) else {
        return result(false, json!({}));
    };
    let mobile = phonenumber::parse(None, &e164)
        .map(|n| {
            matches!(
                n.number_type(&phonenumber::metadata::DATABASE),
                Type::Mobile | Type::FixedLineOrMobile
            )
        })
        .unwrap_or(false);
    result(mobile, json!({ "phone": e164 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> FunctionContext {
        FunctionContext {
            today: NaiveDate::from_ymd_opt(2026, 11, 27).unwrap(),
            region: country::Id::AU,
        }
    }

    fn run(name: &str, pairs: &[(&str, &str)]) -> FunctionResult {
        let inputs = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        lookup(name).unwrap()(&inputs, &ctx())
    }

    #[test]
    fn business_days_skip_weekends() {
        let r = run("next_business_day", &[]);
        assert!(r.success);
        assert_eq!(r.outputs["date"], "2026-11-30");
        assert_eq!(r.outputs["spoken"], "Monday 30 November");
        assert_eq!(
            run("next_business_day", &[("date", "2026-11-30"), ("days", "5")]).outputs["date"],
            "2026-12-07"
        );
        assert!(!run("next_business_day", &[("date", "someday")]).success);
    }

    #[test]
    fn checks_emails_and_phones() {
        assert!(run("validate_email", &[("email", "Jo@Example.COM")]).success);
        assert!(!run("validate_email", &[("email", "jo@")]).success);
        assert_eq!(
            run("normalize_phone", &[("phone", "0429069971")]).outputs["phone"],
            "+61429069971"
        );
        assert!(run("is_mobile", &[("phone", "0429069971")]).success);
        assert!(!run("is_mobile", &[("phone", "0291234567")]).success);
        assert!(lookup("teleport").is_none());
    }
}
