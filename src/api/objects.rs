//! Object types and objects: create type, get type by name, upsert, link (contract); get and list
//! objects (extensions).

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::types::Json as DbJson;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{
    auth::TeamCtx,
    error::{ApiError, ApiResult, ErrorBody},
    extract::{parse_id, ApiJson, ApiQuery},
    pagination::{Page, PageMeta, SortOrder},
    AppState,
};
use crate::{
    domain::{
        new_id, now,
        object_schema::{self, Violation},
        optional_text, required_text, FieldError,
    },
    objects::{self, CheckedObject, TypeRef},
    store::{
        objects::{Link, LinkRefusal, Object, ObjectType, Upsert},
        OnUnique,
    },
};

/// Serialised size cap for an object's data.
pub use crate::objects::DATA_MAX_BYTES;

pub use crate::domain::object_schema::ValidationMode;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateObjectTypeRequest {
    /// Lower-case identifier: a letter, then letters, digits or underscores (at most 64).
    #[schema(pattern = "^[a-z][a-z0-9_]*$", max_length = 64, example = "property")]
    pub type_name: String,
    #[schema(min_length = 1, max_length = 255, example = "Property")]
    pub display_name: String,
    /// Either a map of field → type (string, number, integer, boolean, date, datetime, object,
    /// array), e.g. `{"address": "string", "bedrooms": "number"}`, or a JSON Schema for an object.
    #[schema(value_type = Object)]
    pub schema: Value,
    #[schema(max_length = 1000)]
    pub description: Option<String>,
    #[serde(default)]
    pub validation_mode: ValidationMode,
    /// When true a contact can be linked to at most one object of this type, and an upsert with
    /// `contact_id` updates that contact's object.
    #[serde(default)]
    pub unique_by_contact: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectTypeView {
    pub id: String,
    pub type_name: String,
    pub display_name: String,
    pub description: Option<String>,
    /// The schema as it was given.
    #[schema(value_type = Object)]
    pub schema: Value,
    /// `shorthand` (field → type map) or `json_schema`.
    pub schema_form: String,
    pub validation_mode: ValidationMode,
    pub unique_by_contact: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<ObjectType> for ObjectTypeView {
    fn from(t: ObjectType) -> Self {
        ObjectTypeView {
            id: t.id.to_string(),
            type_name: t.type_name,
            display_name: t.display_name,
            description: t.description,
            schema: t.schema.0,
            schema_form: t.schema_form,
            validation_mode: ValidationMode::parse(&t.validation_mode),
            unique_by_contact: t.unique_by_contact,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreateObjectTypeResponse {
    pub success: bool,
    pub object_type_id: String,
    pub object_type: ObjectTypeView,
}

fn check_type_name(name: &str) -> Result<(), FieldError> {
    let mut chars = name.chars();
    let ok = name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            "type_name",
            "must match ^[a-z][a-z0-9_]*$ and be at most 64 characters",
        ))
    }
}

/// Create object type
///
/// The legacy route `/api/v1/create-object-type` is the same operation.
#[utoipa::path(post, path = "/api/v1/object-types", tag = "Objects", operation_id = "createObjectType",
    request_body = CreateObjectTypeRequest,
    responses(
        (status = 201, description = "Object type created.", body = CreateObjectTypeResponse),
        (status = 409, description = "Your team already has a type with this name.", body = ErrorBody),
    ))]
pub async fn create_type(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiJson(req): ApiJson<CreateObjectTypeRequest>,
) -> ApiResult<(StatusCode, Json<CreateObjectTypeResponse>)> {
    check_type_name(&req.type_name)?;
    let display_name = required_text("display_name", &req.display_name, 255)?;
    let description = optional_text("description", req.description, 1000)?;
    let (form, json_schema) =
        object_schema::compile(&req.schema).map_err(|reason| FieldError::new("schema", reason))?;
    let at = now();
    let t = ObjectType {
        id: new_id(),
        team_id: team.team_id,
        type_name: req.type_name,
        display_name,
        description,
        schema: DbJson(req.schema),
        schema_form: form.as_str().to_owned(),
        json_schema: DbJson(json_schema),
        validation_mode: req.validation_mode.as_str().to_owned(),
        unique_by_contact: req.unique_by_contact,
        created_at: at,
        updated_at: at,
    };
    state
        .db
        .create_object_type(&t)
        .await
        .on_unique(|| ApiError::conflict(format!("an object type named `{}` already exists", t.type_name)))?;
    tracing::info!(object_type_id = %t.id, type_name = %t.type_name, "object type created");
    let response = CreateObjectTypeResponse {
        success: true,
        object_type_id: t.id.to_string(),
        object_type: t.into(),
    };
    Ok((StatusCode::CREATED, Json(response)))
}

#[derive(Serialize, ToSchema)]
pub struct GetObjectTypeResponse {
    pub success: bool,
    pub object_type: ObjectTypeView,
}

