//! Campaigns: call everyone on a list with one script, politely. A campaign never floods the
//! queue: its worker ([`feed`]) creates a member's call through the calls service only when the
//! campaign has room (`max_concurrent_calls` calls not yet over, `calls_per_minute` created in
//! the last minute), so the dispatcher's own rules (the team's line limit, calling windows in the
//! callee's zone, retries) apply unchanged and other calls of the team, and other teams, keep
//! their turn. Numbers on the do-not-call list are skipped (when the campaign is made, and again
//! when a member's turn comes); a circuit breaker pauses the campaign when too many of its last
//! calls failed; everything it does is in its log.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use sqlx::types::Json;
use uuid::Uuid;

use crate::{
    calls::{self, Callee, CreateCallError, Kind, NewCall, TeamScope},
    conversation::script::ScriptType,
    do_not_call,
    domain::{
        call::{CallingWindow, RetryPolicy},
        new_id, phone, FieldError,
    },
    store::{
        campaigns::{Campaign, Transition},
        Db, StoreError,
    },
};

/// Members called by one worker pass at most.
const PASS: i64 = 100;
/// The breaker looks at this many of the last ended calls...
pub const BREAKER_WINDOW: i64 = 10;
/// ...and pauses the campaign when at least this share of them failed.
pub const BREAKER_SHARE: f64 = 0.5;

/// A campaign as asked for.
#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub name: String,
    pub list_id: Uuid,
    pub script_id: Uuid,
    pub from_numbers: Vec<String>,
    pub scheduled_time: Option<DateTime<Utc>>,
    pub calling_window: Option<CallingWindow>,
    pub max_concurrent_calls: Option<u32>,
    pub calls_per_minute: Option<u32>,
    pub retry_policy: Option<RetryPolicy>,
    pub variables: Map<String, Value>,
    pub join_new_members: bool,
    /// Call again the members of this finished campaign whose calls went unanswered.
    pub redial_of: Option<Uuid>,
}

/// Who a campaign would call.
#[derive(Debug, Default, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Preview {
    /// Members the campaign starts with.
    pub members: u64,
    /// Of them, those who will be called.
    pub to_call: u64,
    /// Skipped: their number is on the do-not-call list.
    pub do_not_call: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the campaign is {0}; {1}")]
    Refused(String, &'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks a campaign and who it would call; writes nothing.
async fn plan(
    db: &Db,
    team: &TeamScope,
    new: &NewCampaign,
) -> Result<(Vec<String>, Vec<(Uuid, Option<String>)>), CampaignError> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 255 {
        return Err(FieldError::new("name", "must be 1 to 255 characters").into());
    }
    if new.from_numbers.is_empty() || new.from_numbers.len() > 20 {
        return Err(FieldError::new("from_numbers", "must name 1 to 20 of your team's numbers").into());
    }
    let mut from = Vec::new();
    for (i, n) in new.from_numbers.iter().enumerate() {
        let field = format!("from_numbers[{i}]");
        let e164 = phone::normalize(&field, n, team.region)?;
        if db.team_number(team.id, &e164).await?.is_none() {
            return Err(FieldError::new(field, format!("{e164} is not one of your team's numbers")).into());
        }
        from.push(e164);
    }
    if let Some(n) = new.max_concurrent_calls.filter(|n| !(1..=100).contains(n)) {
        return Err(FieldError::new("max_concurrent_calls", format!("must be 1 to 100, not {n}")).into());
    }
    if let Some(n) = new.calls_per_minute.filter(|n| !(1..=600).contains(n)) {
        return Err(FieldError::new("calls_per_minute", format!("must be 1 to 600, not {n}")).into());
    }
    if let Some(w) = &new.calling_window {
        w.check().map_err(|e| FieldError::new("calling_window", e))?;
    }
    if let Some(r) = &new.retry_policy {
        r.check().map_err(|e| FieldError::new("retry_policy", e))?;
    }
    if serde_json::to_vec(&new.variables).map_or(usize::MAX, |v| v.len()) > 16 * 1024 {
        return Err(FieldError::new("variables", "must be at most 16 KiB of JSON").into());
    }
    let script = db
        .get_script(team.id, new.script_id)
        .await?
        .ok_or(CampaignError::NotFound("Script"))?;
    if script.definition.0.script_type != ScriptType::Outbound {
        return Err(FieldError::new("script_id", "is an inbound script; campaigns need an outbound one").into());
    }
    db.get_list(team.id, new.list_id)
        .await?
        .ok_or(CampaignError::NotFound("List"))?;
    let contacts: Vec<Uuid> = match new.redial_of {
        Some(first) => {
            let c = db
                .get_campaign(team.id, first)
                .await?
                .ok_or(CampaignError::NotFound("Campaign"))?;
            if !matches!(c.status.as_str(), "completed" | "cancelled") {
                return Err(FieldError::new("redial_of", "must be a completed or cancelled campaign").into());
            }
            db.campaign_members_to_redial(first).await?
        }
        None => all_members(db, new.list_id).await?,
    };
    let mut members = Vec::with_capacity(contacts.len());
    for contact in contacts {
        let listed = match db.get_contact(team.id, contact).await? {
            Some(c) => do_not_call::is_listed(db, team.id, &c.phone_number).await?,
            None => continue,
        };
        members.push((contact, listed.then(|| "do_not_call".to_owned())));
    }
    Ok((from, members))
}

