//! Automations, their executions (a leased queue like calls: claimed by one worker at a time, taken
//! over when a lease expires), the steps each execution ran, inbound hook receipts and the outbox of
//! call events.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{types::Json, FromRow};
use uuid::Uuid;

use super::{read_pool, transaction, webhooks::NewDelivery, write_pool, Db, Result, Seek, StoreError};
use crate::domain::automation::{AutomationDef, Step};

#[derive(Debug, Clone, FromRow)]
pub struct Automation {
    pub id: Uuid,
    pub team_id: Uuid,
    pub name: String,
    pub enabled: bool,
    pub trigger_type: String,
    pub definition: Json<AutomationDef>,
    pub hook_token_hash: Option<Vec<u8>>,
    pub hook_secret: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What an inbound hook needs to know about its token.
#[derive(Debug, Clone, FromRow)]
pub struct HookTarget {
    #[sqlx(flatten)]
    pub automation: Automation,
    /// The team's own requests per second, when it has one.
    pub team_rate: Option<i32>,
}

const AUTOMATION_COLUMNS: &str =
    "id, team_id, name, enabled, trigger_type, definition, hook_token_hash, hook_secret, created_at, updated_at";

#[derive(Debug, Clone, FromRow)]
pub struct Execution {
    pub id: Uuid,
    pub team_id: Uuid,
    pub automation_id: Uuid,
    pub status: String,
    pub trigger_kind: String,
    pub steps: Json<Vec<Step>>,
    pub context: Json<Value>,
    pub steps_total: i32,
    pub steps_done: i32,
    pub due_ms: i64,
    pub lease_owner: Option<String>,
    pub lease_until_ms: Option<i64>,
    pub waiting_call_id: Option<Uuid>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Claims since the last committed step: each claim that ends without a commit (the worker
    /// died on it) adds one; past a limit the execution is dead-lettered instead of run again.
    pub pickups: i32,
}

const EXECUTION_COLUMNS: &str = "id, team_id, automation_id, status, trigger_kind, steps, context, steps_total, \
     steps_done, due_ms, lease_owner, lease_until_ms, waiting_call_id, error, created_at, updated_at, started_at, finished_at, \
     pickups";

const INSERT_EXECUTION: &str = "INSERT INTO executions (id, team_id, automation_id, status, trigger_kind, steps, \
     context, steps_total, steps_done, due_ms, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $10)";

impl Execution {
    /// A new execution of the automation's current steps, due now.
    pub fn new(a: &Automation, trigger_kind: &str, context: Value, at: DateTime<Utc>) -> Self {
        let steps = a.definition.0.steps.clone();
        Execution {
            id: crate::domain::new_id(),
            team_id: a.team_id,
            automation_id: a.id,
            status: "Pending".into(),
            trigger_kind: trigger_kind.into(),
            steps_total: crate::domain::automation::count_steps(&steps) as i32,
            steps: Json(steps),
            context: Json(context),
            steps_done: 0,
            due_ms: at.timestamp_millis(),
            lease_owner: None,
            lease_until_ms: None,
            waiting_call_id: None,
            error: None,
            created_at: at,
            updated_at: at,
            started_at: None,
            finished_at: None,
            pickups: 0,
        }
    }
}

macro_rules! bind_execution {
    ($q:expr, $e:expr) => {
        $q.bind($e.id)
            .bind($e.team_id)
            .bind($e.automation_id)
            .bind(&$e.status)
            .bind(&$e.trigger_kind)
            .bind(&$e.steps)
            .bind(&$e.context)
            .bind($e.steps_total)
            .bind($e.due_ms)
            .bind($e.created_at)
    };
}

#[derive(Debug, Clone, FromRow)]
pub struct ExecutionStep {
    pub execution_id: Uuid,
    pub step_key: String,
    pub position: i32,
    pub step_type: String,
    pub name: Option<String>,
    pub status: String,
    pub input: Option<Json<Value>>,
    pub output: Option<Json<Value>>,
    pub error: Option<String>,
    pub attempts: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
}

const STEP_COLUMNS: &str = "execution_id, step_key, position, step_type, name, status, input, output, error, \
     attempts, started_at, finished_at, duration_ms";

/// How a step's outcome moves its execution.
pub enum ExecChange {
    /// The step is done (or skipped); the next one may run.
    Continue {
        context: Value,
        steps_done: i32,
        lease_until_ms: i64,
    },
    /// A create-call step placed its call; the execution sleeps until the call ends.
    Wait {
        call_id: Uuid,
        context: Value,
        steps_done: i32,
    },
    /// A transient failure; try the step again at `due_ms`.
    Retry {
        due_ms: i64,
        context: Value,
        steps_done: i32,
    },
    /// Completed, Failed or Dead Letter. A failure also queues `execution.failed` deliveries.
    Finish {
        status: &'static str,
        error: Option<String>,
        context: Value,
        steps_done: i32,
        deliveries: Vec<NewDelivery>,
    },
}

/// Filters of the execution log.
#[derive(Debug, Default)]
pub struct ExecutionFilter {
    pub automation_id: Option<Uuid>,
    pub status: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub page: Seek,
}

/// A call transition waiting to become events.
#[derive(Debug, Clone, FromRow)]
pub struct OutboxRow {
    pub seq: i64,
    pub call_id: Uuid,
    pub progress: String,
    pub at: DateTime<Utc>,
}

/// What one outbox row turned into.
pub struct FanOut {
    pub seq: i64,
    pub executions: Vec<Execution>,
    pub deliveries: Vec<NewDelivery>,
}

/// What an inbound hook did.
pub enum HookOutcome {
    Created(Uuid),
    /// The idempotency key was seen in the last 24 hours with this body; nothing new was created.
    Duplicate(Uuid),
    /// The idempotency key was seen in the last 24 hours with another body.
    Mismatch,
}

impl Db {
    pub async fn insert_automation(&self, a: &Automation) -> Result<()> {
        let sql =
            format!("INSERT INTO automations ({AUTOMATION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
        write_pool!(self, pool => {
            sqlx::query(&sql)
                .bind(a.id).bind(a.team_id).bind(&a.name).bind(a.enabled).bind(&a.trigger_type).bind(&a.definition)
                .bind(&a.hook_token_hash).bind(&a.hook_secret).bind(a.created_at).bind(a.updated_at)
                .execute(pool).await.map_err(StoreError::from_write)?;
        });
        Ok(())
    }

    pub async fn get_automation(&self, team_id: Uuid, id: Uuid) -> Result<Option<Automation>> {
        let sql = format!("SELECT {AUTOMATION_COLUMNS} FROM automations WHERE team_id = $1 AND id = $2");
        Ok(read_pool!(self, p => sqlx::query_as(&sql).bind(team_id).bind(id).fetch_optional(p).await?))
    }

    pub async fn list_automations(&self, team_id: Uuid, page: Seek) -> Result<Vec<Automation>> {
        let sql = format!(
            "SELECT {AUTOMATION_COLUMNS} FROM automations WHERE team_id = $1 AND {} {} LIMIT $3",
            page.beyond("id", 2),
            page.order_by("id")
        );
        Ok(
            read_pool!(self, p => sqlx::query_as(&sql).bind(team_id).bind(page.after).bind(page.limit).fetch_all(p).await?),
        )
    }

    /// Replaces name, trigger and steps; the token and secret are as given (kept or new).
    pub async fn replace_automation(&self, a: &Automation) -> Result<bool> {
        let sql = "UPDATE automations SET name = $3, enabled = $4, trigger_type = $5, definition = $6,
                     hook_token_hash = $7, hook_secret = $8, updated_at = $9 WHERE team_id = $1 AND id = $2";
        let done = write_pool!(self, pool => sqlx::query(sql)
            .bind(a.team_id).bind(a.id).bind(&a.name).bind(a.enabled).bind(&a.trigger_type).bind(&a.definition)
            .bind(&a.hook_token_hash).bind(&a.hook_secret).bind(a.updated_at)
            .execute(pool).await.map_err(StoreError::from_write)?.rows_affected());
        Ok(done == 1)
    }

    pub async fn set_automation_enabled(
        &self,
        team_id: Uuid,
        id: Uuid,
        enabled: bool,
        at: DateTime<Utc>,
    ) -> Result<Option<Automation>> {
        let sql = format!(
            "UPDATE automations SET enabled = $3, updated_at = $4 WHERE team_id = $1 AND id = $2 RETURNING {AUTOMATION_COLUMNS}"
        );
        Ok(
            write_pool!(self, p => sqlx::query_as(&sql).bind(team_id).bind(id).bind(enabled).bind(at).fetch_optional(p).await?),
        )
    }

    /// Deletes the automation with its executions and receipts.
    pub async fn delete_automation(&self, team_id: Uuid, id: Uuid) -> Result<bool> {
        let done = write_pool!(self, p => sqlx::query("DELETE FROM automations WHERE team_id = $1 AND id = $2")
            .bind(team_id).bind(id).execute(p).await?.rows_affected());
        Ok(done == 1)
    }

    /// The automation a hook token opens, with its team's own request rate (one read per hook).
    pub async fn hook_target(&self, token_hash: &[u8]) -> Result<Option<HookTarget>> {
        let columns: Vec<String> = AUTOMATION_COLUMNS.split(", ").map(|c| format!("a.{c}")).collect();
        let sql = format!(
            "SELECT {}, t.requests_per_second AS team_rate FROM automations a JOIN teams t ON t.id = a.team_id
             WHERE a.hook_token_hash = $1",
            columns.join(", ")
        );
        Ok(read_pool!(self, p => sqlx::query_as(&sql).bind(token_hash).fetch_optional(p).await?))
    }

    /// The team's enabled automations started by call events.
    pub async fn call_automations(&self, team_id: Uuid) -> Result<Vec<Automation>> {
        let sql = format!(
            "SELECT {AUTOMATION_COLUMNS} FROM automations
             WHERE team_id = $1 AND enabled AND trigger_type IN ('call_completed', 'call_scheduled') ORDER BY id"
        );
        Ok(read_pool!(self, p => sqlx::query_as(&sql).bind(team_id).fetch_all(p).await?))
    }

    /// Records an inbound hook's execution; with an idempotency key seen in the last 24 hours, returns
    /// the execution that key made instead.
    /// Queues an execution for a hook request, once per idempotency key (with the body's hash) in
    /// 24 hours.
    pub async fn accept_hook(&self, e: &Execution, idem: Option<(&str, &[u8])>, now_ms: i64) -> Result<HookOutcome> {
        const DAY_MS: i64 = 24 * 3600 * 1000;
        let Some((key, body_hash)) = idem else {
            // One statement needs no transaction around it.
            write_pool!(self, p => bind_execution!(sqlx::query(INSERT_EXECUTION), e).execute(p).await?.rows_affected());
            return Ok(HookOutcome::Created(e.id));
        };
        transaction!(self, tx => {
            sqlx::query("DELETE FROM hook_receipts WHERE automation_id = $1 AND idem_key = $2 AND received_ms < $3")
                .bind(e.automation_id).bind(key).bind(now_ms - DAY_MS).execute(&mut *tx).await?;
            let seen: Option<(Uuid, Option<Vec<u8>>)> = sqlx::query_as(
                "SELECT execution_id, body_hash FROM hook_receipts WHERE automation_id = $1 AND idem_key = $2")
                .bind(e.automation_id).bind(key).fetch_optional(&mut *tx).await?;
            match seen {
                // Receipts from before bodies were hashed match any body.
                Some((id, hash)) if hash.as_deref().is_none_or(|h| h == body_hash) => return Ok(HookOutcome::Duplicate(id)),
                Some(_) => return Ok(HookOutcome::Mismatch),
                None => {}
            }
            sqlx::query("INSERT INTO hook_receipts (automation_id, idem_key, execution_id, received_ms, body_hash) VALUES ($1, $2, $3, $4, $5)")
                .bind(e.automation_id).bind(key).bind(e.id).bind(now_ms).bind(body_hash)
                .execute(&mut *tx).await.map_err(StoreError::from_write)?;
            bind_execution!(sqlx::query(INSERT_EXECUTION), e).execute(&mut *tx).await?;
            Ok(HookOutcome::Created(e.id))
        })
    }

    /// Forgets hook idempotency keys older than a day; returns how many.
    pub async fn expire_hook_receipts(&self, now_ms: i64) -> Result<u64> {
        const DAY_MS: i64 = 24 * 3600 * 1000;
        Ok(
            write_pool!(self, p => sqlx::query("DELETE FROM hook_receipts WHERE received_ms < $1")
            .bind(now_ms - DAY_MS).execute(p).await?.rows_affected()),
        )
    }

    pub async fn get_execution(&self, team_id: Uuid, id: Uuid) -> Result<Option<Execution>> {
        let sql = format!("SELECT {EXECUTION_COLUMNS} FROM executions WHERE team_id = $1 AND id = $2");
        Ok(read_pool!(self, p => sqlx::query_as(&sql).bind(team_id).bind(id).fetch_optional(p).await?))
    }

    pub async fn list_executions(&self, team_id: Uuid, f: &ExecutionFilter) -> Result<Vec<Execution>> {
        let sql = format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE team_id = $1
               AND ($2 IS NULL OR automation_id = $2) AND ($3 IS NULL OR status = $3)
               AND ($4 IS NULL OR created_at >= $4) AND ($5 IS NULL OR created_at < $5) AND {}
             {} LIMIT $7",
            f.page.beyond("id", 6),
            f.page.order_by("id")
        );
        Ok(read_pool!(self, p => sqlx::query_as(&sql)
            .bind(team_id).bind(f.automation_id).bind(&f.status).bind(f.since).bind(f.until).bind(f.page.after).bind(f.page.limit)
            .fetch_all(p).await?))
    }

