//! Erasing a person: the contact and everything that names them, in one transaction. Calls stay
//! as anonymised records (status, times, script, attempts, duration) so counts still add up; what
//! identified the person (numbers, metadata, variables, transcript, analysis) goes, and so do
//! memberships, object links, pending events, automation inputs and outputs, webhook payloads
//! and idempotency replays that carry their phone number, email, contact id or one of their
//! calls' ids. A do-not-call entry stays: keeping a number off the phone is what the person asked.

use serde_json::{json, Value};
use sqlx::types::Json;
use uuid::Uuid;

use super::{transaction, Db, WriteError};

/// What an erasure removed; the recordings of `calls` are the caller's to delete (files).
#[derive(Debug, Default)]
pub struct Erased {
    pub calls: Vec<Uuid>,
    pub executions: u64,
    pub deliveries: u64,
}

#[derive(Debug, PartialEq)]
pub enum EraseRefusal {
    /// Calls to the person are dialling, ringing or under way: erase once they end.
    CallsUnderWay(i64),
}

/// A call's result once its person is erased: only what counts need.
fn anonymised(result: Option<&Value>) -> Value {
    let r = result.cloned().unwrap_or(Value::Null);
    json!({
        "erased": true,
        "attempt": r["attempt"],
        "carrier": r["carrier"],
        "simulated": r["simulated"],
        "duration_seconds": r["duration_seconds"],
        "transcript": [],
    })
}

