//! The do-not-call list, with every rule about it in one place (`/api/v1/dnc`, `voxd dnc`, the
//! calls service and the dispatcher all come here): numbers are E.164 read in the team's region, a
//! number is listed once (adding it again keeps the first entry and its reason), an outbound call
//! to a listed number is refused when it is created and, for numbers listed after that, ends
//! without ringing when it is due; a callee who asks not to be called again is listed.

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    calls::TeamScope,
    domain::{new_id, now, phone, FieldError},
    import::{CsvError, CsvRows, Refused, RowError},
    store::{do_not_call::Suppression, Db, StoreError},
};

/// A reason is a note for people: at most this many characters.
const REASON_MAX_CHARS: usize = 500;
/// Rows written per transaction on import.
pub const IMPORT_BATCH: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum SuppressionError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("{0} is not on the do-not-call list")]
    NotListed(String),
    #[error("the header row has no `phone_number` column")]
    NoNumberColumn,
    #[error(transparent)]
    Csv(#[from] CsvError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn checked_reason(reason: Option<String>) -> Result<Option<String>, FieldError> {
    let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > REASON_MAX_CHARS) {
        return Err(FieldError::new(
            "reason",
            format!("must be at most {REASON_MAX_CHARS} characters"),
        ));
    }
    Ok(reason)
}

fn entry(team_id: Uuid, phone_number: String, reason: Option<String>) -> Suppression {
    Suppression {
        id: new_id(),
        team_id,
        phone_number,
        reason,
        created_at: now(),
    }
}

/// Lists a number (any common format); the entry as stored and whether it is new.
pub async fn add(
    db: &Db,
    team: &TeamScope,
    number: &str,
    reason: Option<String>,
) -> Result<(Suppression, bool), SuppressionError> {
    let e164 = phone::normalize("phone_number", number, team.region)?;
    let reason = checked_reason(reason)?;
    Ok(db.add_suppression(&entry(team.id, e164, reason)).await?)
}

/// The entry of a number (any common format), or `NotListed`.
pub async fn get(db: &Db, team: &TeamScope, number: &str) -> Result<Suppression, SuppressionError> {
    let e164 = phone::normalize("phone_number", number, team.region)?;
    db.suppression(team.id, &e164)
        .await?
        .ok_or(SuppressionError::NotListed(e164))
}

/// Takes a number (any common format) off the list.
pub async fn remove(db: &Db, team: &TeamScope, number: &str) -> Result<String, SuppressionError> {
    let e164 = phone::normalize("phone_number", number, team.region)?;
    if !db.remove_suppression(team.id, &e164).await? {
        return Err(SuppressionError::NotListed(e164));
    }
    Ok(e164)
}

/// Whether a call to this E.164 number must not ring.
pub async fn is_listed(db: &Db, team_id: Uuid, e164: &str) -> Result<bool, StoreError> {
    Ok(db.suppression(team_id, e164).await?.is_some())
}

/// Lists the callee's number because they asked on this call; a number listed already keeps its
/// first reason.
pub async fn requested_on_call(db: &Db, team_id: Uuid, e164: &str, call_id: Uuid) -> Result<bool, StoreError> {
    let reason = format!("requested on call {call_id}");
    let (_, added) = db
        .add_suppression(&entry(team_id, e164.to_owned(), Some(reason)))
        .await?;
    if added {
        tracing::info!(%call_id, "callee asked not to be called again: number added to the do-not-call list");
    }
    Ok(added)
}

/// What an import did.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Imported {
    /// Numbers newly listed.
    pub added: u64,
    /// Rows whose number was listed already (or earlier in the same file).
    pub already_listed: u64,
    /// How many rows were refused.
    pub invalid_count: u64,
    /// The refused rows (the first 1000).
    pub invalid: Vec<RowError>,
}

/// Imports CSV rows with a `phone_number` column (required) and `reason` (optional); other
/// columns are ignored. Each batch is written in one transaction; a refused row (not a number,
/// reason too long) is reported and the rest go in. Importing a file again adds nothing.
pub async fn import(db: &Db, team: &TeamScope, mut rows: CsvRows) -> Result<Imported, SuppressionError> {
    let number_at = rows.column("phone_number").ok_or(SuppressionError::NoNumberColumn)?;
    let reason_at = rows.column("reason");
    let (mut added, mut already, mut refused) = (0u64, 0u64, Refused::default());
    while let Some(batch) = rows.next_batch().await {
        let batch = batch?;
        let mut entries = Vec::with_capacity(batch.len());
        for (line, record) in batch {
            let parsed = record.and_then(|r| {
                let number = phone::normalize("phone_number", r.get(number_at).unwrap_or_default(), team.region)
                    .map_err(|e| e.reason)?;
                let reason =
                    checked_reason(reason_at.and_then(|i| r.get(i)).map(str::to_owned)).map_err(|e| e.reason)?;
                Ok((number, reason))
            });
            match parsed {
                Ok((number, reason)) => entries.push(entry(team.id, number, reason)),
                Err(why) => refused.add(line, why),
            }
        }
        let new = db.add_suppressions(&entries).await?;
        added += new;
        already += entries.len() as u64 - new;
    }
    tracing::info!(team_id = %team.id, added, already, invalid = refused.count, "do-not-call import");
    Ok(Imported {
        added,
        already_listed: already,
        invalid_count: refused.count,
        invalid: refused.rows,
    })
}