    pub async fn execution_steps(&self, execution_id: Uuid) -> Result<Vec<ExecutionStep>> {
        let sql =
            format!("SELECT {STEP_COLUMNS} FROM execution_steps WHERE execution_id = $1 ORDER BY position, step_key");
        Ok(read_pool!(self, p => sqlx::query_as(&sql).bind(execution_id).fetch_all(p).await?))
    }

    /// Puts a Failed or Dead Letter execution back in the queue, due now; it resumes at the step
    /// that failed, with that step's retry budget renewed. None when it is not in a retryable state.
    pub async fn retry_execution(&self, team_id: Uuid, id: Uuid, at: DateTime<Utc>) -> Result<Option<Execution>> {
        let sql = format!(
            "UPDATE executions SET status = 'Pending', error = NULL, finished_at = NULL, due_ms = $3, updated_at = $4,
               lease_owner = NULL, lease_until_ms = NULL, pickups = 0
             WHERE team_id = $1 AND id = $2 AND status IN ('Failed', 'Dead Letter') RETURNING {EXECUTION_COLUMNS}"
        );
        transaction!(self, tx => {
            let e: Option<Execution> = sqlx::query_as(&sql).bind(team_id).bind(id).bind(at.timestamp_millis()).bind(at)
                .fetch_optional(&mut *tx).await?;
            if e.is_some() {
                sqlx::query("UPDATE execution_steps SET attempts = 0 WHERE execution_id = $1 AND status = 'Failed'")
                    .bind(id).execute(&mut *tx).await?;
            }
            Ok(e)
        })
    }

