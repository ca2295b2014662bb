//! Contacts: create (contract); get, list, update and delete (extensions).

use axum::{extract::Path, http::StatusCode, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{
    auth::TeamCtx,
    error::{ApiError, ApiResult, ErrorBody},
    extract::{parse_id, ApiJson, ApiQuery},
    pagination::{Page, PageMeta, SortOrder},
    AppState,
};
use crate::{
    domain::{
        contact::{full_name, ContactInput, ContactPatch},
        new_id, now, phone,
    },
    store::{
        contacts::{Contact, ContactFilter, ContactInUse},
        erasure::EraseRefusal,
        OnUnique,
    },
};
use axum::extract::State;

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactView {
    pub id: String,
    /// E.164.
    pub phone_number: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// First and last name joined.
    pub full_name: Option<String>,
    pub email: Option<String>,
    pub title: Option<String>,
    pub company: Option<String>,
    pub address: Option<String>,
    pub location: Option<String>,
    pub timezone: Option<String>,
    pub metadata: Map<String, Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Contact> for ContactView {
    fn from(c: Contact) -> Self {
        ContactView {
            id: c.id.to_string(),
            full_name: full_name(c.first_name.as_deref(), c.last_name.as_deref()),
            phone_number: c.phone_number,
            first_name: c.first_name,
            last_name: c.last_name,
            email: c.email,
            title: c.title,
            company: c.company,
            address: c.address,
            location: c.location,
            timezone: c.timezone,
            metadata: c.metadata.0,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct CreateContactResponse {
    pub success: bool,
    pub contact_id: String,
    pub contact: ContactView,
}

/// Create contact
///
/// Creates a contact for your team. The phone number is normalised to E.164 with the team's default
/// region; the request fails with 409 when a contact with the same normalised number exists (the
/// body then carries that contact's `contact_id`).
#[utoipa::path(post, path = "/api/v1/create-contact", tag = "Contacts", operation_id = "createContact",
    request_body = ContactInput,
    responses(
        (status = 201, description = "Contact created.", body = CreateContactResponse),
        (status = 409, description = "A contact with this phone number already exists.", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiJson(input): ApiJson<ContactInput>,
) -> ApiResult<(StatusCode, Json<CreateContactResponse>)> {
    let valid = input.validate(team.region, "")?;
    let contact = Contact::new(team.team_id, valid, new_id(), now());
    let taken = ApiError::conflict(format!(
        "Contact already exists with phone number {}",
        contact.phone_number
    ));
    if let Err(err) = state.db.insert_contact(&contact).await.on_unique(|| taken) {
        // The client is told which contact has the number.
        let err = match (
            &err,
            state.db.contact_by_phone(team.team_id, &contact.phone_number).await?,
        ) {
            (ApiError::Conflict { .. }, Some(c)) => err.with("contact_id", c.id.to_string()),
            _ => err,
        };
        return Err(err);
    }
    tracing::info!(contact_id = %contact.id, "contact created");
    let response = CreateContactResponse {
        success: true,
        contact_id: contact.id.to_string(),
        contact: contact.into(),
    };
    Ok((StatusCode::CREATED, Json(response)))
}

#[derive(Serialize, ToSchema)]
pub struct GetContactResponse {
    pub success: bool,
    pub contact: ContactView,
    /// The lists that hold the contact (at most 200).
    pub lists: Vec<MembershipView>,
    /// The objects linked to the contact, with their type's name (at most 200).
    pub objects: Vec<MembershipView>,
}

#[derive(Serialize, ToSchema)]
pub struct MembershipView {
    pub id: String,
    /// The list's name, or the object's type name.
    pub name: String,
}

impl From<crate::store::contacts::Membership> for MembershipView {
    fn from(m: crate::store::contacts::Membership) -> Self {
        MembershipView {
            id: m.id.to_string(),
            name: m.name,
        }
    }
}

/// Get contact (extension)
#[utoipa::path(get, path = "/api/v1/contacts/{contact_id}", tag = "Contacts", operation_id = "getContact",
    params(("contact_id" = String, Path, description = "Contact id")),
    responses(
        (status = 200, description = "Contact found.", body = GetContactResponse),
        (status = 404, description = "No such contact in your team.", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<GetContactResponse>> {
    let id = parse_id(&id, "Contact")?;
    let contact = state
        .db
        .get_contact(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Contact not found".into()))?;
    let (lists, objects) = state.db.contact_memberships(team.team_id, contact.id).await?;
    Ok(Json(GetContactResponse {
        success: true,
        contact: contact.into(),
        lists: lists.into_iter().map(Into::into).collect(),
        objects: objects.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListContactsParams {
    /// Only the contact with this phone number (any format; normalised like on create).
    pub phone_number: Option<String>,
    /// Only contacts with this email address.
    pub email: Option<String>,
    /// Text found anywhere in the contact's name, email or phone number (case-insensitive; at
    /// most 100 characters).
    pub search: Option<String>,
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
pub struct ListContactsResponse {
    pub success: bool,
    pub contacts: Vec<ContactView>,
    pub meta: PageMeta,
}

/// List contacts (extension)
///
/// Contacts oldest first (`order=desc`: newest first), filtered by phone number, email or `search`
/// (text anywhere in the name, email or number), with cursor pagination.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "Contacts", operation_id = "listContacts",
    params(ListContactsParams),
    responses((status = 200, description = "A page of contacts.", body = ListContactsResponse)))]
pub async fn list(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<ListContactsParams>,
) -> ApiResult<Json<ListContactsResponse>> {
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    let filter = contact_filter(q, &team, page.seek())?;
    let rows = state.db.list_contacts(team.team_id, &filter).await?;
    let (rows, meta) = page.finish(rows, |c| c.id);
    Ok(Json(ListContactsResponse {
        success: true,
        contacts: rows.into_iter().map(Into::into).collect(),
        meta,
    }))
}

/// The listing's filters, checked (the export reads the same ones).
pub fn contact_filter(q: ListContactsParams, team: &TeamCtx, page: crate::store::Seek) -> ApiResult<ContactFilter> {
    let phone_number = match q.phone_number.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(phone::normalize("phone_number", p, team.region)?),
        None => None,
    };
    Ok(ContactFilter {
        phone_number,
        email: q.email.filter(|e| !e.is_empty()),
        search: match q.search.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
            Some(s) if s.chars().count() > 100 => {
                return Err(ApiError::bad_request("search: at most 100 characters").with("field", "search"))
            }
            s => s,
        },
        page,
    })
}

impl From<Contact> for ContactInput {
    fn from(c: Contact) -> Self {
        ContactInput {
            phone_number: c.phone_number,
            first_name: c.first_name,
            last_name: c.last_name,
            email: c.email,
            title: c.title,
            company: c.company,
            address: c.address,
            location: c.location,
            timezone: c.timezone,
            metadata: Some(c.metadata.0),
        }
    }
}

/// Update contact (extension)
///
/// Changes the fields given: a field left out stays, one set to null is cleared, `metadata` is
/// merged key by key (null removes a key). The result is validated like a new contact; a phone
/// number another contact has is a 409 naming that `contact_id`.
#[utoipa::path(patch, path = "/api/v1/contacts/{contact_id}", tag = "Contacts", operation_id = "updateContact",
    params(("contact_id" = String, Path, description = "Contact id")),
    request_body = ContactPatch,
    responses(
        (status = 200, description = "Contact updated.", body = GetContactResponse),
        (status = 409, description = "Another contact has this phone number.", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    ApiJson(patch): ApiJson<ContactPatch>,
) -> ApiResult<Json<GetContactResponse>> {
    let id = parse_id(&id, "Contact")?;
    let current = state
        .db
        .get_contact(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Contact not found".into()))?;
    if patch.is_empty() {
        return Err(ApiError::bad_request(
            "the request changes nothing: give at least one field",
        ));
    }
    let valid = patch.apply(current.into()).validate(team.region, "")?;
    let taken = || {
        ApiError::conflict(format!(
            "Contact already exists with phone number {}",
            valid.phone_number
        ))
    };
    let updated = match state
        .db
        .update_contact(team.team_id, id, &valid, now())
        .await
        .on_unique(taken)
    {
        Ok(c) => c.ok_or_else(|| ApiError::NotFound("Contact not found".into()))?,
        Err(err) => {
            let other = state.db.contact_by_phone(team.team_id, &valid.phone_number).await?;
            return Err(match other {
                Some(c) => err.with("contact_id", c.id.to_string()),
                None => err,
            });
        }
    };
    tracing::info!(contact_id = %id, "contact updated");
    let (lists, objects) = state.db.contact_memberships(team.team_id, updated.id).await?;
    Ok(Json(GetContactResponse {
        success: true,
        contact: updated.into(),
        lists: lists.into_iter().map(Into::into).collect(),
        objects: objects.into_iter().map(Into::into).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct DeleteContactResponse {
    pub success: bool,
    pub contact_id: String,
    pub deleted: bool,
    /// With `erase=true`: what the erasure reached.
    #[schema(nullable = false)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub erased: Option<ErasedView>,
}

#[derive(Serialize, ToSchema)]
pub struct ErasedView {
    /// The person's calls, kept as anonymised records (scheduled ones cancelled).
    pub calls: usize,
    /// Recording files deleted.
    pub recordings: usize,
    /// Automation executions whose inputs and outputs named the person (cleared; pending ones stopped).
    pub executions: u64,
    /// Webhook deliveries whose payload named the person (cleared; pending ones not sent).
    pub deliveries: u64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteContactParams {
    /// Erase the person everywhere (see the operation), not only the contact.
    pub erase: Option<bool>,
}

/// Delete contact (extension)
///
/// Deletes the contact, its list memberships and its object links (the objects stay). Its past
/// calls stay with their results, detached (`contact_id` null). Refused with a 409 while calls to
/// the contact are scheduled or under way: cancel them first.
///
/// With `erase=true` the person is erased everywhere instead: their calls (linked, or to or from
/// their number) stay only as anonymised records (status, times, script, attempts, duration; no
/// numbers, metadata, variables, transcript or analysis) and scheduled ones are cancelled;
/// recordings are deleted; automation inputs and outputs, webhook payloads and idempotency
/// replays that carry their number, email, contact id or a call id are cleared, and pending ones
/// are stopped. Refused with a 409 while a call to them is under way. Their do-not-call entry, if
/// any, stays. Objects linked to them are unlinked, not deleted.
#[utoipa::path(delete, path = "/api/v1/contacts/{contact_id}", tag = "Contacts", operation_id = "deleteContact",
    params(("contact_id" = String, Path, description = "Contact id"), DeleteContactParams),
    responses(
        (status = 200, description = "Contact deleted (or erased).", body = DeleteContactResponse),
        (status = 409, description = "Calls to the contact are scheduled or under way.", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeleteContactParams>,
) -> ApiResult<Json<DeleteContactResponse>> {
    let id = parse_id(&id, "Contact")?;
    if q.erase == Some(true) {
        return erase(&state, &team, id).await;
    }
    let deleted = state.db.delete_contact(team.team_id, id).await.map_err(|e| {
        e.refused_as(|ContactInUse::ActiveCalls(n)| {
            ApiError::conflict(format!(
                "{n} calls to this contact are scheduled or under way; cancel them (or let them end) first"
            ))
        })
    })?;
    if !deleted {
        return Err(ApiError::NotFound("Contact not found".into()));
    }
    tracing::info!(contact_id = %id, "contact deleted");
    Ok(Json(DeleteContactResponse {
        success: true,
        contact_id: id.to_string(),
        deleted: true,
        erased: None,
    }))
}

async fn erase(state: &AppState, team: &TeamCtx, id: uuid::Uuid) -> ApiResult<Json<DeleteContactResponse>> {
    let erased = state
        .db
        .erase_contact(team.team_id, id, now())
        .await
        .map_err(|e| {
            e.refused_as(|EraseRefusal::CallsUnderWay(n)| {
                ApiError::conflict(format!(
                    "{n} calls to this person are under way; erase them once they end"
                ))
            })
        })?
        .ok_or_else(|| ApiError::NotFound("Contact not found".into()))?;
    state.db.forget_erased().await;
    let recordings = super::voice::delete_recordings(state, &erased.calls);
    tracing::info!(contact_id = %id, calls = erased.calls.len(), recordings, executions = erased.executions,
        deliveries = erased.deliveries, "contact erased");
    Ok(Json(DeleteContactResponse {
        success: true,
        contact_id: id.to_string(),
        deleted: true,
        erased: Some(ErasedView {
            calls: erased.calls.len(),
            recordings,
            executions: erased.executions,
            deliveries: erased.deliveries,
        }),
    }))
}
