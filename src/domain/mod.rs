//! Domain rules: validation and normalisation with no I/O. Handlers call these before touching the store.

pub mod api_key;
pub mod automation;
pub mod call;
pub mod contact;
pub mod json_path;
pub mod object_schema;
pub mod password;
pub mod phone;
pub mod sealed;
pub mod signature;
pub mod template;
pub mod timezone;
pub mod web_call;

use chrono::{DateTime, SubsecRound, Utc};
use uuid::Uuid;

/// A new time-ordered id (UUIDv7): ids sort by creation, which cursor pagination relies on.
pub fn new_id() -> Uuid {
    Uuid::now_v7()
}

/// Now, at the microsecond precision both databases keep, so what we return equals what we read back.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A field-level validation failure; the API turns it into a 400 naming the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl std::error::Error for FieldError {}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Checks an optional free-text field: trimmed, empty becomes absent, at most `max` characters.
pub fn optional_text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, FieldError> {
    match value.map(|v| v.trim().to_owned()) {
        None => Ok(None),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) if v.chars().count() > max => Err(FieldError::new(field, format!("must be at most {max} characters"))),
        Some(v) => Ok(Some(v)),
    }
}

/// Checks a required text field: trimmed, 1..=max characters.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    optional_text(field, Some(value.to_owned()), max)?.ok_or_else(|| FieldError::new(field, "must not be empty"))
}

/// For PATCH bodies: tells a field left out (`None`) from one set to null (`Some(None)`). Use with
/// `#[serde(default, deserialize_with = "crate::domain::present")]`.
pub fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}
