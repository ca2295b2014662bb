//! Lists: create, add contacts (contract); list, get with members, rename, delete, remove a
//! member and import members from CSV (extensions).

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{
    auth::TeamCtx,
    contacts::ContactView,
    error::{ApiError, ApiResult, ErrorBody},
    extract::{csv_body, from_value, parse_id, ApiJson, ApiQuery},
    pagination::{Page, PageMeta, PageParams},
    AppState,
};
use crate::{
    calls::TeamScope,
    domain::{contact::ContactInput, now, required_text, FieldError},
    lists::{self, ListImportError, MembersImported},
    store::lists::{List, MemberOutcome},
};

/// The largest CSV a list import takes (some 500,000 contacts).
pub const IMPORT_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Most contacts one add-contacts-to-list request may carry.
pub const MAX_BATCH: usize = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateListRequest {
    #[schema(min_length = 1, max_length = 255, example = "February follow-up list")]
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListView {
    pub id: String,
    pub name: String,
    /// How many contacts are in the list.
    pub contact_count: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<List> for ListView {
    fn from(l: List) -> Self {
        ListView {
            id: l.id.to_string(),
            name: l.name,
            contact_count: l.contact_count,
            created_at: l.created_at,
            updated_at: l.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreateListResponse {
    pub success: bool,
    pub list_id: String,
    pub list: ListView,
}

/// Create list
#[utoipa::path(post, path = "/api/v1/create-list", tag = "Lists", operation_id = "createList",
    request_body = CreateListRequest,
    responses((status = 201, description = "List created.", body = CreateListResponse)))]
pub async fn create(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiJson(req): ApiJson<CreateListRequest>,
) -> ApiResult<(StatusCode, Json<CreateListResponse>)> {
    let name = required_text("name", &req.name, 255)?;
    let list = state.db.create_list(team.team_id, &name, now()).await?;
    tracing::info!(list_id = %list.id, "list created");
    Ok((
        StatusCode::CREATED,
        Json(CreateListResponse {
            success: true,
            list_id: list.id.to_string(),
            list: list.into(),
        }),
    ))
}

/// One contact or many; each item has the fields of create-contact.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddContactsRequest {
    /// Up to 1000 contacts, each with the fields of `ContactInput`. Items are validated one by
    /// one: an item that does not fit is reported as `invalid` in the results, not refused with a 400.
    #[schema(value_type = Option<Vec<Object>>, max_items = 1000, min_items = 1)]
    pub contacts: Option<Vec<Value>>,
    /// A single contact (the singular form), with the fields of `ContactInput`; validated like an
    /// item of `contacts`.
    #[schema(value_type = Option<Object>)]
    pub contact: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// A new contact was created and added.
    Created,
    /// An existing contact with that phone number was added; its fields were left unchanged.
    Reused,
    /// The contact was already in the list.
    AlreadyInList,
    /// The item was refused (see `reason`); nothing was written for it.
    Invalid,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemResult {
    /// Position of the item in the request (0 for the singular `contact`).
    pub index: usize,
    pub status: ItemStatus,
    pub contact_id: Option<String>,
    /// Why the item was refused, naming the field.
    pub reason: Option<String>,
}

#[derive(Debug, Default, Serialize, ToSchema)]
pub struct AddSummary {
    pub total: usize,
    pub created: usize,
    pub reused: usize,
    pub already_in_list: usize,
    pub invalid: usize,
}

#[derive(Serialize, ToSchema)]
pub struct AddContactsResponse {
    pub success: bool,
    pub list_id: String,
    pub summary: AddSummary,
    /// One entry per item, in request order.
    pub results: Vec<ItemResult>,
}

/// Create or add contacts to list
///
/// Creates or reuses contacts by normalised phone number and adds them to the list. The batch is
/// processed per item: an invalid item is reported with its reason and skipped, and the valid items
/// are written together in one transaction. An existing contact is added as it is (its fields are
/// not changed). The singular route `/api/v1/add-contact-to-list/{list_id}` is the same operation.
#[utoipa::path(post, path = "/api/v1/add-contacts-to-list/{list_id}", tag = "Lists", operation_id = "addContactsToList",
    params(("list_id" = String, Path, description = "List id")),
    request_body = AddContactsRequest,
    responses(
        (status = 200, description = "Contacts processed; see each item's status.", body = AddContactsResponse),
        (status = 404, description = "No such list in your team.", body = ErrorBody),
    ))]
pub async fn add_contacts(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(list_id): Path<String>,
    ApiJson(req): ApiJson<AddContactsRequest>,
) -> ApiResult<Json<AddContactsResponse>> {
    let list_id = parse_id(&list_id, "List")?;
    let (items, place) = match (req.contacts, req.contact) {
        (Some(_), Some(_)) => return Err(ApiError::bad_request("send either `contact` or `contacts`, not both")),
        (None, None) => {
            return Err(ApiError::bad_request(
                "`contacts` (an array) or `contact` (an object) is required",
            ))
        }
        (Some(items), None) => (items, "contacts"),
        (None, Some(item)) => (vec![item], "contact"),
    };
    if items.is_empty() {
        return Err(ApiError::bad_request("contacts must not be empty").with("field", "contacts"));
    }
    if items.len() > MAX_BATCH {
        return Err(
            ApiError::bad_request(format!("at most {MAX_BATCH} contacts per request")).with("field", "contacts"),
        );
    }
    if state.db.get_list(team.team_id, list_id).await?.is_none() {
        return Err(ApiError::NotFound("List not found".into()));
    }
    let validated = items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let at = if place == "contacts" {
                format!("contacts[{i}]")
            } else {
                place.to_owned()
            };
            from_value::<ContactInput>(item, &at)
                .map_err(|(field, reason)| FieldError::new(field, reason))
                .and_then(|input| input.validate(team.region, &format!("{at}.")))
        })
        .collect::<Vec<_>>();
    let outcomes = state.db.add_to_list(team.team_id, list_id, validated, now()).await?;

    let mut summary = AddSummary {
        total: outcomes.len(),
        ..Default::default()
    };
    let results = outcomes
        .into_iter()
        .enumerate()
        .map(|(index, o)| {
            let (status, id, reason) = match o {
                MemberOutcome::Created(id) => (ItemStatus::Created, Some(id), None),
                MemberOutcome::Reused(id) => (ItemStatus::Reused, Some(id), None),
                MemberOutcome::AlreadyInList(id) => (ItemStatus::AlreadyInList, Some(id), None),
                MemberOutcome::Invalid(e) => (ItemStatus::Invalid, None, Some(e.to_string())),
            };
            *match status {
                ItemStatus::Created => &mut summary.created,
                ItemStatus::Reused => &mut summary.reused,
                ItemStatus::AlreadyInList => &mut summary.already_in_list,
                ItemStatus::Invalid => &mut summary.invalid,
            } += 1;
            ItemResult {
                index,
                status,
                contact_id: id.map(|i| i.to_string()),
                reason,
            }
        })
        .collect();
    tracing::info!(%list_id, created = summary.created, reused = summary.reused, invalid = summary.invalid, "contacts added to list");
    Ok(Json(AddContactsResponse {
        success: true,
        list_id: list_id.to_string(),
        summary,
        results,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct GetListResponse {
    pub success: bool,
    pub list: ListView,
    /// A page of members, oldest contact first.
    pub contacts: Vec<ContactView>,
    pub meta: PageMeta,
}

/// Get list with its contacts (extension)
#[utoipa::path(get, path = "/api/v1/lists/{list_id}", tag = "Lists", operation_id = "getList",
    params(("list_id" = String, Path, description = "List id"), PageParams),
    responses(
        (status = 200, description = "The list and a page of its contacts.", body = GetListResponse),
        (status = 404, description = "No such list in your team.", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(list_id): Path<String>,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<GetListResponse>> {
    let list_id = parse_id(&list_id, "List")?;
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    let list = state
        .db
        .get_list(team.team_id, list_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("List not found".into()))?;
    let rows = state.db.list_members(list_id, page.seek()).await?;
    let (rows, meta) = page.finish(rows, |c| c.id);
    Ok(Json(GetListResponse {
        success: true,
        list: list.into(),
        contacts: rows.into_iter().map(Into::into).collect(),
        meta,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ListListsResponse {
    pub success: bool,
    pub lists: Vec<ListView>,
    pub meta: PageMeta,
}

/// List lists (extension)
#[utoipa::path(get, path = "/api/v1/lists", tag = "Lists", operation_id = "listLists",
    params(PageParams),
    responses((status = 200, description = "A page of lists, oldest first (order=desc: newest first).", body = ListListsResponse)))]
pub async fn list(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<ListListsResponse>> {
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    let rows = state.db.list_lists(team.team_id, page.seek()).await?;
    let (rows, meta) = page.finish(rows, |l| l.id);
    Ok(Json(ListListsResponse {
        success: true,
        lists: rows.into_iter().map(Into::into).collect(),
        meta,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameListRequest {
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct ListResponse {
    pub success: bool,
    pub list: ListView,
}

/// Rename list (extension)
#[utoipa::path(patch, path = "/api/v1/lists/{list_id}", tag = "Lists", operation_id = "updateList",
    params(("list_id" = String, Path, description = "List id")),
    request_body = RenameListRequest,
    responses((status = 200, description = "List renamed.", body = ListResponse)))]
pub async fn rename(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(list_id): Path<String>,
    ApiJson(req): ApiJson<RenameListRequest>,
) -> ApiResult<Json<ListResponse>> {
    let list_id = parse_id(&list_id, "List")?;
    let name = required_text("name", &req.name, 255)?;
    let list = state
        .db
        .rename_list(team.team_id, list_id, &name, now())
        .await?
        .ok_or_else(|| ApiError::NotFound("List not found".into()))?;
    Ok(Json(ListResponse {
        success: true,
        list: list.into(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct DeleteListResponse {
    pub success: bool,
    pub list_id: String,
    pub deleted: bool,
}

/// Delete list (extension)
///
/// Deletes the list and its memberships; the contacts stay.
#[utoipa::path(delete, path = "/api/v1/lists/{list_id}", tag = "Lists", operation_id = "deleteList",
    params(("list_id" = String, Path, description = "List id")),
    responses((status = 200, description = "List deleted.", body = DeleteListResponse)))]
pub async fn delete(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(list_id): Path<String>,
) -> ApiResult<Json<DeleteListResponse>> {
    let list_id = parse_id(&list_id, "List")?;
    if !state.db.delete_list(team.team_id, list_id).await? {
        return Err(ApiError::NotFound("List not found".into()));
    }
    tracing::info!(%list_id, "list deleted");
    Ok(Json(DeleteListResponse {
        success: true,
        list_id: list_id.to_string(),
        deleted: true,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct RemoveMemberResponse {
    pub success: bool,
    pub list_id: String,
    pub contact_id: String,
    pub removed: bool,
}

/// Remove contact from list (extension)
///
/// Takes the contact out of the list; the contact stays. 404 when it is not in the list.
#[utoipa::path(delete, path = "/api/v1/lists/{list_id}/contacts/{contact_id}", tag = "Lists", operation_id = "removeContactFromList",
    params(("list_id" = String, Path, description = "List id"), ("contact_id" = String, Path, description = "Contact id")),
    responses((status = 200, description = "Contact removed from the list.", body = RemoveMemberResponse)))]
pub async fn remove_member(
    State(state): State<AppState>,
    team: TeamCtx,
    Path((list_id, contact_id)): Path<(String, String)>,
) -> ApiResult<Json<RemoveMemberResponse>> {
    let list_id = parse_id(&list_id, "List")?;
    let contact_id = parse_id(&contact_id, "Contact in the list")?;
    if state.db.get_list(team.team_id, list_id).await?.is_none() {
        return Err(ApiError::NotFound("List not found".into()));
    }
    if !state.db.remove_member(team.team_id, list_id, contact_id, now()).await? {
        return Err(ApiError::NotFound("Contact in the list not found".into()));
    }
    Ok(Json(RemoveMemberResponse {
        success: true,
        list_id: list_id.to_string(),
        contact_id: contact_id.to_string(),
        removed: true,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct ImportMembersResponse {
    pub success: bool,
    pub list_id: String,
    #[serde(flatten)]
    pub imported: MembersImported,
}

/// Import contacts into a list from CSV (extension)
///
/// A `text/csv` body with a header row. Columns: `phone_number` (required), `first_name`,
/// `last_name`, `email`, `title`, `company`, `address`, `location`, `timezone`, and
/// `metadata.<key>` (text); others are ignored and named in `ignored_columns`. Each row's contact
/// is created or reused by normalised phone number and added to the list, like
/// add-contacts-to-list. The file is read as it arrives and written in batches of 1000 rows, each
/// batch in one transaction; refused rows are reported by line. Importing the same file again
/// changes nothing. At most 64 MiB.
#[utoipa::path(post, path = "/api/v1/lists/{list_id}/import", tag = "Lists", operation_id = "importListMembers",
    params(("list_id" = String, Path, description = "List id")),
    request_body(content = String, content_type = "text/csv",
        example = "phone_number,first_name,last_name,metadata.source\n0429 069 971,Ava,Smith,open home\n"),
    responses(
        (status = 200, description = "What the import did.", body = ImportMembersResponse),
        (status = 404, description = "No such list in your team.", body = ErrorBody),
        (status = 413, description = "The file is over 64 MiB.", body = ErrorBody),
    ))]
pub async fn import(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(list_id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ImportMembersResponse>> {
    let list_id = parse_id(&list_id, "List")?;
    // Another team's list is a 404 whatever the body.
    if state.db.get_list(team.team_id, list_id).await?.is_none() {
        return Err(ApiError::NotFound("List not found".into()));
    }
    let rows = csv_body(&headers, body, IMPORT_MAX_BYTES, lists::IMPORT_BATCH).await?;
    let imported = lists::import_members(&state.db, &TeamScope::from(&team), list_id, rows)
        .await
        .map_err(|e| match e {
            ListImportError::NoSuchList => ApiError::NotFound(e.to_string()),
            e @ ListImportError::NoNumberColumn => FieldError::new("body", e.to_string()).into(),
            ListImportError::Csv(c) => c.into(),
            ListImportError::Store(s) => s.into(),
        })?;
    Ok(Json(ImportMembersResponse {
        success: true,
        list_id: list_id.to_string(),
        imported,
    }))
}
