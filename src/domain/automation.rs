//! Automations: a trigger and up to 20 steps that share one context (`trigger.*`, `contact.*`,
//! `objects.*`, `mapped.*`, `source.*`, `call.*`). This module holds the definition, its validation
//! (errors name the step and field), and the pure parts of running steps: dot paths, `{{path}}`
//! templates, transforms and condition operators.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

pub use super::template::{as_text, get_path, paths as template_paths, render, render_value, set_path};
use super::{
    call::{CallStatus, CallingWindow, RetryPolicy},
    FieldError,
};

/// Steps an automation may have, counting those inside condition branches.
pub const MAX_STEPS: usize = 20;

/// The context namespaces, in the order the product documents them.
pub const NAMESPACES: [&str; 6] = ["trigger", "contact", "objects", "mapped", "source", "call"];

fn yes() -> bool {
    true
}

/// An automation as a team writes it (API body, or the file given to `voxd automation import`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutomationDef {
    pub name: String,
    /// Disabled automations keep their token but ignore triggers. Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    pub trigger: Trigger,
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<Step>,
}

/// What starts an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// `POST /api/v1/hooks/{token}`; the JSON body becomes `trigger.*`. With `signed`, voxd generates
    /// a secret and requests must be signed with it, by `signature`'s scheme.
    Webhook {
        #[serde(default)]
        signed: bool,
        /// How signed requests are signed (only read when `signed`).
        #[serde(default)]
        signature: HookSignature,
    },
    /// A call ended. Empty filters match every script and status.
    CallCompleted {
        #[serde(default)]
        script_ids: Vec<Uuid>,
        #[serde(default)]
        statuses: Vec<String>,
    },
    /// A call was scheduled (created, or rescheduled).
    CallScheduled {
        #[serde(default)]
        script_ids: Vec<Uuid>,
    },
}

/// How a signed hook's requests are signed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HookSignature {
    /// Standard Webhooks (the default): `webhook-id`, `webhook-timestamp`, `webhook-signature`
    /// over id, timestamp and body, with a `whsec_` secret. A request more than 5 minutes old is
    /// refused and a `webhook-id` seen in the last 24 hours starts nothing, so a captured request
    /// cannot be replayed.
    #[default]
    Standard,
    /// Voxworks-style `X-Webhook-Signature`: hex HMAC-SHA256 of the body only. Compatible with
    /// Voxworks senders, but a captured request stays valid: anyone who sees one can send it again
    /// (use `X-Idempotency-Key` to make repeats harmless, or the standard scheme).
    Body,
}

