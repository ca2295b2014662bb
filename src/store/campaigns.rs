//! Campaigns, their members (pending, calling with the call's id, or skipped and why) and their
//! log.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{types::Json, FromRow};
use uuid::Uuid;

use super::{read_pool, transaction, write_pool, Db, Result, Seek};
use crate::domain::{
    call::{CallingWindow, RetryPolicy},
    new_id,
};

#[derive(Debug, Clone, FromRow)]
pub struct Campaign {
    pub id: Uuid,
    pub team_id: Uuid,
    pub name: String,
    pub list_id: Uuid,
    pub script_id: Uuid,
    pub from_numbers: Json<Vec<String>>,
    pub status: String,
    pub scheduled_time: DateTime<Utc>,
    pub calling_window: Option<Json<CallingWindow>>,
    pub max_concurrent_calls: i32,
    pub calls_per_minute: Option<i32>,
    pub retry_policy: Option<Json<RetryPolicy>>,
    pub variables: Json<Map<String, Value>>,
    pub join_new_members: bool,
    pub status_reason: Option<String>,
    pub redial_of: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "id, team_id, name, list_id, script_id, from_numbers, status, scheduled_time, calling_window, \
     max_concurrent_calls, calls_per_minute, retry_policy, variables, join_new_members, status_reason, redial_of, \
     created_at, updated_at";

#[derive(Debug, Clone, FromRow)]
pub struct LogEntry {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub message: String,
}

/// A campaign's numbers: members by state (and skip reason), its calls by progress and status.
#[derive(Debug, Default)]
pub struct CampaignCounts {
    pub members: Vec<(String, Option<String>, i64)>,
    pub calls: Vec<(String, Option<String>, i64)>,
}

/// A change of a campaign's status: from which states, to which, why (shown as
/// `status_reason`) and the log line. The `from` states are the code's own words, never input.
#[derive(Debug, Clone, Copy)]
pub struct Transition<'a> {
    pub from: &'a [&'a str],
    pub to: &'a str,
    pub reason: Option<&'a str>,
    pub log: &'a str,
}

const INSERT_LOG: &str = "INSERT INTO campaign_log (id, campaign_id, at, kind, message) VALUES ($1, $2, $3, $4, $5)";
const ACTIVE_CALLS: &str = "SELECT COUNT(*) FROM campaign_members m JOIN calls c ON c.id = m.call_id
     WHERE m.campaign_id = $1 AND c.progress NOT IN ('ended', 'cancelled')";

impl Db {
    /// Writes the campaign, its members in order (each `(contact, skipped reason)`) and its first
    /// log line, in one transaction.
    pub async fn insert_campaign(&self, c: &Campaign, members: &[(Uuid, Option<String>)], log: &str) -> Result<()> {
        let insert = format!(
            "INSERT INTO campaigns ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)"
        );
        transaction!(self, tx => {
            sqlx::query(&insert)
                .bind(c.id).bind(c.team_id).bind(&c.name).bind(c.list_id).bind(c.script_id).bind(&c.from_numbers)
                .bind(&c.status).bind(c.scheduled_time).bind(&c.calling_window).bind(c.max_concurrent_calls)
                .bind(c.calls_per_minute).bind(&c.retry_policy).bind(&c.variables).bind(c.join_new_members)
                .bind(&c.status_reason).bind(c.redial_of).bind(c.created_at).bind(c.updated_at)
                .execute(&mut *tx).await?;
            for (seq, (contact, skipped)) in members.iter().enumerate() {
                let state = if skipped.is_some() { "skipped" } else { "pending" };
                sqlx::query("INSERT INTO campaign_members (campaign_id, contact_id, state, call_id, reason, seq) VALUES ($1, $2, $3, NULL, $4, $5)")
                    .bind(c.id).bind(contact).bind(state).bind(skipped).bind(seq as i64)
                    .execute(&mut *tx).await?;
            }
            sqlx::query(INSERT_LOG).bind(new_id()).bind(c.id).bind(c.created_at).bind("created").bind(log)
                .execute(&mut *tx).await?;
            Ok(())
        })
    }

    pub async fn get_campaign(&self, team_id: Uuid, id: Uuid) -> Result<Option<Campaign>> {
        let sql = format!("SELECT {COLUMNS} FROM campaigns WHERE team_id = $1 AND id = $2");
        Ok(read_pool!(self, p => sqlx::query_as::<_, Campaign>(&sql).bind(team_id).bind(id).fetch_optional(p).await?))
    }

