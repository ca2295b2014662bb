//! Contacts: who we call. Identity is the normalised phone number within a team.

use phonenumber::country;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{optional_text, phone, FieldError};

pub const NAME_MAX: usize = 255;
pub const ADDRESS_MAX: usize = 1000;
/// Serialised size cap for free-form contact metadata.
pub const METADATA_MAX_BYTES: usize = 16 * 1024;

/// A contact as a client sends it (create-contact, list items). Unknown fields are refused so that a
/// misspelt field is an error, not silently lost data.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    /// Any common format; normalised to E.164 with the team's region (`0429069971` → `+61429069971`).
    #[schema(example = "0429069971", max_length = 32)]
    pub phone_number: String,
    #[schema(max_length = 255)]
    pub first_name: Option<String>,
    #[schema(max_length = 255)]
    pub last_name: Option<String>,
    #[schema(max_length = 255, format = "email")]
    pub email: Option<String>,
    #[schema(max_length = 255)]
    pub title: Option<String>,
    #[schema(max_length = 255)]
    pub company: Option<String>,
    /// Street address.
    #[schema(max_length = 1000)]
    pub address: Option<String>,
    /// City, region or country.
    #[schema(max_length = 255)]
    pub location: Option<String>,
    /// IANA time zone, e.g. `Australia/Sydney`.
    #[schema(max_length = 64)]
    pub timezone: Option<String>,
    /// Free-form JSON object (at most 16 KiB).
    pub metadata: Option<Map<String, Value>>,
}

/// A change to a contact (PATCH): a field left out stays as it is, one set to null is cleared, and
/// `metadata` is merged key by key (a key set to null is removed). The phone number can be changed
/// but not cleared.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    /// Any common format; normalised like on create.
    #[schema(example = "0429069971", max_length = 32)]
    pub phone_number: Option<String>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub first_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub last_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>, max_length = 255, format = "email")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub company: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>, max_length = 1000)]
    pub address: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>, max_length = 255)]
    pub location: Option<Option<String>>,
    /// IANA time zone; null to clear it.
    #[serde(default, deserialize_with = "super::present")]
    #[schema(value_type = Option<String>, max_length = 64)]
    pub timezone: Option<Option<String>>,
    /// Keys to set (a null value removes the key); keys not named are kept.
    pub metadata: Option<Map<String, Value>>,
}

impl ContactPatch {
    /// The contact as it becomes: `current` with the patch applied, to validate like a new one.
    pub fn apply(self, current: ContactInput) -> ContactInput {
        fn pick(change: Option<Option<String>>, old: Option<String>) -> Option<String> {
            change.unwrap_or(old)
        }
        let mut metadata = current.metadata.unwrap_or_default();
        for (k, v) in self.metadata.unwrap_or_default() {
            if v.is_null() {
                metadata.remove(&k);
            } else {
                metadata.insert(k, v);
            }
        }
        ContactInput {
            phone_number: self.phone_number.unwrap_or(current.phone_number),
            first_name: pick(self.first_name, current.first_name),
            last_name: pick(self.last_name, current.last_name),
            email: pick(self.email, current.email),
            title: pick(self.title, current.title),
            company: pick(self.company, current.company),
            address: pick(self.address, current.address),
            location: pick(self.location, current.location),
            timezone: pick(self.timezone, current.timezone),
            metadata: Some(metadata),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.phone_number.is_none()
            && self.first_name.is_none()
            && self.last_name.is_none()
            && self.email.is_none()
            && self.title.is_none()
            && self.company.is_none()
            && self.address.is_none()
            && self.location.is_none()
            && self.timezone.is_none()
            && self.metadata.is_none()
    }
}

/// A contact that passed validation, phone in E.164.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidContact {
    pub phone_number: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub title: Option<String>,
    pub company: Option<String>,
    pub address: Option<String>,
    pub location: Option<String>,
    pub timezone: Option<String>,
    pub metadata: Map<String, Value>,
}