impl Trigger {
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Webhook { .. } => "webhook",
            Trigger::CallCompleted { .. } => "call_completed",
            Trigger::CallScheduled { .. } => "call_scheduled",
        }
    }

    /// Whether a call event with this script and status starts the automation.
    pub fn matches_call(&self, event: &str, script_id: Uuid, status: Option<&str>) -> bool {
        match self {
            Trigger::Webhook { .. } => false,
            Trigger::CallCompleted { script_ids, statuses } => {
                event == "call.ended"
                    && (script_ids.is_empty() || script_ids.contains(&script_id))
                    && (statuses.is_empty() || status.is_some_and(|s| statuses.iter().any(|f| f == s)))
            }
            Trigger::CallScheduled { script_ids } => {
                event == "call.scheduled" && (script_ids.is_empty() || script_ids.contains(&script_id))
            }
        }
    }

    /// The namespaces the trigger fills before the first step.
    fn namespaces(&self) -> Vec<&'static str> {
        match self {
            Trigger::Webhook { .. } => vec!["trigger"],
            _ => vec!["trigger", "call", "contact", "objects"],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// A context path, e.g. `trigger.first_name`.
    pub source: String,
    /// The key under `mapped.` (dots make nested objects).
    pub target: String,
    /// `uppercase`, `lowercase`, `truncate:N`, `date:FORMAT`, `to_string` or `to_number`.
    #[serde(default)]
    pub transform: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MatchOn {
    #[default]
    PhoneNumber,
    Email,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Equals,
    NotEquals,
    Contains,
    NotContains,
    StartsWith,
    EndsWith,
    GreaterThan,
    LessThan,
    GreaterOrEqual,
    LessOrEqual,
    IsEmpty,
    IsNotEmpty,
    In,
    NotIn,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
}

fn default_post() -> String {
    "POST".into()
}

fn default_get() -> String {
    "GET".into()
}

fn default_to() -> String {
    "contact.phone_number".into()
}

/// One step. Paths (`source`, `field`, the values of `fields`) name context values; text fields
/// (`url`, `headers`, `body`, `to`, `subject`) are templates where `{{path}}` is replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Copies context values, optionally transformed, under `mapped.*`.
    Transform {
        #[serde(default)]
        name: Option<String>,
        mappings: Vec<Mapping>,
    },
    /// Finds the contact by phone number or email and updates it, or creates it; fills `contact.*`.
    UpsertContact {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        match_on: MatchOn,
        /// Contact field → context path.
        fields: BTreeMap<String, String>,
    },
    /// Runs `then` when the comparison holds, else `otherwise`; the steps after it run either way.
    Condition {
        #[serde(default)]
        name: Option<String>,
        field: String,
        operator: Operator,
        #[serde(default)]
        value: Option<Value>,
        #[serde(default)]
        then: Vec<Step>,
        #[serde(default)]
        otherwise: Vec<Step>,
    },
    /// Creates or updates an object of the type (identified by the type's upsert key), linked to
    /// `contact.id` when there is one; fills `objects.<type>.*`.
    UpsertObject {
        #[serde(default)]
        name: Option<String>,
        object_type: String,
        /// Object field (dots make nested objects) → context path.
        data: BTreeMap<String, String>,
    },
    /// Schedules a call and waits for it to end; then `call.*` holds its result.
    CreateCall {
        #[serde(default)]
        name: Option<String>,
        script_id: Uuid,
        /// One of the team's numbers.
        from_number: String,
        /// Path of the number to call.
        #[serde(default = "default_to")]
        to: String,
        /// Path of an ISO 8601 time; absent or past means now.
        #[serde(default)]
        scheduled_time: Option<String>,
        /// Script variable → context path.
        #[serde(default)]
        variables: BTreeMap<String, String>,
        #[serde(default)]
        retry_policy: Option<RetryPolicy>,
        #[serde(default)]
        calling_window: Option<CallingWindow>,
        /// Path of an object in the context (e.g. `objects.property`) to link to the call; the
        /// script then sees it as `{{objects.<type>.*}}`.
        #[serde(default)]
        object: Option<String>,
    },
    /// Sends an HTTP request built from the context (e.g. to a CRM); keeps the response.
    Destination {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "default_post")]
        method: String,
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// JSON template; a string that is exactly `{{path}}` becomes the value itself. Default: the
        /// whole context.
        #[serde(default)]
        body: Option<Value>,
    },
    /// Sends an HTTP request whose JSON answer becomes `source.*`.
    Source {
        #[serde(default)]
        name: Option<String>,
        #[serde(default = "default_get")]
        method: String,
        url: String,
        #[serde(default)]
        headers: BTreeMap<String, String>,
        #[serde(default)]
        body: Option<Value>,
    },
    /// Sends an email or an SMS.
    Notification {
        #[serde(default)]
        name: Option<String>,
        channel: Channel,
        to: String,
        #[serde(default)]
        subject: Option<String>,
        body: String,
    },
}

impl Step {
    pub fn type_name(&self) -> &'static str {
        match self {
            Step::Transform { .. } => "transform",
            Step::UpsertContact { .. } => "upsert_contact",
            Step::Condition { .. } => "condition",
            Step::UpsertObject { .. } => "upsert_object",
            Step::CreateCall { .. } => "create_call",
            Step::Destination { .. } => "destination",
            Step::Source { .. } => "source",
            Step::Notification { .. } => "notification",
        }
    }

    /// Whether running the step changes something outside the execution (a record, a request, a
    /// message), so that running it twice is not the same as once.
    pub fn acts_outside(&self) -> bool {
        !matches!(self, Step::Transform { .. } | Step::Condition { .. })
    }

    pub fn name(&self) -> Option<&str> {
        match self {
            Step::Transform { name, .. }
            | Step::UpsertContact { name, .. }
            | Step::Condition { name, .. }
            | Step::UpsertObject { name, .. }
            | Step::CreateCall { name, .. }
            | Step::Destination { name, .. }
            | Step::Source { name, .. }
            | Step::Notification { name, .. } => name.as_deref(),
        }
    }
}