async fn all_members(db: &Db, list_id: Uuid) -> Result<Vec<Uuid>, StoreError> {
    let mut out = Vec::new();
    let mut page = crate::store::Seek::oldest_first(1000);
    loop {
        let rows = db.list_members(list_id, page).await?;
        let more = rows.len() as i64 == page.limit;
        page.after = rows.last().map(|c| c.id);
        out.extend(rows.into_iter().map(|c| c.id));
        if !more {
            return Ok(out);
        }
    }
}

/// What a campaign would do (`dry_run`), without writing.
pub async fn preview(db: &Db, team: &TeamScope, new: &NewCampaign) -> Result<Preview, CampaignError> {
    let (_, members) = plan(db, team, new).await?;
    let skipped = members.iter().filter(|(_, s)| s.is_some()).count() as u64;
    Ok(Preview {
        members: members.len() as u64,
        to_call: members.len() as u64 - skipped,
        do_not_call: skipped,
    })
}

/// Creates the campaign; it starts at its time (now when not given).
pub async fn create(
    db: &Db,
    team: &TeamScope,
    new: NewCampaign,
    now: DateTime<Utc>,
) -> Result<(Campaign, Preview), CampaignError> {
    let (from, members) = plan(db, team, &new).await?;
    let skipped = members.iter().filter(|(_, s)| s.is_some()).count() as u64;
    let preview = Preview {
        members: members.len() as u64,
        to_call: members.len() as u64 - skipped,
        do_not_call: skipped,
    };
    let c = Campaign {
        id: new_id(),
        team_id: team.id,
        name: new.name.trim().to_owned(),
        list_id: new.list_id,
        script_id: new.script_id,
        from_numbers: Json(from),
        status: "scheduled".into(),
        scheduled_time: new.scheduled_time.filter(|t| *t > now).unwrap_or(now),
        calling_window: new.calling_window.map(Json),
        max_concurrent_calls: new.max_concurrent_calls.unwrap_or(5) as i32,
        calls_per_minute: new.calls_per_minute.map(|n| n as i32),
        retry_policy: new.retry_policy.map(Json),
        variables: Json(new.variables),
        join_new_members: new.join_new_members,
        status_reason: None,
        redial_of: new.redial_of,
        created_at: now,
        updated_at: now,
    };
    let log = format!(
        "created with {} members: {} to call, {} skipped (do-not-call){}",
        preview.members,
        preview.to_call,
        preview.do_not_call,
        new.redial_of
            .map(|r| format!("; redialling campaign {r}"))
            .unwrap_or_default()
    );
    db.insert_campaign(&c, &members, &log).await?;
    tracing::info!(campaign_id = %c.id, members = preview.members, "campaign created");
    Ok((c, preview))
}

