//! Phone numbers and calls. The calls table is the dispatch queue: `due_ms` says when a call may be
//! taken, a lease (`lease_owner`, `lease_until_ms`) says who holds it. Every change of `progress` is
//! written with an event in the same transaction, so the timeline has each transition once.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::{types::Json, FromRow};
use uuid::Uuid;

use super::{
    contacts::{upsert_contact_in, Contact},
    objects::{upsert_object_in, LinkRefusal, Upsert},
    read_pool, transaction, write_pool, Db, Result, Seek, StoreError, WriteError,
};
use crate::domain::{
    call::{CallStatus, CallingWindow, Progress, RetryPolicy},
    contact::ValidContact,
    new_id,
};

#[derive(Debug, Clone, FromRow)]
pub struct Call {
    pub id: Uuid,
    pub team_id: Uuid,
    pub call_type: String,
    pub progress: Progress,
    pub status: Option<CallStatus>,
    pub end_reason: Option<String>,
    pub script_id: Uuid,
    pub contact_id: Option<Uuid>,
    pub from_number: Option<String>,
    pub to_number: Option<String>,
    pub timezone: String,
    pub scheduled_time: DateTime<Utc>,
    pub latest_time: Option<DateTime<Utc>>,
    pub due_ms: i64,
    pub latest_ms: Option<i64>,
    pub calling_window: Option<Json<CallingWindow>>,
    pub retry_policy: Json<RetryPolicy>,
    pub attempts: i32,
    pub lease_owner: Option<String>,
    pub lease_until_ms: Option<i64>,
    pub metadata: Json<Map<String, Value>>,
    pub variables: Json<Map<String, Value>>,
    pub result: Option<Json<Value>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// The object the call was created with (also linked to its contact).
    pub object_id: Option<Uuid>,
    /// The version of the script the call runs (the script's current one when it was created).
    pub script_version: i32,
}

impl Call {
    /// A new call row with defaults: scheduled now, one attempt allowed, no window, nothing run.
    /// Callers set what differs with struct update syntax.
    pub fn new(team_id: Uuid, call_type: &str, script_id: Uuid, timezone: String, at: DateTime<Utc>) -> Self {
        Call {
            id: new_id(),
            team_id,
            call_type: call_type.into(),
            progress: Progress::Scheduled,
            status: None,
            end_reason: None,
            script_id,
            contact_id: None,
            from_number: None,
            to_number: None,
            timezone,
            scheduled_time: at,
            latest_time: None,
            due_ms: at.timestamp_millis(),
            latest_ms: None,
            calling_window: None,
            retry_policy: Json(RetryPolicy::default()),
            attempts: 0,
            lease_owner: None,
            lease_until_ms: None,
            metadata: Json(Map::new()),
            variables: Json(Map::new()),
            result: None,
            created_at: at,
            updated_at: at,
            started_at: None,
            ended_at: None,
            object_id: None,
            script_version: 1,
        }
    }
}

pub(crate) const COLUMNS: &str = "id, team_id, call_type, progress, status, end_reason, script_id, contact_id, \
     from_number, to_number, timezone, scheduled_time, latest_time, due_ms, latest_ms, calling_window, retry_policy, attempts, \
     lease_owner, lease_until_ms, metadata, variables, result, created_at, updated_at, started_at, ended_at, object_id, \
     script_version";

#[derive(Debug, Clone, FromRow)]
pub struct CallEvent {
    pub id: Uuid,
    pub call_id: Uuid,
    pub at: DateTime<Utc>,
    pub attempt: i32,
    pub progress: Progress,
    pub status: Option<CallStatus>,
    pub detail: Option<Json<Value>>,
}

/// Filters of the call listing (all optional).
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub status: Option<String>,
    pub call_type: Option<String>,
    pub progress: Option<String>,
    pub contact_id: Option<Uuid>,
    pub script_id: Option<Uuid>,
    pub created_after: Option<Uuid>,
    pub created_before: Option<Uuid>,
    /// Only the calls of this campaign.
    pub campaign_id: Option<Uuid>,
    pub page: Seek,
}