/// Steps in the tree, branches included.
pub fn count_steps(steps: &[Step]) -> usize {
    steps
        .iter()
        .map(|s| match s {
            Step::Condition { then, otherwise, .. } => 1 + count_steps(then) + count_steps(otherwise),
            _ => 1,
        })
        .sum()
}

/// Every step of the tree with its place (`steps[3].then[0]`), depth first.
pub fn walk<'a>(steps: &'a [Step], at: &str) -> Vec<(String, &'a Step)> {
    let mut out = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let here = format!("{at}[{i}]");
        if let Step::Condition { then, otherwise, .. } = s {
            out.push((here.clone(), s));
            out.extend(walk(then, &format!("{here}.then")));
            out.extend(walk(otherwise, &format!("{here}.otherwise")));
        } else {
            out.push((here, s));
        }
    }
    out
}

/// The contact fields an upsert-contact step can set.
pub const CONTACT_FIELDS: [&str; 9] = [
    "phone_number",
    "first_name",
    "last_name",
    "email",
    "title",
    "company",
    "address",
    "location",
    "timezone",
];

/// Reads a definition from JSON, naming the path of the first field serde refuses (an unknown step
/// type says `steps[2]: unknown variant ...`).
pub fn parse(value: Value) -> Result<AutomationDef, FieldError> {
    let def: AutomationDef = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        FieldError::new(
            if path == "." { String::new() } else { path },
            e.into_inner().to_string(),
        )
    })?;
    validate(&def)?;
    Ok(def)
}

/// What the context can hold at a point of the pipeline.
#[derive(Clone, Default)]
struct Scope {
    namespaces: BTreeSet<&'static str>,
    /// Top-level keys under `mapped.` written so far.
    mapped: BTreeSet<String>,
}

impl Scope {
    fn union(mut self, other: Scope) -> Scope {
        self.namespaces.extend(other.namespaces);
        self.mapped.extend(other.mapped);
        self
    }
}

pub fn validate(def: &AutomationDef) -> Result<(), FieldError> {
    let name = def.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(FieldError::new("name", "must be 1 to 200 characters"));
    }
    if let Trigger::CallCompleted { statuses, .. } = &def.trigger {
        for (i, s) in statuses.iter().enumerate() {
            if CallStatus::parse(s).is_none() {
                return Err(FieldError::new(
                    format!("trigger.statuses[{i}]"),
                    format!("`{s}` is not a call status (completed, failed, voicemail, dropout, hang-up, rang-out, User unavailable, User rejected)"),
                ));
            }
        }
    }
    let total = count_steps(&def.steps);
    if total > MAX_STEPS {
        return Err(FieldError::new(
            "steps",
            format!("has {total} steps (branches included); an automation may have at most {MAX_STEPS}"),
        ));
    }
    if def.steps.is_empty() {
        return Err(FieldError::new("steps", "must have at least one step"));
    }
    let mut scope = Scope::default();
    scope.namespaces.extend(def.trigger.namespaces());
    check_steps(&def.steps, "steps", scope)?;
    Ok(())
}

fn check_steps(steps: &[Step], at: &str, mut scope: Scope) -> Result<Scope, FieldError> {
    for (i, step) in steps.iter().enumerate() {
        scope = check_step(step, &format!("{at}[{i}]"), scope)?;
    }
    Ok(scope)
}

