//! Object type schemas. The contract's own form is a map of field → type name
//! (`{"address": "string", "bedrooms": "number"}`); a full JSON Schema is accepted too. Both become a
//! JSON Schema that object data is checked against.
//!
//! Schemas are bounded when they are created and every validation has a budget (see [`bounds`]);
//! validations run on the blocking pool, so the worst a team's schema can do is refuse its own data.

pub mod bounds;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema, PartialEq)]
#[serde(rename_all = "snake_case")]
/// What an object type does with data that breaks its schema.
pub enum ValidationMode {
    /// Store any data.
    #[default]
    Off,
    /// Store the data and return its schema violations.
    Warn,
    /// Refuse data that breaks the schema (400 listing the violations).
    Strict,
}

impl ValidationMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ValidationMode::Off => "off",
            ValidationMode::Warn => "warn",
            ValidationMode::Strict => "strict",
        }
    }

    pub fn parse(s: &str) -> Self {
        match s {
            "warn" => ValidationMode::Warn,
            "strict" => ValidationMode::Strict,
            _ => ValidationMode::Off,
        }
    }
}

/// Type names of the shorthand form.
pub const SHORTHAND_TYPES: [&str; 8] = [
    "string", "number", "integer", "boolean", "date", "datetime", "object", "array",
];

/// Keys that only a JSON Schema has. A map with any of them is read as a JSON Schema, otherwise as
/// the shorthand (so a field may be called `type`).
const JSON_SCHEMA_KEYWORDS: [&str; 16] = [
    "$schema",
    "$id",
    "$ref",
    "$defs",
    "definitions",
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaForm {
    Shorthand,
    JsonSchema,
}

impl SchemaForm {
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaForm::Shorthand => "shorthand",
            SchemaForm::JsonSchema => "json_schema",
        }
    }
}

/// The JSON Schema an object type's data is validated against.
pub fn compile(schema: &Value) -> Result<(SchemaForm, Value), String> {
    let Value::Object(map) = schema else {
        return Err("must be an object: a map of field → type, or a JSON Schema".into());
    };
    if map.keys().any(|k| JSON_SCHEMA_KEYWORDS.contains(&k.as_str())) {
        return full_schema(schema).map(|s| (SchemaForm::JsonSchema, s));
    }
    shorthand(map).map(|s| (SchemaForm::Shorthand, s))
}

fn shorthand(map: &Map<String, Value>) -> Result<Value, String> {
    let mut properties = Map::new();
    for (field, ty) in map {
        let Some(name) = ty.as_str() else {
            return Err(format!(
                "field `{field}` must name a type ({}), or the schema must be a JSON Schema",
                SHORTHAND_TYPES.join(", ")
            ));
        };
        let rule = match name {
            "date" => json!({"type": "string", "format": "date"}),
            "datetime" => json!({"type": "string", "format": "date-time"}),
            t if SHORTHAND_TYPES.contains(&t) => json!({ "type": t }),
            other => {
                return Err(format!(
                    "field `{field}` has unknown type `{other}` (expected one of {})",
                    SHORTHAND_TYPES.join(", ")
                ))
            }
        };
        properties.insert(field.clone(), rule);
    }
    Ok(json!({"type": "object", "properties": properties}))
}

fn full_schema(schema: &Value) -> Result<Value, String> {
    bounds::check_schema(schema)?;
    jsonschema::meta::validate(schema).map_err(|e| {
        let at = e.instance_path.to_string();
        let at = if at.is_empty() {
            String::new()
        } else {
            format!(" at `#{at}`")
        };
        format!("is not a valid JSON Schema{at}: {e}")
    })?;
    match schema.get("type") {
        None => {}
        Some(Value::String(t)) if t == "object" => {}
        Some(_) => return Err("a JSON Schema for objects must have `type: object` at its root".into()),
    }
    validator(schema)?;
    Ok(schema.clone())
}

fn validator(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::options()
        .should_validate_formats(true)
        // Patterns are a team's own: cap their backtracking (the default allows a million steps).
        .with_pattern_options(jsonschema::PatternOptions::fancy_regex().backtrack_limit(10_000))
        .build(schema)
        .map_err(|e| format!("cannot be used: {e}"))
}