impl ContactInput {
    /// Validates every field; `prefix` names the field's place in the request (`contacts[3].`).
    pub fn validate(self, region: country::Id, prefix: &str) -> Result<ValidContact, FieldError> {
        let f = |name: &str| format!("{prefix}{name}");
        let email = optional_text(&f("email"), self.email, NAME_MAX)?;
        if let Some(email) = &email {
            if !email_address::EmailAddress::is_valid(email) {
                return Err(FieldError::new(
                    f("email"),
                    format!("`{email}` is not a valid email address"),
                ));
            }
        }
        let timezone = optional_text(&f("timezone"), self.timezone, 64)?;
        if let Some(tz) = &timezone {
            if tz.parse::<chrono_tz::Tz>().is_err() {
                return Err(FieldError::new(
                    f("timezone"),
                    format!("`{tz}` is not an IANA time zone (e.g. Australia/Sydney)"),
                ));
            }
        }
        let metadata = self.metadata.unwrap_or_default();
        if serde_json::to_vec(&metadata).map(|v| v.len()).unwrap_or(usize::MAX) > METADATA_MAX_BYTES {
            return Err(FieldError::new(f("metadata"), "must be at most 16 KiB of JSON"));
        }
        Ok(ValidContact {
            phone_number: phone::normalize(&f("phone_number"), &self.phone_number, region)?,
            first_name: optional_text(&f("first_name"), self.first_name, NAME_MAX)?,
            last_name: optional_text(&f("last_name"), self.last_name, NAME_MAX)?,
            email,
            title: optional_text(&f("title"), self.title, NAME_MAX)?,
            company: optional_text(&f("company"), self.company, NAME_MAX)?,
            address: optional_text(&f("address"), self.address, ADDRESS_MAX)?,
            location: optional_text(&f("location"), self.location, NAME_MAX)?,
            timezone,
            metadata,
        })
    }
}

/// "John Smith" from the parts that exist.
pub fn full_name(first: Option<&str>, last: Option<&str>) -> Option<String> {
    let name = [first, last].into_iter().flatten().collect::<Vec<_>>().join(" ");
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(phone: &str) -> ContactInput {
        serde_json::from_value(serde_json::json!({ "phone_number": phone })).unwrap()
    }

    #[test]
    fn a_patch_keeps_what_it_does_not_name_and_clears_nulls() {
        let mut current = input("+61429069971");
        current.first_name = Some("Ada".into());
        current.email = Some("ada@example.com".into());
        current.metadata = Some(serde_json::json!({"a": 1, "b": 2}).as_object().unwrap().clone());
        let patch: ContactPatch = serde_json::from_value(serde_json::json!({
            "email": null, "company": "Acme", "metadata": {"a": null, "c": 3}
        }))
        .unwrap();
        assert!(!patch.is_empty());
        let next = patch.apply(current);
        assert_eq!(next.phone_number, "+61429069971");
        assert_eq!(next.first_name.as_deref(), Some("Ada"));
        assert_eq!(next.email, None);
        assert_eq!(next.company.as_deref(), Some("Acme"));
        assert_eq!(
            serde_json::Value::Object(next.metadata.unwrap()),
            serde_json::json!({"b": 2, "c": 3})
        );
        let empty: ContactPatch = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn normalises_and_trims() {
        let mut c = input("0429069971");
        c.first_name = Some("  John ".into());
        c.last_name = Some("".into());
        let v = c.validate(country::Id::AU, "").unwrap();
        assert_eq!(v.phone_number, "+61429069971");
        assert_eq!(v.first_name.as_deref(), Some("John"));
        assert_eq!(v.last_name, None);
    }

    #[test]
    fn names_the_failing_field_with_its_place() {
        let mut c = input("0429069971");
        c.email = Some("not-an-email".into());
        let err = c.validate(country::Id::AU, "contacts[2].").unwrap_err();
        assert_eq!(err.field, "contacts[2].email");
        let mut c = input("0429069971");
        c.timezone = Some("Mars/Olympus".into());
        assert_eq!(c.validate(country::Id::AU, "").unwrap_err().field, "timezone");
        let mut c = input("0429069971");
        c.first_name = Some("x".repeat(256));
        assert_eq!(c.validate(country::Id::AU, "").unwrap_err().field, "first_name");
    }

    #[test]
    fn full_name_joins_present_parts() {
        assert_eq!(full_name(Some("John"), Some("Smith")).as_deref(), Some("John Smith"));
        assert_eq!(full_name(None, Some("Smith")).as_deref(), Some("Smith"));
        assert_eq!(full_name(None, None), None);
    }
}