fn check_step(step: &Step, at: &str, mut scope: Scope) -> Result<Scope, FieldError> {
    if let Some(n) = step.name() {
        if n.chars().count() > 200 {
            return Err(FieldError::new(format!("{at}.name"), "must be at most 200 characters"));
        }
    }
    match step {
        Step::Transform { mappings, .. } => {
            if mappings.is_empty() {
                return Err(FieldError::new(
                    format!("{at}.mappings"),
                    "must have at least one mapping",
                ));
            }
            let mut added = Vec::new();
            for (j, m) in mappings.iter().enumerate() {
                let here = format!("{at}.mappings[{j}]");
                check_path(&m.source, &format!("{here}.source"), &scope)?;
                let target = m.target.strip_prefix("mapped.").unwrap_or(&m.target);
                if target.is_empty() || target.split('.').any(str::is_empty) {
                    return Err(FieldError::new(
                        format!("{here}.target"),
                        "must be a key such as `first_name`",
                    ));
                }
                if let Some(t) = &m.transform {
                    Transform::parse(t).map_err(|e| FieldError::new(format!("{here}.transform"), e))?;
                }
                added.push(target.split('.').next().unwrap_or(target).to_owned());
            }
            scope.namespaces.insert("mapped");
            scope.mapped.extend(added);
        }
        Step::UpsertContact { match_on, fields, .. } => {
            for (field, path) in fields {
                if !CONTACT_FIELDS.contains(&field.as_str()) {
                    return Err(FieldError::new(
                        format!("{at}.fields.{field}"),
                        format!("is not a contact field ({})", CONTACT_FIELDS.join(", ")),
                    ));
                }
                check_path(path, &format!("{at}.fields.{field}"), &scope)?;
            }
            let key = match match_on {
                MatchOn::PhoneNumber => "phone_number",
                MatchOn::Email => "email",
            };
            if !fields.contains_key(key) {
                return Err(FieldError::new(
                    format!("{at}.fields"),
                    format!("must map `{key}`, the field it matches on"),
                ));
            }
            if !fields.contains_key("phone_number") {
                return Err(FieldError::new(
                    format!("{at}.fields"),
                    "must map `phone_number`: every contact has one",
                ));
            }
            scope.namespaces.insert("contact");
        }
        Step::Condition {
            field,
            operator,
            value,
            then,
            otherwise,
            ..
        } => {
            check_path(field, &format!("{at}.field"), &scope)?;
            match operator {
                Operator::IsEmpty | Operator::IsNotEmpty => {}
                Operator::In | Operator::NotIn => {
                    if !matches!(value, Some(Value::Array(_))) {
                        return Err(FieldError::new(
                            format!("{at}.value"),
                            "must be an array for `in` and `not_in`",
                        ));
                    }
                }
                _ => {
                    if value.is_none() {
                        return Err(FieldError::new(format!("{at}.value"), "is required for this operator"));
                    }
                }
            }
            let a = check_steps(then, &format!("{at}.then"), scope.clone())?;
            let b = check_steps(otherwise, &format!("{at}.otherwise"), scope.clone())?;
            // After the condition, whatever either branch added may exist.
            scope = scope.union(a).union(b);
        }
        Step::UpsertObject { object_type, data, .. } => {
            if object_type.trim().is_empty() {
                return Err(FieldError::new(format!("{at}.object_type"), "must not be empty"));
            }
            if data.is_empty() {
                return Err(FieldError::new(format!("{at}.data"), "must map at least one field"));
            }
            for (field, path) in data {
                if field.split('.').any(str::is_empty) {
                    return Err(FieldError::new(
                        format!("{at}.data"),
                        format!("`{field}` is not a field name"),
                    ));
                }
                check_path(path, &format!("{at}.data.{field}"), &scope)?;
            }
            scope.namespaces.insert("objects");
        }
        Step::CreateCall {
            from_number,
            to,
            scheduled_time,
            variables,
            retry_policy,
            calling_window,
            object,
            ..
        } => {
            if from_number.trim().is_empty() {
                return Err(FieldError::new(format!("{at}.from_number"), "must not be empty"));
            }
            check_path(to, &format!("{at}.to"), &scope)?;
            if let Some(p) = scheduled_time {
                check_path(p, &format!("{at}.scheduled_time"), &scope)?;
            }
            for (k, p) in variables {
                check_path(p, &format!("{at}.variables.{k}"), &scope)?;
            }
            if let Some(r) = retry_policy {
                r.check()
                    .map_err(|e| FieldError::new(format!("{at}.retry_policy"), e))?;
            }
            if let Some(w) = calling_window {
                w.check()
                    .map_err(|e| FieldError::new(format!("{at}.calling_window"), e))?;
            }
            if let Some(o) = object {
                if !o.starts_with("objects.") {
                    return Err(FieldError::new(
                        format!("{at}.object"),
                        "must be a path such as `objects.property`",
                    ));
                }
                check_path(o, &format!("{at}.object"), &scope)?;
            }
            scope.namespaces.insert("call");
            scope.namespaces.insert("contact");
        }
        Step::Destination {
            method,
            url,
            headers,
            body,
            ..
        }
        | Step::Source {
            method,
            url,
            headers,
            body,
            ..
        } => {
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method.as_str()) {
                return Err(FieldError::new(
                    format!("{at}.method"),
                    "must be GET, POST, PUT, PATCH or DELETE",
                ));
            }
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(FieldError::new(
                    format!("{at}.url"),
                    "must start with https:// or http://",
                ));
            }
            check_template(url, &format!("{at}.url"), &scope)?;
            for (k, v) in headers {
                check_template(v, &format!("{at}.headers.{k}"), &scope)?;
            }
            if let Some(b) = body {
                check_value_template(b, &format!("{at}.body"), &scope)?;
            }
            if matches!(step, Step::Source { .. }) {
                scope.namespaces.insert("source");
            }
        }
        Step::Notification { to, subject, body, .. } => {
            if to.trim().is_empty() {
                return Err(FieldError::new(format!("{at}.to"), "must not be empty"));
            }
            check_template(to, &format!("{at}.to"), &scope)?;
            if let Some(s) = subject {
                check_template(s, &format!("{at}.subject"), &scope)?;
            }
            check_template(body, &format!("{at}.body"), &scope)?;
        }
    }
    Ok(scope)
}