/// Pauses a scheduled or running campaign: no new calls (those placed already finish).
pub async fn pause(db: &Db, team_id: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<Campaign, CampaignError> {
    transition(
        db,
        team_id,
        id,
        Transition {
            from: &["scheduled", "running"],
            to: "paused",
            reason: Some("paused through the API"),
            log: "paused through the API",
        },
        now,
        "only a scheduled or running campaign can be paused",
    )
    .await
}

/// Resumes a paused campaign.
pub async fn resume(db: &Db, team_id: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<Campaign, CampaignError> {
    transition(
        db,
        team_id,
        id,
        Transition {
            from: &["paused"],
            to: "running",
            reason: None,
            log: "resumed",
        },
        now,
        "only a paused campaign can be resumed",
    )
    .await
}

/// Cancels a campaign: members not called are skipped, its calls not started are cancelled.
pub async fn cancel(db: &Db, team_id: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<Campaign, CampaignError> {
    let c = transition(
        db,
        team_id,
        id,
        Transition {
            from: &["scheduled", "running", "paused"],
            to: "cancelled",
            reason: Some("cancelled through the API"),
            log: "cancelled through the API",
        },
        now,
        "it is over already",
    )
    .await?;
    let skipped = db.skip_pending_campaign_members(id, "cancelled").await?;
    let mut cancelled = 0;
    for call in db.campaign_calls_not_started(id).await? {
        if db.cancel_call(team_id, call, now).await?.is_ok() {
            cancelled += 1;
        }
    }
    db.log_campaign(
        id,
        "cancelled",
        &format!("{skipped} members not called; {cancelled} calls not started were cancelled"),
        now,
    )
    .await?;
    Ok(c)
}

async fn transition(
    db: &Db,
    team_id: Uuid,
    id: Uuid,
    t: Transition<'_>,
    now: DateTime<Utc>,
    refused: &'static str,
) -> Result<Campaign, CampaignError> {
    match db.set_campaign_status(team_id, id, t, now).await? {
        Some(c) => Ok(c),
        None => match db.get_campaign(team_id, id).await? {
            Some(c) => Err(CampaignError::Refused(c.status, refused)),
            None => Err(CampaignError::NotFound("Campaign")),
        },
    }
}

/// One pass of the campaign worker over every campaign due: starts those whose time has come,
/// creates calls where there is room, trips breakers and completes campaigns with nobody left.
/// Returns the calls created.
pub async fn feed(db: &Db, now: DateTime<Utc>) -> Result<usize, StoreError> {
    let hold = (now + Duration::seconds(60)).timestamp_millis();
    let mut created = 0;
    for c in db.take_campaigns_to_feed(now, hold).await? {
        let fed = feed_one(db, &c, now).await;
        db.release_campaign(c.id).await?;
        created += fed?;
    }
    Ok(created)
}

async fn feed_one(db: &Db, c: &Campaign, now: DateTime<Utc>) -> Result<usize, StoreError> {
    if c.status == "scheduled" {
        db.set_campaign_status(
            c.team_id,
            c.id,
            Transition {
                from: &["scheduled"],
                to: "running",
                reason: None,
                log: "started",
            },
            now,
        )
        .await?;
    }
    if c.join_new_members {
        let joined = db.add_new_campaign_members(c).await?;
        if joined > 0 {
            db.log_campaign(
                c.id,
                "members_joined",
                &format!("{joined} members added to the list joined"),
                now,
            )
            .await?;
        }
    }
    if let Some(why) = breaker(db, c).await? {
        let log = format!("paused: {why}");
        let t = Transition {
            from: &["running", "scheduled"],
            to: "paused",
            reason: Some(&why),
            log: &log,
        };
        db.set_campaign_status(c.team_id, c.id, t, now).await?;
        tracing::warn!(campaign_id = %c.id, %why, "campaign paused by its circuit breaker");
        return Ok(0);
    }
    let Some(team) = db.get_team(c.team_id).await? else {
        return Ok(0);
    };
    let scope = TeamScope::from(&team);
    // Calls chosen but never created (a worker stopped in between) are created first, same ids.
    let mut turns: Vec<(Uuid, Uuid)> = db.campaign_calls_missing(c.id).await?;
    let active = db.campaign_active_calls(c.id).await? + turns.len() as i64;
    let mut room = (i64::from(c.max_concurrent_calls) - active).clamp(0, PASS);
    if let Some(per_minute) = c.calls_per_minute {
        let recent = db.campaign_calls_since(c.id, now - Duration::seconds(60)).await?;
        room = room.min((i64::from(per_minute) - recent).max(0));
    }
    for contact in db.next_campaign_members(c.id, room).await? {
        let call_id = new_id();
        if db.choose_campaign_call(c.id, contact, call_id).await? {
            turns.push((contact, call_id));
        }
    }
    let mut created = 0;
    let mut skipped_dnc = 0;
    for (contact, call_id) in turns {
        match place(db, &scope, c, contact, call_id, now).await {
            Ok(()) => created += 1,
            Err(e) if e.is_transient() => return Err(StoreError::Settings(e.to_string())),
            Err(e) => {
                let reason = match &e {
                    CreateCallError::DoNotCall(_) => {
                        skipped_dnc += 1;
                        "do_not_call".to_owned()
                    }
                    other => other.to_string(),
                };
                db.skip_campaign_member(c.id, contact, &reason).await?;
                if !matches!(e, CreateCallError::DoNotCall(_)) {
                    db.log_campaign(
                        c.id,
                        "member_skipped",
                        &format!("member {contact} skipped: {reason}"),
                        now,
                    )
                    .await?;
                }
            }
        }
    }
    if skipped_dnc > 0 {
        db.log_campaign(
            c.id,
            "members_skipped",
            &format!("{skipped_dnc} members skipped: their number was put on the do-not-call list"),
            now,
        )
        .await?;
    }
    let left = db.next_campaign_members(c.id, 1).await?;
    if created == 0 && left.is_empty() && db.campaign_active_calls(c.id).await? == 0 && !c.join_new_members {
        let t = Transition {
            from: &["running"],
            to: "completed",
            reason: None,
            log: "completed: every member was called or skipped",
        };
        db.set_campaign_status(c.team_id, c.id, t, now).await?;
        tracing::info!(campaign_id = %c.id, "campaign completed");
    }
    Ok(created)
}

/// Why the breaker trips, if it does: calls since the campaign last started or resumed.
async fn breaker(db: &Db, c: &Campaign) -> Result<Option<String>, StoreError> {
    let last = db.campaign_last_statuses(c.id, c.updated_at, BREAKER_WINDOW).await?;
    if (last.len() as i64) < BREAKER_WINDOW {
        return Ok(None);
    }
    let failed = last.iter().filter(|s| s.as_deref() == Some("failed")).count();
    Ok((failed as f64 >= BREAKER_SHARE * last.len() as f64).then(|| {
        format!(
            "circuit breaker: {failed} of the last {} calls failed (is the carrier down, or a caller id refused?)",
            last.len()
        )
    }))
}

/// Creates one member's call through the calls service, with the chosen id.
async fn place(
    db: &Db,
    team: &TeamScope,
    c: &Campaign,
    contact: Uuid,
    call_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), CreateCallError> {
    let numbers = &c.from_numbers.0;
    // Rotated: each member's call from the next number.
    let from = numbers[(call_id.as_u128() % numbers.len() as u128) as usize].clone();
    let mut metadata = Map::new();
    metadata.insert("campaign_id".into(), Value::String(c.id.to_string()));
    let new = NewCall {
        id: Some(call_id),
        calling_window: c.calling_window.as_ref().map(|w| w.0.clone()),
        retry_policy: c.retry_policy.as_ref().map(|r| r.0.clone()),
        variables: c.variables.0.clone(),
        metadata,
        ..NewCall::new(
            Kind::Outbound { from_number: from },
            c.script_id,
            Callee::Existing(contact),
        )
    };
    match calls::create(db, team, new, now).await {
        Ok(_) => Ok(()),
        // Created already by a pass that stopped before it could say so.
        Err(CreateCallError::Store(StoreError::Conflict(_))) => Ok(()),
        Err(e) => Err(e),
    }
}