    pub async fn page_campaigns(&self, team_id: Uuid, page: Seek) -> Result<Vec<Campaign>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM campaigns WHERE team_id = $1 AND {} {} LIMIT $3",
            page.beyond("id", 2),
            page.order_by("id")
        );
        Ok(read_pool!(self, p => sqlx::query_as::<_, Campaign>(&sql)
            .bind(team_id).bind(page.after).bind(page.limit).fetch_all(p).await?))
    }

    /// Applies the change when the campaign is in one of its `from` states and logs it; the
    /// campaign as it is now, or `None` when it is not (or not the team's).
    pub async fn set_campaign_status(
        &self,
        team_id: Uuid,
        id: Uuid,
        t: Transition<'_>,
        at: DateTime<Utc>,
    ) -> Result<Option<Campaign>> {
        let allowed = t.from.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "UPDATE campaigns SET status = $3, status_reason = $4, updated_at = $5
             WHERE team_id = $1 AND id = $2 AND status IN ({allowed}) RETURNING {COLUMNS}"
        );
        transaction!(self, tx => {
            let c = sqlx::query_as::<_, Campaign>(&sql)
                .bind(team_id).bind(id).bind(t.to).bind(t.reason).bind(at).fetch_optional(&mut *tx).await?;
            if c.is_some() {
                sqlx::query(INSERT_LOG).bind(new_id()).bind(id).bind(at).bind(t.to).bind(t.log).execute(&mut *tx).await?;
            }
            Ok(c)
        })
    }

    pub async fn log_campaign(&self, id: Uuid, kind: &str, message: &str, at: DateTime<Utc>) -> Result<()> {
        write_pool!(self, p => sqlx::query(INSERT_LOG).bind(new_id()).bind(id).bind(at).bind(kind).bind(message)
            .execute(p).await.map(|_| ())?);
        Ok(())
    }

    pub async fn page_campaign_log(&self, id: Uuid, page: Seek) -> Result<Vec<LogEntry>> {
        let sql = format!(
            "SELECT id, at, kind, message FROM campaign_log WHERE campaign_id = $1 AND {} {} LIMIT $3",
            page.beyond("id", 2),
            page.order_by("id")
        );
        Ok(
            read_pool!(self, p => sqlx::query_as::<_, LogEntry>(&sql).bind(id).bind(page.after).bind(page.limit).fetch_all(p).await?),
        )
    }

    /// Campaigns a worker should feed now (scheduled ones whose time has come, and running ones),
    /// each held for this worker until `until_ms` so that two workers never feed one at once.
    pub async fn take_campaigns_to_feed(&self, now: DateTime<Utc>, until_ms: i64) -> Result<Vec<Campaign>> {
        let now_ms = now.timestamp_millis();
        let sql = format!(
            "UPDATE campaigns SET feeder_until_ms = $3
             WHERE (status = 'running' OR (status = 'scheduled' AND scheduled_time <= $1))
               AND (feeder_until_ms IS NULL OR feeder_until_ms < $2)
             RETURNING {COLUMNS}"
        );
        Ok(
            write_pool!(self, p => sqlx::query_as::<_, Campaign>(&sql).bind(now).bind(now_ms).bind(until_ms).fetch_all(p).await?),
        )
    }

    pub async fn release_campaign(&self, id: Uuid) -> Result<()> {
        write_pool!(self, p => sqlx::query("UPDATE campaigns SET feeder_until_ms = NULL WHERE id = $1").bind(id).execute(p).await.map(|_| ())?);
        Ok(())
    }

    /// List members not yet in the campaign join it as pending, after the others.
    pub async fn add_new_campaign_members(&self, c: &Campaign) -> Result<u64> {
        transaction!(self, tx => {
            let next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), -1) + 1 FROM campaign_members WHERE campaign_id = $1")
                .bind(c.id).fetch_one(&mut *tx).await?;
            let new: Vec<Uuid> = sqlx::query_scalar(
                "SELECT lm.contact_id FROM list_members lm WHERE lm.list_id = $1
                   AND NOT EXISTS (SELECT 1 FROM campaign_members m WHERE m.campaign_id = $2 AND m.contact_id = lm.contact_id)
                 ORDER BY lm.added_at, lm.contact_id")
                .bind(c.list_id).bind(c.id).fetch_all(&mut *tx).await?;
            for (i, contact) in new.iter().enumerate() {
                sqlx::query("INSERT INTO campaign_members (campaign_id, contact_id, state, call_id, reason, seq) VALUES ($1, $2, 'pending', NULL, NULL, $3)")
                    .bind(c.id).bind(contact).bind(next + i as i64).execute(&mut *tx).await?;
            }
            Ok(new.len() as u64)
        })
    }

    /// The campaign's calls not over yet.
    pub async fn campaign_active_calls(&self, id: Uuid) -> Result<i64> {
        Ok(read_pool!(self, p => sqlx::query_scalar(ACTIVE_CALLS).bind(id).fetch_one(p).await?))
    }

    /// The campaign's calls created since `since` (its pace).
    pub async fn campaign_calls_since(&self, id: Uuid, since: DateTime<Utc>) -> Result<i64> {
        Ok(read_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM campaign_members m JOIN calls c ON c.id = m.call_id WHERE m.campaign_id = $1 AND c.created_at >= $2")
            .bind(id).bind(since).fetch_one(p).await?))
    }

    /// Members whose call was chosen but not created (a worker stopped in between): `(contact, call)`.
    pub async fn campaign_calls_missing(&self, id: Uuid) -> Result<Vec<(Uuid, Uuid)>> {
        Ok(read_pool!(self, p => sqlx::query_as(
            "SELECT m.contact_id, m.call_id FROM campaign_members m WHERE m.campaign_id = $1 AND m.state = 'calling'
               AND NOT EXISTS (SELECT 1 FROM calls c WHERE c.id = m.call_id)")
            .bind(id).fetch_all(p).await?))
    }

    /// The next `n` pending members, in order.
    pub async fn next_campaign_members(&self, id: Uuid, n: i64) -> Result<Vec<Uuid>> {
        Ok(read_pool!(self, p => sqlx::query_scalar(
            "SELECT contact_id FROM campaign_members WHERE campaign_id = $1 AND state = 'pending' ORDER BY seq LIMIT $2")
            .bind(id).bind(n).fetch_all(p).await?))
    }

    /// Chooses the member's call id, if the member is still pending (`false`: another worker did).
    pub async fn choose_campaign_call(&self, id: Uuid, contact: Uuid, call_id: Uuid) -> Result<bool> {
        Ok(write_pool!(self, p => sqlx::query(
            "UPDATE campaign_members SET state = 'calling', call_id = $3 WHERE campaign_id = $1 AND contact_id = $2 AND state = 'pending'")
            .bind(id).bind(contact).bind(call_id).execute(p).await?.rows_affected() == 1))
    }

    /// Skips members (`pending` or `calling` without a call) with the reason.
    pub async fn skip_campaign_member(&self, id: Uuid, contact: Uuid, reason: &str) -> Result<()> {
        write_pool!(self, p => sqlx::query(
            "UPDATE campaign_members SET state = 'skipped', call_id = NULL, reason = $3 WHERE campaign_id = $1 AND contact_id = $2")
            .bind(id).bind(contact).bind(reason).execute(p).await.map(|_| ())?);
        Ok(())
    }

    /// Skips every pending member (a cancelled campaign); how many.
    pub async fn skip_pending_campaign_members(&self, id: Uuid, reason: &str) -> Result<u64> {
        Ok(write_pool!(self, p => sqlx::query(
            "UPDATE campaign_members SET state = 'skipped', reason = $2 WHERE campaign_id = $1 AND state = 'pending'")
            .bind(id).bind(reason).execute(p).await?.rows_affected()))
    }

    /// The campaign's calls not started yet: `(call)` ids, to cancel.
    pub async fn campaign_calls_not_started(&self, id: Uuid) -> Result<Vec<Uuid>> {
        Ok(read_pool!(self, p => sqlx::query_scalar(
            "SELECT c.id FROM campaign_members m JOIN calls c ON c.id = m.call_id
             WHERE m.campaign_id = $1 AND c.progress IN ('scheduled', 'queued')")
            .bind(id).fetch_all(p).await?))
    }

    /// Statuses of the campaign's last `n` calls that ended after `since`, newest first (its
    /// circuit breaker, which looks only at calls since the campaign last started or resumed).
    pub async fn campaign_last_statuses(&self, id: Uuid, since: DateTime<Utc>, n: i64) -> Result<Vec<Option<String>>> {
        Ok(read_pool!(self, p => sqlx::query_scalar(
            "SELECT c.status FROM campaign_members m JOIN calls c ON c.id = m.call_id
             WHERE m.campaign_id = $1 AND c.progress = 'ended' AND c.ended_at > $2 ORDER BY c.ended_at DESC LIMIT $3")
            .bind(id).bind(since).bind(n).fetch_all(p).await?))
    }

    pub async fn campaign_counts(&self, id: Uuid) -> Result<CampaignCounts> {
        let members = read_pool!(self, p => sqlx::query_as(
            "SELECT state, reason, COUNT(*) FROM campaign_members WHERE campaign_id = $1 GROUP BY state, reason")
            .bind(id).fetch_all(p).await?);
        let calls = read_pool!(self, p => sqlx::query_as(
            "SELECT c.progress, c.status, COUNT(*) FROM campaign_members m JOIN calls c ON c.id = m.call_id
             WHERE m.campaign_id = $1 GROUP BY c.progress, c.status")
            .bind(id).fetch_all(p).await?);
        Ok(CampaignCounts { members, calls })
    }

    /// Members of a finished campaign worth calling again: their call ended unanswered (rang
    /// out, unavailable, voicemail), in the order they were called.
    pub async fn campaign_members_to_redial(&self, id: Uuid) -> Result<Vec<Uuid>> {
        Ok(read_pool!(self, p => sqlx::query_scalar(
            "SELECT m.contact_id FROM campaign_members m JOIN calls c ON c.id = m.call_id
             WHERE m.campaign_id = $1 AND c.progress = 'ended' AND c.status IN ('rang-out', 'User unavailable', 'voicemail')
             ORDER BY m.seq")
            .bind(id).fetch_all(p).await?))
    }
}