fn check_path(path: &str, field: &str, scope: &Scope) -> Result<(), FieldError> {
    let mut parts = path.split('.');
    let ns = parts.next().unwrap_or_default();
    if path.split('.').any(str::is_empty) {
        return Err(FieldError::new(
            field,
            format!("`{path}` is not a path such as `trigger.phone`"),
        ));
    }
    if !NAMESPACES.contains(&ns) {
        return Err(FieldError::new(
            field,
            format!(
                "`{path}` starts with `{ns}`, which is not one of {}",
                NAMESPACES.join(", ")
            ),
        ));
    }
    if !scope.namespaces.contains(ns) {
        let why = match ns {
            "contact" => "no earlier step upserts a contact or creates a call, and the trigger gives none",
            "objects" => "no earlier step upserts an object, and the trigger gives none",
            "mapped" => "no earlier step is a transform",
            "source" => "no earlier step is a source",
            "call" => "no earlier step creates a call, and the trigger is not a call event",
            _ => "the trigger does not provide it",
        };
        return Err(FieldError::new(field, format!("`{path}` cannot exist here: {why}")));
    }
    if ns == "mapped" {
        if let Some(key) = parts.next() {
            if !scope.mapped.contains(key) {
                return Err(FieldError::new(
                    field,
                    format!("`{path}` cannot exist here: no earlier transform writes `mapped.{key}`"),
                ));
            }
        }
    }
    Ok(())
}

fn check_template(text: &str, field: &str, scope: &Scope) -> Result<(), FieldError> {
    template_paths(text)
        .into_iter()
        .try_for_each(|p| check_path(p, field, scope))
}

fn check_value_template(v: &Value, field: &str, scope: &Scope) -> Result<(), FieldError> {
    match v {
        Value::String(s) => check_template(s, field, scope),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, x)| check_value_template(x, &format!("{field}[{i}]"), scope)),
        Value::Object(m) => m
            .iter()
            .try_for_each(|(k, x)| check_value_template(x, &format!("{field}.{k}"), scope)),
        _ => Ok(()),
    }
}

/// A transform of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    Uppercase,
    Lowercase,
    Truncate(usize),
    /// chrono `strftime` format; `YYYY`, `MM`, `DD`, `HH`, `mm`, `ss` are accepted too.
    Date(String),
    ToString,
    ToNumber,
}

