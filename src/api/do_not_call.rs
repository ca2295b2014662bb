//! The do-not-call list (extension): numbers the team's outbound calls never ring. The rules are
//! the list's service (`crate::do_not_call`), shared with `voxd dnc`, the calls service and the
//! dispatcher.

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{
    auth::TeamCtx,
    error::{ApiError, ApiResult},
    extract::{csv_body, ApiJson, ApiQuery},
    pagination::{Page, PageMeta, PageParams},
    AppState,
};
use crate::{
    calls::TeamScope,
    do_not_call::{self, Imported, SuppressionError},
    domain::FieldError,
    store::do_not_call::Suppression,
};

/// The largest CSV an import takes (about a million numbers).
pub const IMPORT_MAX_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressionView {
    /// E.164.
    #[schema(example = "+61429069971")]
    pub phone_number: String,
    /// Why it is listed (`requested on call <id>` when the callee asked on a call).
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<Suppression> for SuppressionView {
    fn from(s: Suppression) -> Self {
        SuppressionView {
            phone_number: s.phone_number,
            reason: s.reason,
            created_at: s.created_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddSuppressionRequest {
    /// Any common format; stored in E.164, read in the team's region.
    #[schema(example = "0429 069 971", max_length = 32)]
    pub phone_number: String,
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SuppressionResponse {
    pub success: bool,
    pub entry: SuppressionView,
}

#[derive(Serialize, ToSchema)]
pub struct ListSuppressionsResponse {
    pub success: bool,
    pub entries: Vec<SuppressionView>,
    pub meta: PageMeta,
}

#[derive(Serialize, ToSchema)]
pub struct RemoveSuppressionResponse {
    pub success: bool,
    pub phone_number: String,
    pub deleted: bool,
}

#[derive(Serialize, ToSchema)]
pub struct ImportSuppressionsResponse {
    pub success: bool,
    #[serde(flatten)]
    pub imported: Imported,
}

/// Add to the do-not-call list (extension)
///
/// Outbound calls to the number are refused from now on (`422`, code `do_not_call`), and calls
/// already scheduled to it end without ringing when they are due (`status: failed`, `end_reason:
/// do_not_call`). A number listed already keeps its first entry: the answer is then 200 with it.
#[utoipa::path(post, path = "/api/v1/dnc", tag = "Do not call", operation_id = "addDoNotCall",
    request_body = AddSuppressionRequest,
    responses(
        (status = 201, description = "Number listed.", body = SuppressionResponse),
        (status = 200, description = "The number was listed already; its entry.", body = SuppressionResponse),
    ))]
pub async fn add(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiJson(req): ApiJson<AddSuppressionRequest>,
) -> ApiResult<(StatusCode, Json<SuppressionResponse>)> {
    let (entry, added) = do_not_call::add(&state.db, &TeamScope::from(&team), &req.phone_number, req.reason)
        .await
        .map_err(suppression_error)?;
    if added {
        tracing::info!("number added to the do-not-call list");
    }
    let status = if added { StatusCode::CREATED } else { StatusCode::OK };
    Ok((
        status,
        Json(SuppressionResponse {
            success: true,
            entry: entry.into(),
        }),
    ))
}

/// List the do-not-call list (extension)
#[utoipa::path(get, path = "/api/v1/dnc", tag = "Do not call", operation_id = "listDoNotCall",
    params(PageParams),
    responses((status = 200, description = "A page of listed numbers, oldest first (order=desc: newest first).", body = ListSuppressionsResponse)))]
pub async fn list(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<PageParams>,
) -> ApiResult<Json<ListSuppressionsResponse>> {
    let page = Page::from_params(q.limit, q.cursor.as_deref(), q.order)?;
    let rows = state.db.page_suppressions(team.team_id, page.seek()).await?;
    let (rows, meta) = page.finish(rows, |s| s.id);
    Ok(Json(ListSuppressionsResponse {
        success: true,
        entries: rows.into_iter().map(Into::into).collect(),
        meta,
    }))
}

/// Check a number (extension)
///
/// The number's entry when it is on the list; 404 when it is not.
#[utoipa::path(get, path = "/api/v1/dnc/{phone_number}", tag = "Do not call", operation_id = "getDoNotCall",
    params(("phone_number" = String, Path, description = "The number, any common format (`+` may be written `%2B`)")),
    responses(
        (status = 200, description = "The number is listed.", body = SuppressionResponse),
        (status = 400, description = "Not a phone number.", body = super::error::ErrorBody),
        (status = 404, description = "The number is not on your team's list.", body = super::error::ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(number): Path<String>,
) -> ApiResult<Json<SuppressionResponse>> {
    let entry = do_not_call::get(&state.db, &TeamScope::from(&team), &number)
        .await
        .map_err(suppression_error)?;
    Ok(Json(SuppressionResponse {
        success: true,
        entry: entry.into(),
    }))
}

/// Remove from the do-not-call list (extension)
#[utoipa::path(delete, path = "/api/v1/dnc/{phone_number}", tag = "Do not call", operation_id = "removeDoNotCall",
    params(("phone_number" = String, Path, description = "The number, any common format (`+` may be written `%2B`)")),
    responses(
        (status = 200, description = "Number taken off the list.", body = RemoveSuppressionResponse),
        (status = 400, description = "Not a phone number.", body = super::error::ErrorBody),
        (status = 404, description = "The number is not on your team's list.", body = super::error::ErrorBody),
    ))]
pub async fn remove(
    State(state): State<AppState>,
    team: TeamCtx,
    Path(number): Path<String>,
) -> ApiResult<Json<RemoveSuppressionResponse>> {
    let number = do_not_call::remove(&state.db, &TeamScope::from(&team), &number)
        .await
        .map_err(suppression_error)?;
    tracing::info!("number removed from the do-not-call list");
    Ok(Json(RemoveSuppressionResponse {
        success: true,
        phone_number: number,
        deleted: true,
    }))
}

/// Import numbers from CSV (extension)
///
/// A `text/csv` body with a header row: `phone_number` (required) and `reason` (optional); other
/// columns are ignored. Rows that are not numbers are reported by line and the rest are listed;
/// importing the same file again adds nothing. At most 16 MiB.
#[utoipa::path(post, path = "/api/v1/dnc/import", tag = "Do not call", operation_id = "importDoNotCall",
    request_body(content = String, content_type = "text/csv",
        example = "phone_number,reason\n0429 069 971,asked by email\n+61291234567,\n"),
    responses(
        (status = 200, description = "What the import did.", body = ImportSuppressionsResponse),
        (status = 400, description = "No header row with `phone_number`.", body = super::error::ErrorBody),
    ))]
pub async fn import(
    State(state): State<AppState>,
    team: TeamCtx,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ImportSuppressionsResponse>> {
    let rows = csv_body(&headers, body, IMPORT_MAX_BYTES, do_not_call::IMPORT_BATCH).await?;
    let imported = do_not_call::import(&state.db, &TeamScope::from(&team), rows)
        .await
        .map_err(suppression_error)?;
    Ok(Json(ImportSuppressionsResponse {
        success: true,
        imported,
    }))
}

fn suppression_error(e: SuppressionError) -> ApiError {
    match e {
        SuppressionError::Invalid(f) => f.into(),
        e @ SuppressionError::NotListed(_) => ApiError::NotFound(e.to_string()),
        e @ SuppressionError::NoNumberColumn => FieldError::new("body", e.to_string()).into(),
        SuppressionError::Csv(e) => e.into(),
        SuppressionError::Store(s) => s.into(),
    }
}
