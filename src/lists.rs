//! Lists filled from CSV: one contact per row, created or reused by normalised phone number
//! (as `add-contacts-to-list` does for JSON items), written batch by batch, each batch in one
//! transaction. Importing the same file again changes nothing.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    calls::TeamScope,
    domain::{contact::ContactInput, now},
    import::{CsvError, CsvRows, Refused, RowError},
    store::{lists::MemberOutcome, Db, StoreError},
};

/// Rows written per transaction.
pub const IMPORT_BATCH: usize = 1000;

/// What a list import did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct MembersImported {
    /// Rows whose contact was new: created and added.
    pub created: u64,
    /// Rows whose phone number was a contact already: added as it is (its fields unchanged).
    pub reused: u64,
    /// Rows whose contact was in the list already.
    pub already_in_list: u64,
    /// How many rows were refused.
    pub invalid_count: u64,
    /// The refused rows (the first 1000), each with the field at fault.
    pub invalid: Vec<RowError>,
    /// Header columns that are not contact fields (nothing was read from them).
    pub ignored_columns: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListImportError {
    #[error("List not found")]
    NoSuchList,
    #[error("the header row has no `phone_number` column")]
    NoNumberColumn,
    #[error(transparent)]
    Csv(#[from] CsvError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a header column fills in.
enum Column {
    Field(fn(&mut ContactInput, String)),
    Metadata(String),
    Ignored,
}

fn column(header: &str) -> Column {
    let name = header.trim().to_ascii_lowercase();
    if let Some(key) = header.trim().strip_prefix("metadata.").filter(|k| !k.is_empty()) {
        return Column::Metadata(key.to_owned());
    }
    let set: fn(&mut ContactInput, String) = match name.as_str() {
        "phone_number" => |c, v| c.phone_number = v,
        "first_name" => |c, v| c.first_name = Some(v),
        "last_name" => |c, v| c.last_name = Some(v),
        "email" => |c, v| c.email = Some(v),
        "title" => |c, v| c.title = Some(v),
        "company" => |c, v| c.company = Some(v),
        "address" => |c, v| c.address = Some(v),
        "location" => |c, v| c.location = Some(v),
        "timezone" => |c, v| c.timezone = Some(v),
        _ => return Column::Ignored,
    };
    Column::Field(set)
}

/// A row as a contact: empty cells are absent fields, `metadata.<key>` cells are text.
fn contact(columns: &[Column], record: &csv::StringRecord) -> ContactInput {
    let mut c = ContactInput::default();
    let mut metadata = Map::new();
    for (col, value) in columns.iter().zip(record.iter()) {
        if value.is_empty() {
            continue;
        }
        match col {
            Column::Field(set) => set(&mut c, value.to_owned()),
            Column::Metadata(key) => {
                metadata.insert(key.clone(), Value::String(value.to_owned()));
            }
            Column::Ignored => {}
        }
    }
    if !metadata.is_empty() {
        c.metadata = Some(metadata);
    }
    c
}

/// Imports CSV rows into one of the team's lists. Columns: `phone_number` (required),
/// `first_name`, `last_name`, `email`, `title`, `company`, `address`, `location`, `timezone`, and
/// `metadata.<key>`; others are reported as ignored.
pub async fn import_members(
    db: &Db,
    team: &TeamScope,
    list_id: Uuid,
    mut rows: CsvRows,
) -> Result<MembersImported, ListImportError> {
    if db.get_list(team.id, list_id).await?.is_none() {
        return Err(ListImportError::NoSuchList);
    }
    rows.column("phone_number").ok_or(ListImportError::NoNumberColumn)?;
    let columns: Vec<Column> = rows.headers().iter().map(column).collect();
    let mut report = MembersImported {
        ignored_columns: rows
            .headers()
            .iter()
            .zip(&columns)
            .filter(|(_, c)| matches!(c, Column::Ignored))
            .map(|(h, _)| h.to_owned())
            .collect(),
        ..Default::default()
    };
    let mut refused = Refused::default();
    while let Some(batch) = rows.next_batch().await {
        let mut lines = Vec::new();
        let mut items = Vec::new();
        for (line, record) in batch? {
            match record {
                Ok(r) => {
                    lines.push(line);
                    items.push(contact(&columns, &r).validate(team.region, ""));
                }
                Err(why) => refused.add(line, why),
            }
        }
        let outcomes = db.add_to_list(team.id, list_id, items, now()).await?;
        for (line, outcome) in lines.into_iter().zip(outcomes) {
            match outcome {
                MemberOutcome::Created(_) => report.created += 1,
                MemberOutcome::Reused(_) => report.reused += 1,
                MemberOutcome::AlreadyInList(_) => report.already_in_list += 1,
                MemberOutcome::Invalid(e) => refused.add(line, e.to_string()),
            }
        }
    }
    report.invalid_count = refused.count;
    report.invalid = refused.rows;
    tracing::info!(%list_id, created = report.created, reused = report.reused,
        already = report.already_in_list, invalid = report.invalid_count, "list import");
    Ok(report)
}