impl Transform {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (name, arg) = match s.split_once(':') {
            Some((n, a)) => (n.trim(), Some(a)),
            None => (s.trim(), None),
        };
        match (name, arg) {
            ("uppercase", None) => Ok(Transform::Uppercase),
            ("lowercase", None) => Ok(Transform::Lowercase),
            ("to_string", None) => Ok(Transform::ToString),
            ("to_number", None) => Ok(Transform::ToNumber),
            ("truncate", Some(n)) => match n.trim().parse::<usize>() {
                Ok(n) if n > 0 => Ok(Transform::Truncate(n)),
                _ => Err(format!("`{s}`: truncate takes a positive length, e.g. truncate:100")),
            },
            ("date", Some(f)) if !f.trim().is_empty() => {
                let format = strftime(f.trim());
                let bad = chrono::format::StrftimeItems::new(&format).any(|i| i == chrono::format::Item::Error);
                if bad {
                    return Err(format!(
                        "`{s}`: `{}` is not a date format (chrono strftime, e.g. %d/%m/%Y, or YYYY-MM-DD HH:mm)",
                        f.trim()
                    ));
                }
                Ok(Transform::Date(format))
            }
            _ => Err(format!(
                "`{s}` is not a transform (uppercase, lowercase, truncate:N, date:FORMAT, to_string, to_number)"
            )),
        }
    }

    /// Applies the transform; null stays null.
    pub fn apply(&self, v: &Value) -> Result<Value, String> {
        if v.is_null() {
            return Ok(Value::Null);
        }
        let text = as_text(Some(v));
        Ok(match self {
            Transform::Uppercase => Value::String(text.to_uppercase()),
            Transform::Lowercase => Value::String(text.to_lowercase()),
            Transform::Truncate(n) => Value::String(text.chars().take(*n).collect()),
            Transform::ToString => Value::String(text),
            Transform::ToNumber => match v {
                Value::Number(_) => v.clone(),
                _ => {
                    let t = text.trim();
                    if let Ok(i) = t.parse::<i64>() {
                        Value::from(i)
                    } else {
                        t.parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map(Value::Number)
                            .ok_or_else(|| format!("`{text}` is not a number"))?
                    }
                }
            },
            Transform::Date(fmt) => {
                use std::fmt::Write;
                let t = text.trim();
                let mut out = String::new();
                // chrono reports a specifier the value cannot fill (a time of day for a date-only
                // value) as a formatting error; `to_string` would panic on it.
                let written = if let Ok(d) = DateTime::parse_from_rfc3339(t) {
                    write!(out, "{}", d.with_timezone(&Utc).format(fmt))
                } else if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
                    write!(out, "{}", d.format(fmt))
                } else if let Some(d) = v.as_i64().and_then(|s| DateTime::from_timestamp(s, 0)) {
                    write!(out, "{}", d.format(fmt))
                } else {
                    return Err(format!("`{text}` is not a date (ISO 8601 or unix seconds)"));
                };
                written.map_err(|_| format!("`{text}` cannot be written as `{fmt}` (a date has no time of day)"))?;
                Value::String(out)
            }
        })
    }
}

/// Turns the product's `YYYY-MM-DD`-style formats into chrono's; `%` formats pass through.
fn strftime(f: &str) -> String {
    if f.contains('%') {
        return f.to_owned();
    }
    f.replace("YYYY", "%Y")
        .replace("MM", "%m")
        .replace("DD", "%d")
        .replace("HH", "%H")
        .replace("mm", "%M")
        .replace("ss", "%S")
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Loose equality: numbers compare as numbers, everything else as text (so `"42"` equals `42` and
/// `true` equals `"true"`, as a form builder's user expects).
fn same(a: &Value, b: &Value) -> bool {
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => as_text(Some(a)) == as_text(Some(b)),
    }
}

/// Evaluates a condition on the context value at the field's path.
pub fn evaluate(op: Operator, left: Option<&Value>, right: Option<&Value>) -> bool {
    let null = Value::Null;
    let l = left.unwrap_or(&null);
    let r = right.unwrap_or(&null);
    let ordered = |f: fn(std::cmp::Ordering) -> bool| match (number(l), number(r)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).is_some_and(f),
        _ if !l.is_null() && !r.is_null() => f(as_text(Some(l)).cmp(&as_text(Some(r)))),
        _ => false,
    };
    match op {
        Operator::Equals => same(l, r),
        Operator::NotEquals => !same(l, r),
        Operator::Contains => contains(l, r),
        Operator::NotContains => !contains(l, r),
        Operator::StartsWith => !l.is_null() && as_text(Some(l)).starts_with(&as_text(Some(r))),
        Operator::EndsWith => !l.is_null() && as_text(Some(l)).ends_with(&as_text(Some(r))),
        Operator::GreaterThan => ordered(|o| o.is_gt()),
        Operator::LessThan => ordered(|o| o.is_lt()),
        Operator::GreaterOrEqual => ordered(|o| o.is_ge()),
        Operator::LessOrEqual => ordered(|o| o.is_le()),
        Operator::IsEmpty => is_empty(left),
        Operator::IsNotEmpty => !is_empty(left),
        Operator::In => r.as_array().is_some_and(|a| a.iter().any(|x| same(l, x))),
        Operator::NotIn => !r.as_array().is_some_and(|a| a.iter().any(|x| same(l, x))),
    }
}

