//! CSV exports (extension) of contacts and calls, with the filters of their listings, streamed a
//! page of rows at a time: an export of any size holds one page in memory.

use std::{future::Future, pin::Pin, sync::Arc};

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use serde_json::Value;
use uuid::Uuid;

use super::{
    auth::TeamCtx,
    calls::{call_filter, ListCallsParams},
    contacts::{contact_filter, ListContactsParams},
    error::ApiResult,
    extract::ApiQuery,
    pagination::{Page, SortOrder},
    AppState,
};
use crate::store::{calls::Call, contacts::Contact, Seek, StoreError};

/// Rows read per page.
const PAGE: i64 = 500;

type RowFn<T> = Arc<dyn Fn(&T) -> Vec<String> + Send + Sync>;
type Fetch<T> = Arc<dyn Fn(Seek) -> Pin<Box<dyn Future<Output = Result<Vec<T>, StoreError>> + Send>> + Send + Sync>;

/// A cell as spreadsheets should show it: text that would start a formula (`=`, `@`, a `+` or `-`
/// not followed by a digit, a tab or carriage return) gets a leading `'`. Callees' words reach
/// summaries and transcripts, so they must not run as formulas; `+61…` and `-3` stay as they are.
fn cell(text: &str) -> String {
    let mut chars = text.chars();
    let risky = match chars.next() {
        Some('=' | '@' | '\t' | '\r') => true,
        Some('+' | '-') => !chars.next().is_some_and(|c| c.is_ascii_digit()),
        _ => false,
    };
    if risky {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

fn opt<T: ToString>(v: &Option<T>) -> String {
    v.as_ref().map(ToString::to_string).unwrap_or_default()
}

fn json(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Writes rows as CSV; the header first.
fn csv_bytes(header: Option<&[String]>, rows: impl Iterator<Item = Vec<String>>) -> Bytes {
    let mut w = csv::Writer::from_writer(Vec::new());
    if let Some(h) = header {
        let _ = w.write_record(h);
    }
    for row in rows {
        let _ = w.write_record(row.iter().map(|c| cell(c)));
    }
    Bytes::from(w.into_inner().unwrap_or_default())
}

/// The rows from `fetch`, page after page from `start`, as a streamed CSV download.
fn stream<T: Send + 'static>(
    filename: &str,
    header: Vec<String>,
    start: Seek,
    fetch: Fetch<T>,
    id: fn(&T) -> Uuid,
    row: RowFn<T>,
) -> Response {
    let first = csv_bytes(Some(&header), std::iter::empty());
    let pages = futures_util::stream::unfold(Some(start), move |next| {
        let (fetch, row) = (fetch.clone(), row.clone());
        async move {
            let seek = next?;
            match fetch(seek).await {
                Ok(rows) => {
                    let more = rows.len() as i64 == seek.limit;
                    let after = rows.last().map(id);
                    let bytes = csv_bytes(None, rows.iter().map(|r| row(r)));
                    let next = (more && after.is_some()).then_some(Seek { after, ..seek });
                    Some((Ok::<_, std::io::Error>(bytes), next))
                }
                Err(e) => {
                    // The download ends short; the client sees a broken transfer, not a silent cut.
                    tracing::error!(error = %e, "export failed part-way");
                    Some((Err(std::io::Error::other(e.to_string())), None))
                }
            }
        }
    });
    let body = futures_util::stream::iter([Ok(first)]).chain(pages);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

fn start(cursor: Option<&str>, order: Option<SortOrder>) -> ApiResult<Seek> {
    let page = Page::from_params(None, cursor, order)?;
    Ok(Seek {
        limit: PAGE,
        ..page.seek()
    })
}

/// Export contacts (extension)
///
/// Every contact matching the filters of list-contacts, as CSV (`text/csv`), oldest first
/// (`order=desc`: newest first; `cursor` starts after that contact; `limit` is not used).
/// Columns: `id`, `phone_number`, `first_name`, `last_name`, `email`, `title`, `company`,
/// `address`, `location`, `timezone`, `metadata` (JSON), `created_at`, `updated_at`. Text that would
/// start a spreadsheet formula is prefixed with `'`.
#[utoipa::path(get, path = "/api/v1/contacts/export.csv", tag = "Contacts", operation_id = "exportContacts",
    params(ListContactsParams),
    responses((status = 200, description = "The contacts, as CSV.", content_type = "text/csv", body = String)))]
pub async fn contacts(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<ListContactsParams>,
) -> ApiResult<Response> {
    let seek = start(q.cursor.as_deref(), q.order)?;
    let filter = contact_filter(q, &team, seek)?;
    let (db, team_id) = (state.db.clone(), team.team_id);
    let fetch: Fetch<Contact> = Arc::new(move |page| {
        let (db, filter) = (
            db.clone(),
            crate::store::contacts::ContactFilter { page, ..filter.clone() },
        );
        Box::pin(async move { db.list_contacts(team_id, &filter).await })
    });
    // The contact's own fields, in the order an import reads them, between its id and its stamps.
    let header: Vec<String> = std::iter::once("id")
        .chain(crate::domain::automation::CONTACT_FIELDS)
        .chain(["metadata", "created_at", "updated_at"])
        .map(String::from)
        .collect();
    let row = Arc::new(|c: &Contact| {
        vec![
            c.id.to_string(),
            c.phone_number.clone(),
            opt(&c.first_name),
            opt(&c.last_name),
            opt(&c.email),
            opt(&c.title),
            opt(&c.company),
            opt(&c.address),
            opt(&c.location),
            opt(&c.timezone),
            Value::Object(c.metadata.0.clone()).to_string(),
            c.created_at.to_rfc3339(),
            c.updated_at.to_rfc3339(),
        ]
    });
    tracing::info!("contacts export");
    Ok(stream("contacts.csv", header, seek, fetch, |c| c.id, row))
}

/// Export calls (extension)
///
/// Every call matching the filters of list-calls, as CSV (`text/csv`), oldest first
/// (`order=desc`: newest first; `cursor` starts after that call; `limit` is not used). Columns:
/// `call_id`, `type`, `progress`, `status`, `end_reason`, `from_number`, `to_number`,
/// `contact_id`, `script_id`, `script_version`, `scheduled_time`, `started_at`, `ended_at`,
/// `attempts`, `duration_seconds`, `summary`, `rating`, `success_evaluation`; then, filtered by
/// `script_id`, one `data.<field>` column per field of the script's data collection and one
/// `objective.<id>` column (`true`/`false`) per objective; otherwise `data` and `objectives` as JSON.
#[utoipa::path(get, path = "/api/v1/calls/export.csv", tag = "Calls", operation_id = "exportCalls",
    params(ListCallsParams),
    responses((status = 200, description = "The calls, as CSV.", content_type = "text/csv", body = String)))]