    /// Leases due executions to `owner`: pending ones, ones whose lease expired (their worker died),
    /// and waiting ones whose call has ended.
    pub async fn claim_executions(
        &self,
        now_ms: i64,
        owner: &str,
        lease_ms: i64,
        batch: i64,
    ) -> Result<Vec<Execution>> {
        let lock = if matches!(self, Db::Postgres(_)) {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let pick = format!(
            "SELECT id FROM executions e
             WHERE status IN ('Pending', 'Processing') AND due_ms <= $1 AND (lease_until_ms IS NULL OR lease_until_ms < $1)
               AND (waiting_call_id IS NULL
                    OR EXISTS (SELECT 1 FROM calls c WHERE c.id = e.waiting_call_id AND c.progress IN ('ended', 'cancelled')))
             ORDER BY due_ms, id LIMIT $2{lock}"
        );
        let take = format!(
            "UPDATE executions SET status = 'Processing', lease_owner = $2, lease_until_ms = $3,
               started_at = COALESCE(started_at, $4), updated_at = $4, pickups = pickups + 1
             WHERE id = $1 RETURNING {EXECUTION_COLUMNS}"
        );
        let at = DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
        // Most passes find nothing: ask a reader first instead of taking SQLite's write lock.
        let any = format!(
            "SELECT EXISTS ({})",
            pick.replace(lock, "").replace("LIMIT $2", "LIMIT 1")
        );
        let due: bool = read_pool!(self, p => sqlx::query_scalar(&any).bind(now_ms).fetch_one(p).await?);
        if !due {
            return Ok(Vec::new());
        }
        transaction!(self, tx => {
            let ids: Vec<Uuid> = sqlx::query_scalar(&pick).bind(now_ms).bind(batch).fetch_all(&mut *tx).await?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let e: Execution = sqlx::query_as(&take).bind(id).bind(owner).bind(now_ms + lease_ms).bind(at)
                    .fetch_one(&mut *tx).await?;
                out.push(e);
            }
            Ok(out)
        })
    }

