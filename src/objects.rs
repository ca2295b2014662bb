//! Object data checked against its type: the one rule, used by upsert-object, by calls created
//! with an object and by automation steps. Size, upsert key, then the type's schema by its
//! `validation_mode` (`strict` refuses violations, `warn` reports them, `off` does not look).
//! Reads only; the caller writes.

use serde_json::{Map, Value};
use uuid::Uuid;

use crate::{
    domain::{
        json_path,
        object_schema::{self, ValidationMode, Violation},
        FieldError,
    },
    store::{objects::ObjectType, Db, StoreError},
};

/// Largest object data accepted, as compact JSON.
pub const DATA_MAX_BYTES: usize = 256 * 1024;

/// Object data checked against its type, ready to upsert.
#[derive(Debug)]
pub struct CheckedObject {
    pub object_type: ObjectType,
    /// (JSONPath, value) identifying the object, when the data has one.
    pub key: Option<(String, String)>,
    pub data: Value,
    /// Schema violations, when the type's mode is `warn` (a `strict` type refuses them).
    pub violations: Option<Vec<Violation>>,
}

/// Why object data was refused.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("object type not found")]
    UnknownType,
    /// A `strict` type's schema is broken by the data.
    #[error("{message}")]
    Violations { message: String, errors: Vec<Violation> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which type, as a request names it: by name or by id (exactly one).
#[derive(Debug, Clone, Copy)]
pub struct TypeRef<'a> {
    pub name: Option<&'a str>,
    pub id: Option<&'a str>,
}

/// Finds the type in the team and checks `data` against it. `prefix` names where the fields sit
/// in the request (`"object."` in create-phone-call, `""` in upsert-object).
pub async fn check(
    db: &Db,
    team_id: Uuid,
    prefix: &str,
    type_ref: TypeRef<'_>,
    data: Map<String, Value>,
    upsert_key: Option<&str>,
) -> Result<CheckedObject, ObjectError> {
    let data = Value::Object(data);
    if serde_json::to_vec(&data).map(|v| v.len()).unwrap_or(usize::MAX) > DATA_MAX_BYTES {
        return Err(FieldError::new(format!("{prefix}data"), "must be at most 256 KiB of JSON").into());
    }
    let key =
        json_path::resolve(upsert_key, &data).map_err(|e| FieldError::new(format!("{prefix}{}", e.field), e.reason))?;
    let object_type = find_type(db, team_id, prefix, type_ref).await?;
    let mode = ValidationMode::parse(&object_type.validation_mode);
    let violations = match mode {
        ValidationMode::Off => None,
        _ => Some(
            object_schema::check(&object_type.json_schema.0, &data)
                .await
                .map_err(|e| FieldError::new(format!("{prefix}data"), e.0))?,
        ),
    };
    if let (ValidationMode::Strict, Some(v)) = (mode, &violations) {
        if !v.is_empty() {
            return Err(ObjectError::Violations {
                message: format!(
                    "{prefix}data does not match the `{}` schema ({} violation{})",
                    object_type.type_name,
                    v.len(),
                    if v.len() == 1 { "" } else { "s" }
                ),
                errors: v.clone(),
            });
        }
    }
    Ok(CheckedObject {
        object_type,
        key,
        data,
        violations: violations.filter(|_| mode == ValidationMode::Warn),
    })
}

async fn find_type(db: &Db, team_id: Uuid, prefix: &str, t: TypeRef<'_>) -> Result<ObjectType, ObjectError> {
    let found = match (t.name, t.id) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new(
                format!("{prefix}type_name"),
                format!("give `{prefix}type_name` or `{prefix}object_type_id`, not both"),
            )
            .into())
        }
        (None, None) => {
            return Err(FieldError::new(
                format!("{prefix}type_name"),
                format!("`{prefix}type_name` or `{prefix}object_type_id` is required"),
            )
            .into())
        }
        (Some(name), None) => db.object_type_by_name(team_id, name).await?,
        (None, Some(id)) => match Uuid::parse_str(id) {
            Ok(id) => db.object_type_by_id(team_id, id).await?,
            Err(_) => None,
        },
    };
    found.ok_or(ObjectError::UnknownType)
}