const INSERT_EVENT: &str =
    "INSERT INTO call_events (id, call_id, at, attempt, progress, status, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Writes an attempt's end inside a transaction: scheduled again at `$retry` or ended, with its
/// event. (A macro so that the same code serves both backends' transactions.)
macro_rules! settle {
    ($tx:expr, $call:expr, $status:expr, $end_reason:expr, $retry:expr, $result:expr, $now:expr) => {{
        let call = $call;
        let retry: Option<DateTime<Utc>> = $retry;
        let (progress, due_ms, ended_at) = match retry {
            Some(at) => ("scheduled", at.timestamp_millis(), None),
            None => ("ended", call.due_ms, Some($now)),
        };
        let result: Option<Value> = $result;
        sqlx::query(
            "UPDATE calls SET progress = $2, status = $3, end_reason = $4, due_ms = $5, ended_at = $6, updated_at = $7,
               lease_owner = NULL, lease_until_ms = NULL, result = COALESCE($8, result) WHERE id = $1",
        )
        .bind(call.id).bind(progress).bind($status).bind($end_reason).bind(due_ms).bind(ended_at).bind($now).bind(result.map(Json))
        .execute(&mut *$tx).await?;
        let detail = serde_json::json!({"end_reason": $end_reason, "retry_at": retry});
        sqlx::query(INSERT_EVENT)
            .bind(new_id()).bind(call.id).bind($now).bind(call.attempts).bind(progress).bind($status).bind(Some(Json(detail)))
            .execute(&mut *$tx).await?;
    }};
}