pub async fn calls(
    State(state): State<AppState>,
    team: TeamCtx,
    ApiQuery(q): ApiQuery<ListCallsParams>,
) -> ApiResult<Response> {
    let seek = start(q.cursor.as_deref(), q.order)?;
    let filter = call_filter(q, seek)?;
    // One script: its fields and objectives get a column each.
    let split = match filter.script_id {
        Some(id) => state.db.get_script(team.team_id, id).await?.map(|s| {
            let d = s.definition.0;
            (
                d.data_collection.into_iter().map(|f| f.name).collect::<Vec<_>>(),
                d.objectives.into_iter().map(|o| o.id).collect::<Vec<_>>(),
            )
        }),
        None => None,
    };
    let mut header: Vec<String> = [
        "call_id",
        "type",
        "progress",
        "status",
        "end_reason",
        "from_number",
        "to_number",
        "contact_id",
        "script_id",
        "script_version",
        "scheduled_time",
        "started_at",
        "ended_at",
        "attempts",
        "duration_seconds",
        "summary",
        "rating",
        "success_evaluation",
    ]
    .map(String::from)
    .to_vec();
    match &split {
        Some((fields, objectives)) => {
            header.extend(fields.iter().map(|f| format!("data.{f}")));
            header.extend(objectives.iter().map(|o| format!("objective.{o}")));
        }
        None => header.extend(["data".to_owned(), "objectives".to_owned()]),
    }
    let (db, team_id) = (state.db.clone(), team.team_id);
    let fetch: Fetch<Call> = Arc::new(move |page| {
        let (db, filter) = (db.clone(), crate::store::calls::CallFilter { page, ..filter.clone() });
        Box::pin(async move { db.list_calls(team_id, &filter).await })
    });
    let row = Arc::new(move |c: &Call| {
        let result = c.result.as_ref().map(|r| &r.0);
        let a = result.map(|r| &r["analysis"]);
        let pick = |key: &str| json(a.and_then(|a| a.get(key)));
        let mut row = vec![
            c.id.to_string(),
            c.call_type.clone(),
            c.progress.to_string(),
            opt(&c.status),
            opt(&c.end_reason),
            opt(&c.from_number),
            opt(&c.to_number),
            opt(&c.contact_id),
            c.script_id.to_string(),
            c.script_version.to_string(),
            c.scheduled_time.to_rfc3339(),
            opt(&c.started_at.map(|t| t.to_rfc3339())),
            opt(&c.ended_at.map(|t| t.to_rfc3339())),
            c.attempts.to_string(),
            json(result.and_then(|r| r.get("duration_seconds"))),
            pick("summary"),
            pick("rating"),
            pick("success_evaluation"),
        ];
        let data = a.and_then(|a| a.get("structured_data"));
        let objectives = a.and_then(|a| a.get("objectives")).and_then(Value::as_array);
        match &split {
            Some((fields, ids)) => {
                row.extend(fields.iter().map(|f| json(data.and_then(|d| d.get(f)))));
                row.extend(ids.iter().map(|id| {
                    let found = objectives.and_then(|os| os.iter().find(|o| o["id"] == id.as_str()));
                    json(found.and_then(|o| o.get("achieved")))
                }));
            }
            None => {
                row.push(json(data));
                row.push(json(a.and_then(|a| a.get("objectives"))));
            }
        }
        row
    });
    tracing::info!("calls export");
    Ok(stream("calls.csv", header, seek, fetch, |c| c.id, row))
}
