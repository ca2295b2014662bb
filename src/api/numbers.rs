//! Phone numbers (extension): a team's caller ids and the inbound script answering each. The rules
//! are the numbers service's (`crate::numbers`), shared with `voxd number`.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    auth::TeamCtx,
    error::{ApiError, ApiResult, ErrorBody},
    extract::{field_id, parse_id, ApiJson, ApiQuery},
    pagination::{Page, PageMeta, PageParams},
    AppState,
};
use crate::{calls::TeamScope, domain::FieldError, numbers, store::numbers::PhoneNumber};

#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneNumberView {
    pub id: String,
    /// E.164.
    #[schema(example = "+61291234567")]
    pub phone_number: String,
    /// The inbound script that answers calls to this number; null: calls to it are not answered.
    pub inbound_script_id: Option<String>,
    /// The SIP trunk calls from this number ring through; null: the simulated network.
    pub trunk_id: Option<String>,
    /// Calls from and to this number go through the team's Twilio account (`/twilio`).
    pub twilio: bool,
    pub created_at: DateTime<Utc>,
}

impl From<PhoneNumber> for PhoneNumberView {
    fn from(n: PhoneNumber) -> Self {
        PhoneNumberView {
            id: n.id.to_string(),
            phone_number: n.number,
            inbound_script_id: n.inbound_script_id.map(|s| s.to_string()),
            trunk_id: n.trunk_id.map(|t| t.to_string()),
            twilio: n.twilio,
            created_at: n.created_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct PhoneNumberResponse {
    pub success: bool,
    pub phone_number: PhoneNumberView,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddNumberRequest {
    /// Any common format; stored in E.164, read in the team's region.
    #[schema(example = "02 9123 4567", max_length = 32)]
    pub phone_number: String,
    /// An inbound script of your team to answer calls to the number.
    pub inbound_script_id: Option<String>,
    /// A SIP trunk of your team (`/trunks`) for calls from and to the number.
    pub trunk_id: Option<String>,
    /// The number is on your team's Twilio account (`/twilio`): its calls go through Twilio
    /// (not with `trunk_id`).
    #[serde(default)]
    pub twilio: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNumberRequest {
    /// The inbound script that answers the number from now on; null to stop answering it.
    #[serde(default, deserialize_with = "crate::domain::present")]
    #[schema(value_type = Option<String>)]
    pub inbound_script_id: Option<Option<String>>,
    /// The SIP trunk the number's calls go through from now on; null for the simulated network.
    #[serde(default, deserialize_with = "crate::domain::present")]
    #[schema(value_type = Option<String>)]
    pub trunk_id: Option<Option<String>>,
    /// Whether the number's calls go through your team's Twilio account from now on.
    pub twilio: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct ListNumbersResponse {
    pub success: bool,
    pub phone_numbers: Vec<PhoneNumberView>,
    pub meta: PageMeta,
}

#[derive(Serialize, ToSchema)]
pub struct DeleteNumberResponse {
    pub success: bool,
    pub number_id: String,
    pub deleted: bool,
}

/// Add phone number (extension)
///
/// Adds a caller id to your team; calls are placed from it (`from_number`) and, with an inbound
/// script, calls to it are answered.
#[utoipa::path(post, path = "/api/v1/phone-numbers", tag = "Phone numbers", operation_id = "addPhoneNumber",
    request_body = AddNumberRequest,
    responses(
        (status = 201, description = "Number added.", body = PhoneNumberResponse),
        (status = 404, description = "No such script in your team.", body = ErrorBody),
        (status = 409, description = "Your team already has the number.", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiJson(req): ApiJson<AddNumberRequest>,
) -> ApiResult<(StatusCode, Json<PhoneNumberResponse>)> {
    let script = req
        .inbound_script_id
        .as_deref()
        .map(|s| field_id("inbound_script_id", s))
        .transpose()?;
    let trunk = req.trunk_id.as_deref().map(|t| field_id("trunk_id", t)).transpose()?;
    let n = numbers::add(
        &state.db,
        &TeamScope::from(&team),
        &req.phone_number,
        script,
        trunk,
        req.twilio,
    )
    .await
    .map_err(number_error)?;
    tracing::info!(number_id = %n.id, "phone number added");
    Ok((
        StatusCode::CREATED,
        Json(PhoneNumberResponse {
            success: true,
            phone_number: n.into(),
        }),
    ))
}

/// List phone numbers (extension)
#[utoipa::path(get, path = "/api/v1/phone-numbers", tag = "Phone numbers", operation_id = "listPhoneNumbers",
    params(PageParams),
    responses((status = 200, description = "A page of numbers, oldest first (order=desc: newest first).", body = ListNumbersResponse)))]
pub async fn list(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<ListNumbersResponse>> {
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    let rows = state.db.page_numbers(team.team_id, page.seek()).await?;
    let (rows, meta) = page.finish(rows, |n| n.id);
    Ok(Json(ListNumbersResponse {
        success: true,
        phone_numbers: rows.into_iter().map(Into::into).collect(),
        meta,
    }))
}

/// Get phone number (extension)
#[utoipa::path(get, path = "/api/v1/phone-numbers/{number_id}", tag = "Phone numbers", operation_id = "getPhoneNumber",
    params(("number_id" = String, Path, description = "Phone number id")),
    responses((status = 200, description = "The number.", body = PhoneNumberResponse)))]
pub async fn get(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<PhoneNumberResponse>> {
    let id = parse_id(&id, "Phone number")?;
    let n = state
        .db
        .get_number(team.team_id, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("Phone number not found".into()))?;
    Ok(Json(PhoneNumberResponse {
        success: true,
        phone_number: n.into(),
    }))
}

/// Update phone number (extension)
///
/// Changes the inbound script that answers the number (null: not answered), the trunk its calls
/// go through (null: the simulated network) and/or whether they go through Twilio; at least one.
#[utoipa::path(patch, path = "/api/v1/phone-numbers/{number_id}", tag = "Phone numbers", operation_id = "updatePhoneNumber",
    params(("number_id" = String, Path, description = "Phone number id")),
    request_body = UpdateNumberRequest,
    responses(
        (status = 200, description = "Number updated.", body = PhoneNumberResponse),
        (status = 404, description = "No such number, script or trunk in your team.", body = ErrorBody),
        (status = 409, description = "Both a trunk and Twilio for one number.", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<UpdateNumberRequest>,
) -> ApiResult<Json<PhoneNumberResponse>> {
    let id = parse_id(&id, "Phone number")?;
    if req.inbound_script_id.is_none() && req.trunk_id.is_none() && req.twilio.is_none() {
        return Err(FieldError::new(
            "inbound_script_id",
            "trunk_id or twilio is required (null to clear an id)",
        )
        .into());
    }
    // Absent: unchanged; null: cleared; an id: set.
    let change = |field: &'static str, v: &Option<Option<String>>| {
        v.as_ref()
            .map(|v| v.as_deref().map(|id| field_id(field, id)).transpose())
            .transpose()
    };
    let change = numbers::Change {
        inbound_script: change("inbound_script_id", &req.inbound_script_id)?,
        trunk: change("trunk_id", &req.trunk_id)?,
        twilio: req.twilio,
    };
    let n = numbers::update(&state.db, team.team_id, id, change)
        .await
        .map_err(number_error)?;
    Ok(Json(PhoneNumberResponse {
        success: true,
        phone_number: n.into(),
    }))
}

/// Remove phone number (extension)
///
/// Refused with a 409 while calls that are scheduled or under way ring from it.
#[utoipa::path(delete, path = "/api/v1/phone-numbers/{number_id}", tag = "Phone numbers", operation_id = "deletePhoneNumber",
    params(("number_id" = String, Path, description = "Phone number id")),
    responses(
        (status = 200, description = "Number removed.", body = DeleteNumberResponse),
        (status = 409, description = "Calls not yet over ring from the number.", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(id): Path<String>,
) -> ApiResult<Json<DeleteNumberResponse>> {
    let id = parse_id(&id, "Phone number")?;
    numbers::remove(&state.db, team.team_id, id)
        .await
        .map_err(number_error)?;
    tracing::info!(number_id = %id, "phone number removed");
    Ok(Json(DeleteNumberResponse {
        success: true,
        number_id: id.to_string(),
        deleted: true,
    }))
}

/// The service's refusals as HTTP errors (its number field is the body's `phone_number`).
fn number_error(e: numbers::NumberError) -> ApiError {
    use numbers::NumberError as E;
    match e {
        E::Invalid(f) => FieldError::new("phone_number", f.reason).into(),
        E::Taken(_) | E::InUse(_) => ApiError::conflict(e.to_string()),
        E::NotFound => ApiError::NotFound("Phone number not found".into()),
        E::NoSuchScript(_) | E::NoSuchTrunk(_) => ApiError::NotFound(e.to_string()),
        E::TwoCarriers => ApiError::conflict(e.to_string()),
        E::NotInbound(_) => ApiError::bad_request(e.to_string()).with("field", "inbound_script_id"),
        E::Store(s) => s.into(),
    }
}