/// Sets a call's progress with an event, inside a transaction.
macro_rules! mark {
    ($tx:expr, $call:expr, $progress:expr, $due_ms:expr, $detail:expr, $now:expr) => {{
        let call = $call;
        sqlx::query("UPDATE calls SET progress = $2, due_ms = $3, updated_at = $4 WHERE id = $1")
            .bind(call.id)
            .bind($progress)
            .bind($due_ms)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        sqlx::query(INSERT_EVENT)
            .bind(new_id())
            .bind(call.id)
            .bind($now)
            .bind(call.attempts)
            .bind($progress)
            .bind(Option::<String>::None)
            .bind($detail)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// Inserts a call and its first event inside a transaction.
macro_rules! insert_call_in {
    ($tx:expr, $c:expr) => {{
        let c: &Call = $c;
        let sql = format!(
            "INSERT INTO calls ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)"
        );
        sqlx::query(&sql)
            .bind(c.id).bind(c.team_id).bind(&c.call_type).bind(&c.progress).bind(&c.status).bind(&c.end_reason)
            .bind(c.script_id).bind(c.contact_id).bind(&c.from_number).bind(&c.to_number).bind(&c.timezone).bind(c.scheduled_time)
            .bind(c.latest_time).bind(c.due_ms).bind(c.latest_ms).bind(&c.calling_window).bind(&c.retry_policy)
            .bind(c.attempts).bind(&c.lease_owner).bind(c.lease_until_ms).bind(&c.metadata).bind(&c.variables)
            .bind(&c.result).bind(c.created_at).bind(c.updated_at).bind(c.started_at).bind(c.ended_at).bind(c.object_id)
            .bind(c.script_version)
            .execute(&mut *$tx).await?;
        sqlx::query(INSERT_EVENT)
            .bind(new_id()).bind(c.id).bind(c.created_at).bind(c.attempts).bind(&c.progress).bind(Option::<String>::None)
            .bind(Some(Json(serde_json::json!({"scheduled_time": c.scheduled_time, "timezone": c.timezone}))))
            .execute(&mut *$tx).await?;
    }};
}

/// A new call's contact: to upsert by phone number, or one the team has.
#[derive(Debug, Clone)]
pub enum CallContact {
    Upsert(ValidContact),
    Existing(Contact),
}

/// Why a cancel or reschedule was refused.
#[derive(Debug, PartialEq)]
pub enum NotChanged {
    NotFound,
    /// The call has started (or ended); carries its progress.
    AlreadyStarted(Progress),
}

impl Db {
    /// Inserts a call with its first event (`scheduled`).
    pub async fn insert_call(&self, c: &Call) -> Result<()> {
        transaction!(self, tx => {
            insert_call_in!(tx, c);
            Ok::<_, StoreError>(())
        })?;
        Ok(())
    }

    /// A new call's writes, in one transaction: the contact upserted by phone number (or one the
    /// team has), the object (if any) upserted and linked to the contact, then the call linked to
    /// both; `fill` sets what depends on the contact as stored (its number, the callee's zone). A
    /// refused object link rolls everything back (no contact, object or call stays).
    pub async fn create_call(
        &self,
        contact: CallContact,
        object: Option<Upsert<'_>>,
        mut call: Call,
        fill: impl FnOnce(&Contact, &mut Call),
    ) -> std::result::Result<(Call, Contact), WriteError<LinkRefusal>> {
        let at = call.created_at;
        transaction!(self, tx => {
            let contact = match contact {
                CallContact::Upsert(valid) => upsert_contact_in!(tx, call.team_id, valid, at).0,
                CallContact::Existing(c) => c,
            };
            call.contact_id = Some(contact.id);
            fill(&contact, &mut call);
            if let Some(mut u) = object {
                u.contact_id = Some(contact.id);
                let (id, _, _) = upsert_object_in!(tx, u, at).map_err(WriteError::Refused)?;
                call.object_id = Some(id);
            }
            insert_call_in!(tx, &call);
            Ok((call, contact))
        })
    }

    pub async fn get_call(&self, team_id: Uuid, id: Uuid) -> Result<Option<Call>> {
        let sql = format!("SELECT {COLUMNS} FROM calls WHERE team_id = $1 AND id = $2");
        Ok(read_pool!(self, p => sqlx::query_as::<_, Call>(&sql).bind(team_id).bind(id).fetch_optional(p).await?))
    }

    /// The team a call belongs to, by the call's id alone (a webhook from a carrier names only
    /// the call).
    pub async fn call_team(&self, id: Uuid) -> Result<Option<Uuid>> {
        Ok(
            read_pool!(self, p => sqlx::query_scalar("SELECT team_id FROM calls WHERE id = $1").bind(id).fetch_optional(p).await?),
        )
    }

    /// A page of the team's calls. `created_after`/`created_before` are id bounds (ids are
    /// time-ordered; see `domain::call::id_bound`).
    pub async fn list_calls(&self, team_id: Uuid, f: &CallFilter) -> Result<Vec<Call>> {
        let sql = format!(
            "SELECT {COLUMNS} FROM calls WHERE team_id = $1
               AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR call_type = $3) AND ($4 IS NULL OR progress = $4)
               AND ($5 IS NULL OR contact_id = $5) AND ($6 IS NULL OR script_id = $6)
               AND ($7 IS NULL OR id >= $7) AND ($8 IS NULL OR id < $8) AND {}
               AND ($11 IS NULL OR id IN (SELECT call_id FROM campaign_members WHERE campaign_id = $11))
             {} LIMIT $10",
            f.page.beyond("id", 9),
            f.page.order_by("id")
        );
        Ok(read_pool!(self, p => sqlx::query_as::<_, Call>(&sql)
            .bind(team_id).bind(&f.status).bind(&f.call_type).bind(&f.progress).bind(f.contact_id).bind(f.script_id)
            .bind(f.created_after).bind(f.created_before).bind(f.page.after).bind(f.page.limit).bind(f.campaign_id)
            .fetch_all(p).await?))
    }

    pub async fn call_events(&self, call_id: Uuid) -> Result<Vec<CallEvent>> {
        Ok(read_pool!(self, p => sqlx::query_as::<_, CallEvent>(
            "SELECT id, call_id, at, attempt, progress, status, detail FROM call_events WHERE call_id = $1 ORDER BY id")
            .bind(call_id).fetch_all(p).await?))
    }

    /// The team's call events at or after `since`, oldest first (the dashboard's live view).
    pub async fn team_call_events_since(
        &self,
        team_id: Uuid,
        since: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<CallEvent>> {
        Ok(read_pool!(self, p => sqlx::query_as::<_, CallEvent>(
            "SELECT e.id, e.call_id, e.at, e.attempt, e.progress, e.status, e.detail
             FROM call_events e JOIN calls c ON c.id = e.call_id
             WHERE c.team_id = $1 AND e.at >= $2 ORDER BY e.at, e.id LIMIT $3")
            .bind(team_id).bind(since).bind(limit).fetch_all(p).await?))
    }

    /// Cancels a call that has not started.
    pub async fn cancel_call(
        &self,
        team_id: Uuid,
        id: Uuid,
        at: DateTime<Utc>,
    ) -> Result<std::result::Result<Call, NotChanged>> {
        let update = format!(
            "UPDATE calls SET progress = 'cancelled', end_reason = 'api_cancelled', ended_at = $3, updated_at = $3,
               lease_owner = NULL, lease_until_ms = NULL
             WHERE team_id = $1 AND id = $2 AND progress IN ('scheduled', 'queued') RETURNING {COLUMNS}"
        );
        self.change_unstarted(team_id, id, at, &update, None, None).await
    }

    /// Moves a call that has not started to a new time.
    pub async fn reschedule_call(
        &self,
        team_id: Uuid,
        id: Uuid,
        scheduled_time: DateTime<Utc>,
        at: DateTime<Utc>,
    ) -> Result<std::result::Result<Call, NotChanged>> {
        let update = format!(
            "UPDATE calls SET progress = 'scheduled', scheduled_time = $4, due_ms = $5, updated_at = $3
             WHERE team_id = $1 AND id = $2 AND progress IN ('scheduled', 'queued') RETURNING {COLUMNS}"
        );
        self.change_unstarted(
            team_id,
            id,
            at,
            &update,
            Some(scheduled_time),
            Some(scheduled_time.timestamp_millis()),
        )
        .await
    }

    async fn change_unstarted(
        &self,
        team_id: Uuid,
        id: Uuid,
        at: DateTime<Utc>,
        update: &str,
        scheduled: Option<DateTime<Utc>>,
        due_ms: Option<i64>,
    ) -> Result<std::result::Result<Call, NotChanged>> {
        let select = format!("SELECT {COLUMNS} FROM calls WHERE team_id = $1 AND id = $2");
        transaction!(self, tx => {
            let mut q = sqlx::query_as::<_, Call>(update).bind(team_id).bind(id).bind(at);
            if let (Some(s), Some(d)) = (scheduled, due_ms) {
                q = q.bind(s).bind(d);
            }
            match q.fetch_optional(&mut *tx).await? {
                Some(call) => {
                    let detail = scheduled.map(|s| Json(serde_json::json!({"scheduled_time": s})));
                    sqlx::query(INSERT_EVENT)
                        .bind(new_id()).bind(call.id).bind(at).bind(call.attempts).bind(call.progress).bind(call.status).bind(detail)
                        .execute(&mut *tx).await?;
                    Ok(Ok(call))
                }
                None => match sqlx::query_as::<_, Call>(&select).bind(team_id).bind(id).fetch_optional(&mut *tx).await? {
                    Some(c) => Ok(Err(NotChanged::AlreadyStarted(c.progress))),
                    None => Ok(Err(NotChanged::NotFound)),
                },
            }
        })
    }

    /// Records transitions of a call held under lease by `owner`, in order and in one write (a
    /// carrier reports back-to-back steps together, e.g. ringing then answered at once), one event
    /// each. False when the lease is gone (the call was cancelled, or another worker took it over),
    /// in which case nothing is written.
    pub async fn record_progress(
        &self,
        call_id: Uuid,
        owner: &str,
        steps: &[Progress],
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let Some(last) = steps.last() else { return Ok(true) };
        let started = steps.contains(&Progress::InProgress);
        let update = "UPDATE calls SET progress = $3, updated_at = $4,
               started_at = CASE WHEN $5 THEN COALESCE(started_at, $4) ELSE started_at END
             WHERE id = $1 AND lease_owner = $2 RETURNING attempts";
        transaction!(self, tx => {
            let attempt: Option<i32> = sqlx::query_scalar(update)
                .bind(call_id).bind(owner).bind(last.as_str()).bind(at).bind(started)
                .fetch_optional(&mut *tx).await?;
            match attempt {
                Some(attempt) => {
                    for step in steps {
                        sqlx::query(INSERT_EVENT)
                            .bind(new_id()).bind(call_id).bind(at).bind(attempt).bind(step.as_str())
                            .bind(Option::<String>::None).bind(Option::<Json<Value>>::None)
                            .execute(&mut *tx).await?;
                    }
                    Ok(true)
                }
                None => Ok(false),
            }
        })
    }
}

/// A due call as the dispatcher first sees it.
#[derive(Debug, FromRow)]
struct Candidate {
    id: Uuid,
    team_id: Uuid,
    progress: Progress,
    due_ms: i64,
    latest_ms: Option<i64>,
    calling_window: Option<Json<CallingWindow>>,
    timezone: String,
    attempts: i32,
    from_number: Option<String>,
}

/// What one dispatch pass did.
#[derive(Debug, Default)]
pub struct Claim {
    /// Calls now leased to the caller, progress `dialing`, attempt counted.
    pub claimed: Vec<Call>,
    /// Calls whose `latest_time` passed before they could ring.
    pub expired: usize,
    /// Calls moved to the next opening of their calling window.
    pub deferred: usize,
    /// Calls waiting for a free line (team at its concurrency limit).
    pub queued: usize,
    /// Calls whose worker's lease ran out mid-call (retried or ended).
    pub recovered: usize,
    /// Calls held back by their caller id's calls-per-second limit (they stay due).
    pub paced: usize,
}

const ACTIVE: &str = "('dialing', 'ringing', 'in_progress')";

impl Db {
    /// Takes due calls for `owner` under a lease, applying expiry, calling windows and each team's
    /// concurrent-call limit, and recovers calls whose lease ran out. On PostgreSQL candidate rows
    /// are locked with `FOR UPDATE SKIP LOCKED` and each team row is locked while its active calls
    /// are counted, so two dispatchers neither take the same call nor exceed a limit; on SQLite
    /// the single writer serialises passes.
    pub async fn claim_due_calls(
        &self,
        now: DateTime<Utc>,
        owner: &str,
        lease_ms: i64,
        batch: i64,
        default_limit: i64,
        number_interval_ms: i64,
    ) -> Result<Claim> {
        let pg = matches!(self, Db::Postgres(_));
        let lock = if pg { " FOR UPDATE SKIP LOCKED" } else { "" };
        let lost = format!(
            "SELECT {COLUMNS} FROM calls WHERE progress IN ('dialing', 'ringing', 'in_progress', 'processing')
               AND lease_until_ms < $1 ORDER BY lease_until_ms LIMIT $2{lock}"
        );
        // Only what the checks need: full rows are read back for the calls actually claimed.
        // A call without a window of its own follows its team's default window.
        let due = format!(
            "SELECT c.id, c.team_id, c.progress, c.due_ms, c.latest_ms, COALESCE(c.calling_window, t.calling_window) AS calling_window,
               c.timezone, c.attempts, c.from_number
             FROM calls c JOIN teams t ON t.id = c.team_id
             WHERE c.progress IN ('scheduled', 'queued') AND c.due_ms <= $1 ORDER BY c.due_ms, c.id LIMIT $2{}",
            if pg { " FOR UPDATE OF c SKIP LOCKED" } else { "" }
        );
        let team_limit = format!(
            "SELECT COALESCE(max_concurrent_calls, $2) FROM teams WHERE id = $1{}",
            if pg { " FOR UPDATE" } else { "" }
        );
        let active = format!("SELECT COUNT(*) FROM calls WHERE team_id = $1 AND progress IN {ACTIVE}");
        let last_dial = format!(
            "SELECT last_dial_ms FROM phone_numbers WHERE team_id = $1 AND number = $2{}",
            if pg { " FOR UPDATE" } else { "" }
        );
        let mut numbers: std::collections::HashMap<(Uuid, String), i64> = Default::default();
        let now_ms = now.timestamp_millis();
        let mut out = Claim::default();
        transaction!(self, tx => {
            for call in sqlx::query_as::<_, Call>(&lost).bind(now_ms).bind(batch).fetch_all(&mut *tx).await? {
                let status = if matches!(call.progress, Progress::Dialing | Progress::Ringing) { "failed" } else { "dropout" };
                // A call whose workers keep dying on it is not retried again (poison guard).
                let lost: i32 = sqlx::query_scalar("UPDATE calls SET lost_attempts = lost_attempts + 1 WHERE id = $1 RETURNING lost_attempts")
                    .bind(call.id).fetch_one(&mut *tx).await?;
                let retry = crate::domain::call::CallStatus::parse(status)
                    .filter(|_| lost < crate::domain::call::MAX_LOST_ATTEMPTS)
                    .and_then(|s| call.retry_policy.0.next_attempt(call.attempts as u32, s, now));
                if lost >= crate::domain::call::MAX_LOST_ATTEMPTS {
                    tracing::warn!(call_id = %call.id, lost, "call's worker was lost again; not retried");
                }
                settle!(tx, &call, status, "worker lost", retry, None, now);
                out.recovered += 1;
            }
            let mut teams: std::collections::HashMap<Uuid, (i64, i64)> = Default::default();
            for call in sqlx::query_as::<_, Candidate>(&due).bind(now_ms).bind(batch).fetch_all(&mut *tx).await? {
                if call.latest_ms.is_some_and(|l| l < now_ms) {
                    settle!(tx, &call, "failed", "expired", None, None, now);
                    out.expired += 1;
                    continue;
                }
                if let Some(window) = &call.calling_window {
                    let tz: chrono_tz::Tz = call.timezone.parse().unwrap_or(chrono_tz::UTC);
                    let open = window.0.next_open(now, tz);
                    if open > now {
                        // Logged once: the call is not looked at again before its window opens.
                        tracing::info!(call_id = %call.id, opens = %open, "call held for its calling window");
                        let detail = Some(Json(serde_json::json!({"waiting_for_calling_window": open})));
                        mark!(tx, &call, "scheduled", open.timestamp_millis(), detail, now);
                        out.deferred += 1;
                        continue;
                    }
                }
                if let std::collections::hash_map::Entry::Vacant(slot) = teams.entry(call.team_id) {
                    let limit: i64 = sqlx::query_scalar(&team_limit).bind(call.team_id).bind(default_limit).fetch_one(&mut *tx).await?;
                    let busy: i64 = sqlx::query_scalar(&active).bind(call.team_id).fetch_one(&mut *tx).await?;
                    slot.insert((limit, busy));
                }
                let (limit, busy) = teams.get_mut(&call.team_id).expect("inserted above");
                if *busy >= *limit {
                    if call.progress == Progress::Scheduled {
                        let detail = Some(Json(serde_json::json!({"waiting_for": "a free line", "limit": *limit})));
                        mark!(tx, &call, "queued", call.due_ms, detail, now);
                    }
                    out.queued += 1;
                    continue;
                }
                if let (true, Some(from)) = (number_interval_ms > 0, &call.from_number) {
                    let key = (call.team_id, from.clone());
                    let last = match numbers.get(&key) {
                        Some(at) => Some(*at),
                        None => sqlx::query_scalar::<_, Option<i64>>(&last_dial)
                            .bind(call.team_id)
                            .bind(from)
                            .fetch_optional(&mut *tx)
                            .await?
                            .flatten(),
                    };
                    if last.is_some_and(|at| now_ms - at < number_interval_ms) {
                        out.paced += 1;
                        continue;
                    }
                    sqlx::query("UPDATE phone_numbers SET last_dial_ms = $3 WHERE team_id = $1 AND number = $2")
                        .bind(call.team_id)
                        .bind(from)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await?;
                    numbers.insert(key, now_ms);
                }
                *busy += 1;
                let claimed: Call = sqlx::query_as(&format!(
                    "UPDATE calls SET progress = 'dialing', attempts = attempts + 1, lease_owner = $2, lease_until_ms = $3,
                       status = NULL, end_reason = NULL, updated_at = $4
                     WHERE id = $1 RETURNING {COLUMNS}"
                ))
                .bind(call.id).bind(owner).bind(now_ms + lease_ms).bind(now)
                .fetch_one(&mut *tx).await?;
                sqlx::query(INSERT_EVENT)
                    .bind(new_id()).bind(call.id).bind(now).bind(claimed.attempts).bind("dialing").bind(Option::<String>::None)
                    .bind(Some(Json(serde_json::json!({"worker": owner}))))
                    .execute(&mut *tx).await?;
                out.claimed.push(claimed);
            }
            Ok::<_, StoreError>(())
        })?;
        Ok(out)
    }

    /// Keeps a lease alive while a call runs; false when it was lost.
    pub async fn extend_lease(&self, call_id: Uuid, owner: &str, until_ms: i64) -> Result<bool> {
        let n = write_pool!(self, pool => sqlx::query("UPDATE calls SET lease_until_ms = $3 WHERE id = $1 AND lease_owner = $2")
            .bind(call_id).bind(owner).bind(until_ms).execute(pool).await?.rows_affected());
        Ok(n == 1)
    }

    /// Ends an attempt held by `owner`: the call is scheduled again at `retry` or ended. Stores the
    /// attempt's result. False when the lease was lost (nothing written).
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_attempt(
        &self,
        call_id: Uuid,
        owner: &str,
        status: &str,
        end_reason: &str,
        retry: Option<DateTime<Utc>>,
        result: Value,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.finish_processed_attempt(call_id, owner, None, status, end_reason, retry, result, now)
            .await
    }

    /// [`Db::finish_attempt`], also recording `processing` (from `processing_at`) in the same
    /// write: the dispatcher's short analyses need no write of their own for that step.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_processed_attempt(
        &self,
        call_id: Uuid,
        owner: &str,
        processing_at: Option<DateTime<Utc>>,
        status: &str,
        end_reason: &str,
        retry: Option<DateTime<Utc>>,
        result: Value,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let (progress, due_ms, ended_at) = match retry {
            Some(at) => ("scheduled", Some(at.timestamp_millis()), None),
            None => ("ended", None, Some(now)),
        };
        // The lease check is the update's own condition: no read first.
        let update = "UPDATE calls SET progress = $3, status = $4, end_reason = $5, due_ms = COALESCE($6, due_ms),
               ended_at = $7, updated_at = $8, lease_owner = NULL, lease_until_ms = NULL, result = $9
             WHERE id = $1 AND lease_owner = $2 RETURNING attempts";
        let detail = Json(serde_json::json!({"end_reason": end_reason, "retry_at": retry}));
        transaction!(self, tx => {
            let attempt: Option<i32> = sqlx::query_scalar(update)
                .bind(call_id).bind(owner).bind(progress).bind(status).bind(end_reason).bind(due_ms).bind(ended_at)
                .bind(now).bind(Json(result))
                .fetch_optional(&mut *tx).await?;
            let Some(attempt) = attempt else { return Ok(false) };
            if let Some(at) = processing_at {
                sqlx::query(INSERT_EVENT)
                    .bind(new_id()).bind(call_id).bind(at).bind(attempt).bind(Progress::Processing.as_str())
                    .bind(Option::<String>::None).bind(Option::<Json<Value>>::None)
                    .execute(&mut *tx).await?;
            }
            sqlx::query(INSERT_EVENT)
                .bind(new_id()).bind(call_id).bind(now).bind(attempt).bind(progress).bind(status).bind(Some(detail))
                .execute(&mut *tx).await?;
            Ok(true)
        })
    }
}

impl Db {
    /// Ends an active web call with the given outcome; the call as it is when it is not an
    /// active web call (nothing written).
    pub async fn end_web_call(
        &self,
        team_id: Uuid,
        id: Uuid,
        status: &str,
        end_reason: &str,
        at: DateTime<Utc>,
    ) -> Result<std::result::Result<Call, Option<Call>>> {
        let update = format!(
            "UPDATE calls SET progress = 'ended', status = $3, end_reason = $4, ended_at = $5, updated_at = $5
             WHERE team_id = $1 AND id = $2 AND call_type = 'web' AND progress NOT IN ('ended', 'cancelled')
             RETURNING {COLUMNS}"
        );
        let select = format!("SELECT {COLUMNS} FROM calls WHERE team_id = $1 AND id = $2");
        transaction!(self, tx => {
            match sqlx::query_as::<_, Call>(&update).bind(team_id).bind(id).bind(status).bind(end_reason).bind(at)
                .fetch_optional(&mut *tx).await?
            {
                Some(call) => {
                    sqlx::query(INSERT_EVENT)
                        .bind(new_id()).bind(call.id).bind(at).bind(call.attempts).bind("ended").bind(status)
                        .bind(Some(Json(serde_json::json!({"end_reason": end_reason}))))
                        .execute(&mut *tx).await?;
                    Ok(Ok(call))
                }
                None => Ok(Err(sqlx::query_as::<_, Call>(&select).bind(team_id).bind(id).fetch_optional(&mut *tx).await?)),
            }
        })
    }
}

impl Db {
    /// The browser joined a web call that is waiting for it: it is taken under `owner`'s lease and
    /// is `in_progress` from `at`. None when the call is no longer waiting (ended, cancelled, or
    /// already joined): a web call is joined once.
    pub async fn join_web_call(
        &self,
        id: Uuid,
        owner: &str,
        lease_until_ms: i64,
        at: DateTime<Utc>,
    ) -> Result<Option<Call>> {
        let update = format!(
            "UPDATE calls SET progress = 'in_progress', lease_owner = $2, lease_until_ms = $3,
               started_at = COALESCE(started_at, $4), updated_at = $4
             WHERE id = $1 AND call_type = 'web' AND progress = 'ringing' AND lease_owner IS NULL
             RETURNING {COLUMNS}"
        );
        transaction!(self, tx => {
            let call: Option<Call> = sqlx::query_as(&update).bind(id).bind(owner).bind(lease_until_ms).bind(at)
                .fetch_optional(&mut *tx).await?;
            if let Some(call) = &call {
                sqlx::query(INSERT_EVENT)
                    .bind(new_id()).bind(call.id).bind(at).bind(call.attempts).bind("in_progress").bind(Option::<String>::None)
                    .bind(Some(Json(serde_json::json!({"worker": owner, "joined": "browser"}))))
                    .execute(&mut *tx).await?;
            }
            Ok(call)
        })
    }
}