/// Get object type by name
#[utoipa::path(get, path = "/api/v1/object-types/by-name/{type_name}", tag = "Objects", operation_id = "getObjectTypeByName",
    params(("type_name" = String, Path, description = "The type's name", pattern = "^[a-z][a-z0-9_]*$")),
    responses(
        (status = 200, description = "Object type returned.", body = GetObjectTypeResponse),
        (status = 400, description = "The name is not a valid type name.", body = ErrorBody),
        (status = 404, description = "No such type in your team.", body = ErrorBody),
    ))]
pub async fn type_by_name(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(type_name): Path<String>,
) -> ApiResult<Json<GetObjectTypeResponse>> {
    check_type_name(&type_name)?;
    let t = state
        .db
        .object_type_by_name(team.team_id, &type_name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("object type `{type_name}` not found")))?;
    Ok(Json(GetObjectTypeResponse {
        success: true,
        object_type: t.into(),
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpsertObjectRequest {
    /// The object's type by name (or give `object_type_id`).
    pub type_name: Option<String>,
    /// The object's type by id (or give `type_name`).
    pub object_type_id: Option<String>,
    /// The object's JSON (at most 256 KiB).
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    /// JSONPath into `data` of the value identifying the object. Default: the first of
    /// `$.external_ids.rex.property_id`, `$.id` present in `data`; with neither, a new object is created.
    #[schema(max_length = 255, example = "$.external_ids.rex.property_id")]
    pub upsert_key: Option<String>,
    /// A contact of your team to link the object to.
    pub contact_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LinkView {
    pub object_id: String,
    pub contact_id: String,
    pub metadata: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Link> for LinkView {
    fn from(l: Link) -> Self {
        LinkView {
            object_id: l.object_id.to_string(),
            contact_id: l.contact_id.to_string(),
            metadata: l.metadata.0,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectView {
    pub id: String,
    pub object_type_id: String,
    pub type_name: String,
    #[schema(value_type = Object)]
    pub data: Value,
    /// The JSONPath that identifies this object, if any.
    pub upsert_key: Option<String>,
    /// The value found at `upsert_key` (as text).
    pub upsert_value: Option<String>,
    /// Contacts linked to the object.
    pub contacts: Vec<LinkView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ObjectView {
    fn new(o: Object, links: Vec<Link>) -> Self {
        ObjectView {
            id: o.id.to_string(),
            object_type_id: o.object_type_id.to_string(),
            type_name: o.type_name,
            data: o.data.0,
            upsert_key: o.upsert_key,
            upsert_value: o.upsert_value,
            contacts: links.into_iter().map(Into::into).collect(),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct UpsertObjectResponse {
    pub success: bool,
    pub object_id: String,
    /// True when a new object was created, false when an existing one was updated.
    pub created: bool,
    pub object: ObjectView,
    /// Schema violations of `data`; present (possibly empty) when the type's mode is `warn`.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub violations: Option<Vec<Violation>>,
}

async fn find_type(state: &AppState, team: &TeamCtx, name: &str) -> ApiResult<ObjectType> {
    state
        .db
        .object_type_by_name(team.team_id, name)
        .await?
        .ok_or_else(|| ApiError::NotFound("object type not found".into()))
}

async fn require_contact(state: &AppState, team: &TeamCtx, raw: &str) -> ApiResult<Uuid> {
    let id = parse_id(raw, "Contact")?;
    match state.db.get_contact(team.team_id, id).await? {
        Some(_) => Ok(id),
        None => Err(ApiError::NotFound("Contact not found".into())),
    }
}

pub(crate) fn refusal(r: LinkRefusal, type_name: &str) -> ApiError {
    match r {
        LinkRefusal::ContactHasOther(other) => ApiError::conflict(format!(
            "object type `{type_name}` is unique by contact and the contact is already linked to another object of it"
        ))
        .with("object_id", other.to_string()),
    }
}

/// Upsert object
///
/// Creates or updates the object identified by `upsert_key` in `data` (default: the first of
/// `$.external_ids.rex.property_id`, `$.id`), then links `contact_id` if given. Data is checked
/// against the type's schema according to its `validation_mode`.
#[utoipa::path(post, path = "/api/v1/upsert-object", tag = "Objects", operation_id = "upsertObject",
    request_body = UpsertObjectRequest,
    responses(
        (status = 200, description = "Object updated.", body = UpsertObjectResponse),
        (status = 201, description = "Object created.", body = UpsertObjectResponse),
        (status = 404, description = "Unknown object type or contact.", body = ErrorBody),
        (status = 409, description = "The type is unique by contact and the contact has another object of it.", body = ErrorBody),
    ))]
pub async fn upsert(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiJson(req): ApiJson<UpsertObjectRequest>,
) -> ApiResult<(StatusCode, Json<UpsertObjectResponse>)> {
    let type_ref = TypeRef {
        name: req.type_name.as_deref(),
        id: req.object_type_id.as_deref(),
    };
    let checked = objects::check(
        &state.db,
        team.team_id,
        "",
        type_ref,
        req.data,
        req.upsert_key.as_deref(),
    )
    .await?;
    let contact_id = match req.contact_id.as_deref() {
        Some(raw) => Some(require_contact(&state, &team, raw).await?),
        None => None,
    };
    let CheckedObject {
        object_type: t,
        key,
        data,
        violations,
    } = checked;
    let mode = ValidationMode::parse(&t.validation_mode);
    let upsert = Upsert {
        object_type: &t,
        key,
        data,
        contact_id,
    };
    let (id, created, _) = state
        .db
        .upsert_object(upsert, now())
        .await
        .map_err(|e| e.refused_as(|r| refusal(r, &t.type_name)))?;
    let object = state
        .db
        .get_object(team.team_id, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("upserted object vanished"))?;
    let links = state.db.object_links(id).await?;
    tracing::info!(object_id = %id, created, type_name = %t.type_name, "object upserted");
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let response = UpsertObjectResponse {
        success: true,
        object_id: id.to_string(),
        created,
        object: ObjectView::new(object, links),
        violations: if mode == ValidationMode::Warn { violations } else { None },
    };
    Ok((status, Json(response)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    pub contact_id: String,
    /// Free-form JSON about the link (replaces the link's metadata when given again).
    pub metadata: Option<Map<String, Value>>,
}

#[derive(Serialize, ToSchema)]
pub struct LinkResponse {
    pub success: bool,
    /// True when the link is new; linking again is not an error and makes no duplicate.
    pub created: bool,
    pub link: LinkView,
}

/// Link contact to object
///
/// The alias `/api/v1/link-object-to-contact/{object_id}` is the same operation.
#[utoipa::path(post, path = "/api/v1/link-contact-to-object/{object_id}", tag = "Objects", operation_id = "linkContactToObject",
    params(("object_id" = String, Path, description = "Object id")),
    request_body = LinkRequest,
    responses(
        (status = 200, description = "Contact linked.", body = LinkResponse),
        (status = 404, description = "Unknown object or contact.", body = ErrorBody),
        (status = 409, description = "The type is unique by contact and the contact has another object of it.", body = ErrorBody),
    ))]
pub async fn link(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(object_id): Path<String>,
    ApiJson(req): ApiJson<LinkRequest>,
) -> ApiResult<Json<LinkResponse>> {
    let object_id = parse_id(&object_id, "Object")?;
    if let Some(m) = &req.metadata {
        if serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX) > 16 * 1024 {
            return Err(FieldError::new("metadata", "must be at most 16 KiB of JSON").into());
        }
    }
    let object = state
        .db
        .get_object(team.team_id, object_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Object not found".into()))?;
    let contact_id = require_contact(&state, &team, &req.contact_id).await?;
    let (link, created) = state
        .db
        .link_contact(&object, contact_id, req.metadata, now())
        .await
        .map_err(|e| e.refused_as(|r| refusal(r, &object.type_name)))?;
    Ok(Json(LinkResponse {
        success: true,
        created,
        link: link.into(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct GetObjectResponse {
    pub success: bool,
    pub object: ObjectView,
}

/// Get object (extension)
#[utoipa::path(get, path = "/api/v1/objects/{object_id}", tag = "Objects", operation_id = "getObject",
    params(("object_id" = String, Path, description = "Object id")),
    responses(
        (status = 200, description = "Object found.", body = GetObjectResponse),
        (status = 404, description = "No such object in your team.", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<GetObjectResponse>> {
    let id = parse_id(&id, "Object")?;
    let object = state
        .db
        .get_object(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Object not found".into()))?;
    let links = state.db.object_links(id).await?;
    Ok(Json(GetObjectResponse {
        success: true,
        object: ObjectView::new(object, links),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListObjectsParams {
    /// Only objects of this type.
    pub type_name: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// `meta.next_cursor` of the previous page.
    #[param(value_type = Option<uuid::Uuid>)]
    pub cursor: Option<String>,
    /// `asc` (default): oldest first; `desc`: newest first.
    pub order: Option<SortOrder>,
}

#[derive(Serialize, ToSchema)]
pub struct ListObjectsResponse {
    pub success: bool,
    pub objects: Vec<ObjectView>,
    pub meta: PageMeta,
}

/// List objects (extension)
///
/// Objects oldest first (`order=desc`: newest first), optionally of one type, with cursor pagination. Listed objects carry no
/// `contacts` (get the object for its links).
#[utoipa::path(get, path = "/api/v1/objects", tag = "Objects", operation_id = "listObjects",
    params(ListObjectsParams),
    responses(
        (status = 200, description = "A page of objects.", body = ListObjectsResponse),
        (status = 404, description = "Unknown object type.", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<ListObjectsParams>,
) -> ApiResult<Json<ListObjectsResponse>> {
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    let type_id = match q.type_name.as_deref().filter(|t| !t.is_empty()) {
        Some(name) => Some(find_type(&state, &team, name).await?.id),
        None => None,
    };
    let rows = state.db.list_objects(team.team_id, type_id, page.seek()).await?;
    let (rows, meta) = page.finish(rows, |o| o.id);
    let objects = rows.into_iter().map(|o| ObjectView::new(o, Vec::new())).collect();
    Ok(Json(ListObjectsResponse {
        success: true,
        objects,
        meta,
    }))
}