impl Db {
    /// Erases the team's contact; `None` when there is no such contact.
    pub async fn erase_contact(
        &self,
        team_id: Uuid,
        contact_id: Uuid,
        at: chrono::DateTime<chrono::Utc>,
    ) -> std::result::Result<Option<Erased>, WriteError<EraseRefusal>> {
        let marker = Json(json!({"erased": true}));
        transaction!(self, tx => {
            let person: Option<(String, Option<String>)> = sqlx::query_as(
                "SELECT phone_number, email FROM contacts WHERE team_id = $1 AND id = $2")
                .bind(team_id).bind(contact_id).fetch_optional(&mut *tx).await?;
            let Some((phone, email)) = person else { return Ok(None) };
            // Their calls: linked to the contact, or to or from their number.
            let calls: Vec<(Uuid, String, Option<Json<Value>>)> = sqlx::query_as(
                "SELECT id, progress, result FROM calls WHERE team_id = $1
                   AND (contact_id = $2 OR (call_type <> 'inbound' AND to_number = $3)
                        OR (call_type = 'inbound' AND from_number = $3))")
                .bind(team_id).bind(contact_id).bind(&phone).fetch_all(&mut *tx).await?;
            let under_way = calls
                .iter()
                .filter(|(_, p, _)| matches!(p.as_str(), "dialing" | "ringing" | "in_progress" | "processing"))
                .count();
            if under_way > 0 {
                return Err(WriteError::Refused(EraseRefusal::CallsUnderWay(under_way as i64)));
            }
            for (id, _, result) in &calls {
                // Calls not yet placed never will be.
                sqlx::query(
                    "UPDATE calls SET contact_id = NULL, object_id = NULL,
                       to_number = CASE WHEN call_type = 'inbound' THEN to_number END,
                       from_number = CASE WHEN call_type = 'inbound' THEN NULL ELSE from_number END,
                       metadata = $2, variables = $2, result = $3, updated_at = $4,
                       end_reason = CASE WHEN progress IN ('scheduled', 'queued') THEN 'erased' ELSE end_reason END,
                       progress = CASE WHEN progress IN ('scheduled', 'queued') THEN 'cancelled' ELSE progress END,
                       lease_owner = NULL, lease_until_ms = NULL
                     WHERE id = $1")
                    .bind(id).bind(Json(json!({}))).bind(Json(anonymised(result.as_ref().map(|r| &r.0)))).bind(at)
                    .execute(&mut *tx).await?;
                sqlx::query("DELETE FROM call_snapshots WHERE id = $1").bind(id).execute(&mut *tx).await?;
                sqlx::query("DELETE FROM event_outbox WHERE call_id = $1").bind(id).execute(&mut *tx).await?;
            }
            // Everything else is found by what names the person.
            let mut needles = vec![phone.clone(), contact_id.to_string()];
            // The number as people write it at home ("0429 069 971" holds "429069971" once spaces
            // go; payloads from forms keep what was typed): its national digits.
            if let Ok(n) = phonenumber::parse(None, &phone) {
                needles.push(n.national().value().to_string());
            }
            needles.extend(email);
            needles.extend(calls.iter().map(|(id, _, _)| id.to_string()));
            let mut erased = Erased { calls: calls.into_iter().map(|(id, _, _)| id).collect(), ..Default::default() };
            for needle in &needles {
                let like = format!("%{needle}%");
                sqlx::query(
                    "UPDATE execution_steps SET input = NULL, output = NULL, error = NULL
                     WHERE execution_id IN (SELECT id FROM executions WHERE team_id = $1)
                       AND (CAST(input AS TEXT) LIKE $2 OR CAST(output AS TEXT) LIKE $2 OR error LIKE $2
                            OR execution_id IN (SELECT id FROM executions WHERE team_id = $1 AND CAST(context AS TEXT) LIKE $2))")
                    .bind(team_id).bind(&like).execute(&mut *tx).await?;
                // One still to run would act on a person who is gone: it stops.
                erased.executions += sqlx::query(
                    "UPDATE executions SET context = $3, error = 'the contact was erased',
                       status = CASE WHEN status IN ('Pending', 'Processing') THEN 'Failed' ELSE status END,
                       lease_owner = NULL, lease_until_ms = NULL, waiting_call_id = NULL
                     WHERE team_id = $1 AND CAST(context AS TEXT) LIKE $2")
                    .bind(team_id).bind(&like).bind(&marker).execute(&mut *tx).await?.rows_affected();
                // Deliveries not yet made are not made: their payload is gone.
                erased.deliveries += sqlx::query(
                    "UPDATE webhook_deliveries SET payload = $3, last_error = 'the contact was erased',
                       status = CASE WHEN status = 'pending' THEN 'dead_letter' ELSE status END,
                       lease_owner = NULL, lease_until_ms = NULL
                     WHERE team_id = $1 AND CAST(payload AS TEXT) LIKE $2")
                    .bind(team_id).bind(&like).bind(&marker).execute(&mut *tx).await?.rows_affected();
            }
            // Replayable responses (kept a day) are bytes: searched here rather than in SQL.
            let replays: Vec<(String, Option<Vec<u8>>)> = sqlx::query_as(
                "SELECT key, response_body FROM idempotency_keys WHERE team_id = $1")
                .bind(team_id).fetch_all(&mut *tx).await?;
            for (key, body) in replays {
                let body = body.unwrap_or_default();
                let text = String::from_utf8_lossy(&body);
                if needles.iter().any(|n| text.contains(n.as_str())) {
                    sqlx::query("DELETE FROM idempotency_keys WHERE team_id = $1 AND key = $2")
                        .bind(team_id).bind(key).execute(&mut *tx).await?;
                }
            }
            sqlx::query("DELETE FROM list_members WHERE contact_id = $1").bind(contact_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM campaign_members WHERE contact_id = $1").bind(contact_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM object_contacts WHERE contact_id = $1").bind(contact_id).execute(&mut *tx).await?;
            sqlx::query("DELETE FROM contacts WHERE team_id = $1 AND id = $2")
                .bind(team_id).bind(contact_id).execute(&mut *tx).await?;
            Ok(Some(erased))
        })
    }

    /// After an erasure on SQLite: the write-ahead log still holds the pages as they were before
    /// the transaction; a truncating checkpoint moves the (overwritten) pages into the database
    /// and empties it. PostgreSQL keeps dead row versions until vacuum reuses them; nothing to do
    /// from here.
    pub async fn forget_erased(&self) {
        if let Db::Sqlite { write, .. } = self {
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(write).await {
                tracing::warn!(error = %e, "checkpoint after erasure failed; the log is emptied on a later checkpoint");
            }
        }
    }
}