/// One way in which data breaks its type's schema.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct Violation {
    /// JSON Pointer into `data` ("" for the root).
    pub path: String,
    pub message: String,
}

/// Violations reported at most; the rest are counted in neither time nor memory.
const MAX_VIOLATIONS: usize = 100;
/// A violation's message quotes the offending value; a long one is cut.
const MAX_MESSAGE_CHARS: usize = 300;
/// Wall-clock bound of one validation, on top of its evaluation budget.
const VALIDATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Why data could not be checked at all (a 400 for the request, a failed step for an automation).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Unvalidatable(pub String);

/// The violations of `schema` (as returned by [`compile`]) by `data`, at most [`MAX_VIOLATIONS`],
/// or why the data cannot be validated within the budget. Synchronous: see [`check`].
pub fn violations(schema: &Value, data: &Value) -> Result<Vec<Violation>, Unvalidatable> {
    if bounds::evaluations(schema, data, bounds::VALIDATION_BUDGET).is_err() {
        return Err(Unvalidatable(format!(
            "data is too complex to validate against this schema (more than {} subschema checks)",
            bounds::VALIDATION_BUDGET
        )));
    }
    let v = validator(schema).map_err(Unvalidatable)?;
    Ok(v.iter_errors(data)
        .take(MAX_VIOLATIONS)
        .map(|e| {
            let mut message = e.to_string();
            if message.chars().count() > MAX_MESSAGE_CHARS {
                message = message.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + "…";
            }
            Violation {
                path: e.instance_path.to_string(),
                message,
            }
        })
        .collect())
}

/// [`violations`] on the blocking pool, a few at a time, under a wall-clock bound: the async
/// workers never run a validator.
pub async fn check(schema: &Value, data: &Value) -> Result<Vec<Violation>, Unvalidatable> {
    static RUNNING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);
    let _permit = RUNNING.acquire().await.expect("the semaphore is never closed");
    let (schema, data) = (schema.clone(), data.clone());
    let work = tokio::task::spawn_blocking(move || violations(&schema, &data));
    match tokio::time::timeout(VALIDATION_TIMEOUT, work).await {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "schema validation panicked");
            Err(Unvalidatable("data could not be validated against this schema".into()))
        }
        Err(_) => Err(Unvalidatable(format!(
            "validating the data took longer than {} s",
            VALIDATION_TIMEOUT.as_secs()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(schema: &Value, data: &Value) -> Vec<Violation> {
        violations(schema, data).unwrap()
    }

    #[test]
    fn contract_example_is_shorthand() {
        let (form, s) = compile(&json!({"address": "string", "bedrooms": "number"})).unwrap();
        assert_eq!(form, SchemaForm::Shorthand);
        assert!(ok(&s, &json!({"address": "1 Main St", "bedrooms": 3})).is_empty());
        let v = ok(&s, &json!({"address": 5, "bedrooms": "three"}));
        assert_eq!(v.len(), 2);
        assert!(v.iter().any(|v| v.path == "/bedrooms"));
    }

    #[test]
    fn dates_are_checked() {
        let (_, s) = compile(&json!({"listed": "date", "seen": "datetime"})).unwrap();
        assert!(ok(&s, &json!({"listed": "2026-02-25", "seen": "2026-02-25T09:00:00Z"})).is_empty());
        assert_eq!(ok(&s, &json!({"listed": "25/02/2026"})).len(), 1);
    }

    #[test]
    fn full_json_schema_accepted() {
        let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]});
        let (form, s) = compile(&schema).unwrap();
        assert_eq!(form, SchemaForm::JsonSchema);
        assert_eq!(ok(&s, &json!({})).len(), 1);
    }

    #[test]
    fn neither_form_is_refused() {
        assert!(compile(&json!("string")).is_err());
        assert!(compile(&json!({"bedrooms": "numbr"})).is_err());
        assert!(compile(&json!({"bedrooms": 3})).is_err());
        assert!(compile(&json!({"properties": 3})).is_err());
        assert!(compile(&json!({"type": "array", "items": {}, "properties": {}})).is_err());
    }
}