fn contains(l: &Value, r: &Value) -> bool {
    match l {
        Value::Array(a) => a.iter().any(|x| same(x, r)),
        Value::Null => false,
        _ => as_text(Some(l))
            .to_lowercase()
            .contains(&as_text(Some(r)).to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn def(steps: Value) -> Result<AutomationDef, FieldError> {
        parse(json!({"name": "a", "trigger": {"type": "webhook"}, "steps": steps}))
    }

    #[test]
    fn unknown_step_types_and_fields_are_named() {
        let e = def(
            json!([{"type": "transform", "mappings": [{"source": "trigger.a", "target": "a"}]}, {"type": "teleport"}]),
        )
        .unwrap_err();
        assert_eq!(e.field, "steps[1].type");
        assert!(e.reason.contains("teleport"), "{e}");
        let e = def(json!([{"type": "transform", "mapings": []}])).unwrap_err();
        assert!(e.field.starts_with("steps[0]"), "{e}");
        assert!(e.reason.contains("mapings"), "{e}");
    }

    #[test]
    fn at_most_twenty_steps_counting_branches() {
        let t = json!({"type": "transform", "mappings": [{"source": "trigger.a", "target": "a"}]});
        let ok: Vec<Value> = (0..20).map(|_| t.clone()).collect();
        assert!(def(Value::Array(ok)).is_ok());
        let mut nested: Vec<Value> = (0..19).map(|_| t.clone()).collect();
        nested.push(json!({"type": "condition", "field": "trigger.a", "operator": "is_empty", "then": [t]}));
        let e = def(Value::Array(nested)).unwrap_err();
        assert_eq!(e.field, "steps");
        assert!(e.reason.contains("21"), "{e}");
    }

    #[test]
    fn paths_into_namespaces_that_cannot_exist_yet_are_refused() {
        let e =
            def(json!([{"type": "transform", "mappings": [{"source": "contact.email", "target": "e"}]}])).unwrap_err();
        assert_eq!(e.field, "steps[0].mappings[0].source");
        assert!(e.reason.contains("cannot exist here"), "{e}");
        let e = def(json!([
            {"type": "transform", "mappings": [{"source": "trigger.a", "target": "a"}]},
            {"type": "condition", "field": "mapped.b", "operator": "is_empty"}
        ]))
        .unwrap_err();
        assert_eq!(e.field, "steps[1].field");
        assert!(e.reason.contains("mapped.b"), "{e}");
        let e = def(json!([{"type": "destination", "url": "https://x.test/{{call.id}}"}])).unwrap_err();
        assert_eq!(e.field, "steps[0].url");
        let e = def(json!([{"type": "condition", "field": "secrets.x", "operator": "is_empty"}])).unwrap_err();
        assert!(e.reason.contains("not one of"), "{e}");
        // A branch's additions are visible after the condition (they may exist), not in the other branch.
        let upsert = json!({"type": "upsert_contact", "fields": {"phone_number": "trigger.phone"}});
        assert!(def(json!([
            {"type": "condition", "field": "trigger.a", "operator": "is_empty", "then": [upsert]},
            {"type": "destination", "url": "https://x.test/{{contact.id}}"}
        ]))
        .is_ok());
        let e = def(
            json!([{"type": "condition", "field": "trigger.a", "operator": "is_empty", "then": [upsert],
            "otherwise": [{"type": "source", "url": "https://x.test/{{contact.id}}"}]}]),
        )
        .unwrap_err();
        assert_eq!(e.field, "steps[0].otherwise[0].url");
        // Call triggers hydrate call, contact and objects.
        assert!(parse(json!({"name": "c", "trigger": {"type": "call_completed", "statuses": ["User rejected"]},
            "steps": [{"type": "transform", "mappings": [{"source": "call.status", "target": "s"}, {"source": "objects.deal.id", "target": "d"}]}]}))
        .is_ok());
        let e =
            parse(json!({"name": "c", "trigger": {"type": "call_completed", "statuses": ["rejected"]}, "steps": []}))
                .unwrap_err();
        assert_eq!(e.field, "trigger.statuses[0]");
    }

    #[test]
    fn transforms() {
        let t = |s: &str, v: Value| Transform::parse(s).unwrap().apply(&v);
        assert_eq!(t("uppercase", json!("ada")).unwrap(), json!("ADA"));
        assert_eq!(t("lowercase", json!("ADA")).unwrap(), json!("ada"));
        assert_eq!(t("truncate:3", json!("Lovelace")).unwrap(), json!("Lov"));
        assert_eq!(t("to_number", json!(" 42 ")).unwrap(), json!(42));
        assert_eq!(t("to_number", json!("4.5")).unwrap(), json!(4.5));
        assert!(t("to_number", json!("four")).is_err());
        assert_eq!(t("to_string", json!(42)).unwrap(), json!("42"));
        assert_eq!(
            t("date:YYYY-MM-DD", json!("2026-03-04T10:00:00+11:00")).unwrap(),
            json!("2026-03-03")
        );
        assert_eq!(t("date:%d/%m/%Y", json!("2026-03-04")).unwrap(), json!("04/03/2026"));
        assert!(Transform::parse("truncate:0").is_err());
        assert!(Transform::parse("date:%Q").is_err());
        assert!(Transform::parse("date:%").is_err());
        assert!(t("date:HH:mm", json!("2026-03-04")).is_err());
        assert_eq!(t("date:HH:mm", json!("2026-03-04T10:05:00Z")).unwrap(), json!("10:05"));
        assert!(Transform::parse("reverse").is_err());
        assert_eq!(t("uppercase", Value::Null).unwrap(), Value::Null);
    }

    #[test]
    fn operators() {
        use Operator::*;
        let v = json!("Enterprise plan");
        assert!(evaluate(Equals, Some(&json!("42")), Some(&json!(42))));
        assert!(evaluate(NotEquals, Some(&json!("a")), Some(&json!("b"))));
        assert!(evaluate(Contains, Some(&v), Some(&json!("enterprise"))));
        assert!(evaluate(NotContains, Some(&v), Some(&json!("starter"))));
        assert!(evaluate(Contains, Some(&json!(["a", "b"])), Some(&json!("b"))));
        assert!(evaluate(GreaterThan, Some(&json!("10")), Some(&json!(9))));
        assert!(!evaluate(GreaterThan, None, Some(&json!(9))));
        assert!(evaluate(LessOrEqual, Some(&json!(9)), Some(&json!(9))));
        assert!(evaluate(IsEmpty, None, None));
        assert!(evaluate(IsEmpty, Some(&json!("  ")), None));
        assert!(evaluate(IsNotEmpty, Some(&json!(0)), None));
        assert!(evaluate(
            In,
            Some(&json!("completed")),
            Some(&json!(["completed", "voicemail"]))
        ));
        assert!(evaluate(NotIn, Some(&json!("failed")), Some(&json!(["completed"]))));
        assert!(evaluate(StartsWith, Some(&json!("+6140")), Some(&json!("+61"))));
    }

    #[test]
    fn paths_and_templates() {
        let ctx = json!({"trigger": {"n": 3, "name": "Ada", "items": [{"sku": "x"}]}});
        assert_eq!(get_path(&ctx, "trigger.items.0.sku"), Some(&json!("x")));
        assert_eq!(
            render("Hi {{ trigger.name }} ({{trigger.n}}){{trigger.none}}", &ctx),
            "Hi Ada (3)"
        );
        assert_eq!(
            render_value(
                &json!({"n": "{{trigger.n}}", "s": "n={{trigger.n}}", "m": "{{trigger.none}}"}),
                &ctx
            ),
            json!({"n": 3, "s": "n=3", "m": null})
        );
        let mut v = json!({});
        set_path(&mut v, "mapped.a.b", json!(1));
        assert_eq!(v, json!({"mapped": {"a": {"b": 1}}}));
    }
}