    /// Writes step rows and moves the execution, if `owner` still holds its lease (false: nothing
    /// written; another worker has it now).
    pub async fn commit_step(
        &self,
        execution_id: Uuid,
        owner: &str,
        steps: &[ExecutionStep],
        change: ExecChange,
        at: DateTime<Utc>,
    ) -> Result<bool> {
        let upsert = format!(
            "INSERT INTO execution_steps ({STEP_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (execution_id, step_key) DO UPDATE SET status = excluded.status, input = excluded.input,
               output = excluded.output, error = excluded.error, attempts = excluded.attempts,
               started_at = excluded.started_at, finished_at = excluded.finished_at, duration_ms = excluded.duration_ms"
        );
        transaction!(self, tx => {
            let mine = "WHERE id = $1 AND lease_owner = $2";
            let moved = match &change {
                ExecChange::Continue { context, steps_done, lease_until_ms } => sqlx::query(&format!(
                    "UPDATE executions SET context = $3, steps_done = $4, updated_at = $5, lease_until_ms = $6,
                       waiting_call_id = NULL, pickups = 0 {mine}"))
                    .bind(execution_id).bind(owner).bind(Json(context)).bind(steps_done).bind(at).bind(lease_until_ms)
                    .execute(&mut *tx).await?,
                ExecChange::Wait { call_id, context, steps_done } => sqlx::query(&format!(
                    "UPDATE executions SET waiting_call_id = $3, steps_done = $4, lease_owner = NULL, lease_until_ms = NULL,
                       updated_at = $5, context = $6, pickups = 0 {mine}"))
                    .bind(execution_id).bind(owner).bind(call_id).bind(steps_done).bind(at).bind(Json(context))
                    .execute(&mut *tx).await?,
                ExecChange::Retry { due_ms, context, steps_done } => sqlx::query(&format!(
                    "UPDATE executions SET due_ms = $3, lease_owner = NULL, lease_until_ms = NULL, updated_at = $4,
                       context = $5, steps_done = $6, pickups = 0 {mine}"))
                    .bind(execution_id).bind(owner).bind(due_ms).bind(at).bind(Json(context)).bind(steps_done)
                    .execute(&mut *tx).await?,
                ExecChange::Finish { status, error, context, steps_done, .. } => sqlx::query(&format!(
                    "UPDATE executions SET status = $3, error = $4, context = $5, steps_done = $6, finished_at = $7,
                       updated_at = $7, lease_owner = NULL, lease_until_ms = NULL, waiting_call_id = NULL, pickups = 0 {mine}"))
                    .bind(execution_id).bind(owner).bind(status).bind(error).bind(Json(context)).bind(steps_done).bind(at)
                    .execute(&mut *tx).await?,
            };
            if moved.rows_affected() == 0 {
                return Ok(false);
            }
            for s in steps {
                sqlx::query(&upsert)
                    .bind(s.execution_id).bind(&s.step_key).bind(s.position).bind(&s.step_type).bind(&s.name).bind(&s.status)
                    .bind(&s.input).bind(&s.output).bind(&s.error).bind(s.attempts).bind(s.started_at).bind(s.finished_at)
                    .bind(s.duration_ms)
                    .execute(&mut *tx).await?;
            }
            if let ExecChange::Finish { deliveries, .. } = &change {
                for d in deliveries {
                    super::webhooks::insert_delivery!(tx, d);
                }
            }
            Ok(true)
        })
    }

    /// The oldest call events not yet fanned out.
    pub async fn outbox_batch(&self, limit: i64) -> Result<Vec<OutboxRow>> {
        let sql = "SELECT seq, call_id, progress, at FROM event_outbox ORDER BY seq LIMIT $1";
        Ok(read_pool!(self, p => sqlx::query_as(sql).bind(limit).fetch_all(p).await?))
    }

    /// Writes what outbox rows became and removes them, in one transaction. A row another worker
    /// consumed first is skipped, so each becomes its executions and deliveries exactly once.
    pub async fn consume_outbox(&self, fanned: &[FanOut]) -> Result<usize> {
        transaction!(self, tx => {
            let mut n = 0;
            for f in fanned {
                sqlx::query("DELETE FROM call_snapshots WHERE seq = $1").bind(f.seq).execute(&mut *tx).await?;
                let gone = sqlx::query("DELETE FROM event_outbox WHERE seq = $1").bind(f.seq).execute(&mut *tx).await?;
                if gone.rows_affected() == 0 {
                    continue;
                }
                for e in &f.executions {
                    bind_execution!(sqlx::query(INSERT_EXECUTION), e).execute(&mut *tx).await?;
                }
                for d in &f.deliveries {
                    super::webhooks::insert_delivery!(tx, d);
                }
                n += 1;
            }
            Ok(n)
        })
    }

    /// The objects linked to a contact, with their type names.
    pub async fn contact_objects(&self, contact_id: Uuid) -> Result<Vec<(String, Uuid, Json<Value>)>> {
        let sql = "SELECT t.type_name, o.id, o.data FROM object_contacts oc
                     JOIN objects o ON o.id = oc.object_id JOIN object_types t ON t.id = o.object_type_id
                   WHERE oc.contact_id = $1 ORDER BY oc.created_at, o.id";
        Ok(read_pool!(self, p => sqlx::query_as(sql).bind(contact_id).fetch_all(p).await?))
    }

    /// Contacts of the team with this email (exact match), oldest first.
    pub async fn contact_id_by_email(&self, team_id: Uuid, email: &str) -> Result<Option<(Uuid, String)>> {
        let sql = "SELECT id, phone_number FROM contacts WHERE team_id = $1 AND email = $2 ORDER BY id LIMIT 1";
        Ok(read_pool!(self, p => sqlx::query_as(sql).bind(team_id).bind(email).fetch_optional(p).await?))
    }

    /// The call as it was when the outbox row's event happened (copied by the outbox trigger in the
    /// transition's transaction); none for rows written before snapshots existed.
    pub async fn call_snapshot(&self, seq: i64) -> Result<Option<super::calls::Call>> {
        let sql = format!("SELECT {} FROM call_snapshots WHERE seq = $1", super::calls::COLUMNS);
        Ok(read_pool!(self, p => sqlx::query_as(&sql).bind(seq).fetch_optional(p).await?))
    }

    /// A call by id, whatever its team (workers act for every team).
    pub async fn call_by_id(&self, id: Uuid) -> Result<Option<super::calls::Call>> {
        let sql = format!("SELECT {} FROM calls WHERE id = $1", super::calls::COLUMNS);
        Ok(read_pool!(self, p => sqlx::query_as(&sql).bind(id).fetch_optional(p).await?))
    }
}
