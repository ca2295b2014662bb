//! Upsert keys: a JSONPath into an object's data naming the value that identifies it.

use serde_json::Value;
use serde_json_path::JsonPath;

use super::FieldError;

/// Tried in order when the request names no `upsert_key`, as the contract documents.
pub const DEFAULT_UPSERT_KEYS: [&str; 2] = ["$.external_ids.rex.property_id", "$.id"];

/// A parsed upsert key with the text it came from (stored beside the object).
pub struct UpsertKey {
    pub text: String,
    path: JsonPath,
}

impl UpsertKey {
    pub fn parse(field: &str, text: &str) -> Result<Self, FieldError> {
        if text.len() > 255 {
            return Err(FieldError::new(field, "must be at most 255 characters"));
        }
        let path =
            JsonPath::parse(text).map_err(|e| FieldError::new(field, format!("`{text}` is not a JSONPath ({e})")))?;
        Ok(Self {
            text: text.to_owned(),
            path,
        })
    }

    /// The key's value in `data`: `Ok(None)` when the path matches nothing, an error when it matches
    /// several nodes or a value that cannot identify an object (only strings and numbers can).
    pub fn value_in(&self, data: &Value) -> Result<Option<String>, String> {
        let nodes = self.path.query(data).all();
        match nodes.as_slice() {
            [] => Ok(None),
            [Value::String(s)] if s.is_empty() => Ok(None),
            [Value::String(s)] if s.len() > 255 => {
                Err(format!("the value at {} is longer than 255 characters", self.text))
            }
            [Value::String(s)] => Ok(Some(s.clone())),
            [Value::Number(n)] => Ok(Some(n.to_string())),
            [Value::Null] => Ok(None),
            [_] => Err(format!("the value at {} must be a string or a number", self.text)),
            _ => Err(format!("{} matches more than one value", self.text)),
        }
    }
}

/// The key that identifies `data`: the requested one (which must be present), else the first default
/// that is present, else none (the object is then always created anew).
pub fn resolve(requested: Option<&str>, data: &Value) -> Result<Option<(String, String)>, FieldError> {
    if let Some(text) = requested {
        let key = UpsertKey::parse("upsert_key", text)?;
        return match key.value_in(data).map_err(|e| FieldError::new("upsert_key", e))? {
            Some(v) => Ok(Some((key.text, v))),
            None => Err(FieldError::new("upsert_key", format!("{text} has no value in data"))),
        };
    }
    for text in DEFAULT_UPSERT_KEYS {
        let key = UpsertKey::parse("upsert_key", text)?;
        if let Some(v) = key.value_in(data).map_err(|e| FieldError::new("data", e))? {
            return Ok(Some((key.text, v)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_prefer_rex_then_id() {
        let both = json!({"id": 7, "external_ids": {"rex": {"property_id": "R-1"}}});
        assert_eq!(
            resolve(None, &both).unwrap(),
            Some(("$.external_ids.rex.property_id".into(), "R-1".into()))
        );
        assert_eq!(
            resolve(None, &json!({"id": 7})).unwrap(),
            Some(("$.id".into(), "7".into()))
        );
        assert_eq!(resolve(None, &json!({"name": "x"})).unwrap(), None);
    }

    #[test]
    fn requested_key_must_exist_and_be_scalar() {
        let data = json!({"crm": {"ref": "A9"}, "tags": ["a", "b"]});
        assert_eq!(resolve(Some("$.crm.ref"), &data).unwrap().unwrap().1, "A9");
        assert!(resolve(Some("$.missing"), &data).is_err());
        assert!(resolve(Some("$.tags"), &data).is_err());
        assert!(resolve(Some("$.tags[*]"), &data).is_err());
        assert!(resolve(Some("not a path"), &data).is_err());
    }
}
