//! Call events: the outbox rows a database trigger writes with each listened-to call transition
//! (with a snapshot of the call as it was then) become executions of call-triggered automations
//! and deliveries to subscribed endpoints. The contact and objects are read when the row is
//! fanned out.

use serde_json::{json, Value};
use uuid::Uuid;

use super::Runner;
use crate::calls::variables;
use crate::store::{
    automations::{Execution, FanOut, OutboxRow},
    calls::Call,
    webhooks::NewDelivery,
};

/// Event types a webhook endpoint may subscribe to.
pub const EVENT_TYPES: [&str; 5] = [
    "call.scheduled",
    "call.started",
    "call.ended",
    "call.analyzed",
    "execution.failed",
];

/// The events one transition stands for.
fn events_of(row: &OutboxRow, call: &Call) -> Vec<&'static str> {
    match row.progress.as_str() {
        "scheduled" => vec!["call.scheduled"],
        "in_progress" => vec!["call.started"],
        "ended" => {
            let analyzed = call
                .result
                .as_ref()
                .is_some_and(|r| r.0.get("analysis").is_some_and(|a| !a.is_null()));
            if analyzed {
                vec!["call.ended", "call.analyzed"]
            } else {
                vec!["call.ended"]
            }
        }
        _ => Vec::new(),
    }
}

/// A webhook message body: the Standard Webhooks shape (`type`, `timestamp`, `data`).
pub fn envelope(event: &str, at: chrono::DateTime<chrono::Utc>, data: Value) -> Value {
    json!({"type": event, "timestamp": at, "data": data})
}

/// Deliveries of an event to each of the team's endpoints subscribed to it.
pub async fn deliveries_for(
    runner: &Runner,
    team_id: Uuid,
    event: &str,
    ordering_key: &str,
    seq: i64,
    payload: &Value,
) -> crate::store::Result<Vec<NewDelivery>> {
    let at = runner.now();
    Ok(runner
        .db
        .subscribed_endpoints(team_id, event)
        .await?
        .into_iter()
        .map(|e| NewDelivery {
            id: crate::domain::new_id(),
            team_id,
            endpoint_id: e.id,
            event_type: event.to_owned(),
            ordering_key: ordering_key.to_owned(),
            seq,
            payload: payload.clone(),
            at,
        })
        .collect())
}

/// How many automation-placed calls may follow one another through call triggers before the
/// chain stops (two automations that call on each other's calls would otherwise never stop).
pub const MAX_CHAIN: usize = 5;

fn placed_by_execution(call: &Call) -> Option<Uuid> {
    call.metadata
        .0
        .get("execution_id")
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
}

impl Runner {
    /// How many calls, counting this one, were placed in a row by executions that calls started.
    async fn chain_depth(&self, call: &Call) -> anyhow::Result<usize> {
        let mut depth = 0;
        let mut placed_by = placed_by_execution(call);
        while let Some(execution_id) = placed_by.take() {
            depth += 1;
            if depth >= MAX_CHAIN {
                break;
            }
            let Some(e) = self.db.get_execution(call.team_id, execution_id).await? else {
                break;
            };
            if !e.trigger_kind.starts_with("call.") {
                break;
            }
            let trigger_call = e.context.0.pointer("/trigger/call_id").and_then(Value::as_str);
            if let Some(id) = trigger_call.and_then(|s| Uuid::parse_str(s).ok()) {
                if let Some(c) = self.db.call_by_id(id).await? {
                    placed_by = placed_by_execution(&c);
                }
            }
        }
        Ok(depth)
    }

    /// Fans out one batch of outbox rows; returns how many it consumed.
    pub(crate) async fn fan_out(&self) -> anyhow::Result<usize> {
        let rows = self.db.outbox_batch(200).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut fanned = Vec::with_capacity(rows.len());
        for row in rows {
            fanned.push(self.fan_out_row(&row).await?);
        }
        Ok(self.db.consume_outbox(&fanned).await?)
    }

    async fn fan_out_row(&self, row: &OutboxRow) -> anyhow::Result<FanOut> {
        let mut out = FanOut {
            seq: row.seq,
            executions: Vec::new(),
            deliveries: Vec::new(),
        };
        // A call deleted since (its team was) leaves nothing to tell.
        let Some(now) = self.db.call_by_id(row.call_id).await? else {
            return Ok(out);
        };
        // The event tells of the call as it was then, not as it is when the worker gets to it.
        let call = self.db.call_snapshot(row.seq).await?.unwrap_or(now);
        let call_view = variables::call(&call);
        let contact = match call.contact_id {
            Some(id) => self.db.get_contact(call.team_id, id).await?,
            None => None,
        };
        // The call's own object (create-phone-call `object`) wins over others of its type.
        let objects = variables::objects(&self.db, contact.as_ref().map(|c| c.id), Some(&call)).await?;
        let placed_by = call
            .metadata
            .0
            .get("automation_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let events = events_of(row, &call);
        let depth = self.chain_depth(&call).await?;
        for (i, event) in events.iter().enumerate() {
            // Two events of one transition keep their order: seq × 2 + i.
            let payload = envelope(event, row.at, call_view.clone());
            out.deliveries.extend(
                deliveries_for(
                    self,
                    call.team_id,
                    event,
                    &call.id.to_string(),
                    row.seq * 2 + i as i64,
                    &payload,
                )
                .await?,
            );
        }
        for a in self.db.call_automations(call.team_id).await? {
            // A call an automation placed does not start that same automation again (no loops).
            if placed_by.as_deref() == Some(a.id.to_string().as_str()) {
                continue;
            }
            let Some(event) = events.iter().find(|e| {
                a.definition
                    .0
                    .trigger
                    .matches_call(e, call.script_id, call.status.map(|s| s.as_str()))
            }) else {
                continue;
            };
            if depth >= MAX_CHAIN {
                tracing::warn!(automation_id = %a.id, call_id = %call.id, depth,
                    "not starting: the call ends a chain of calls placed by call-triggered automations");
                continue;
            }
            let context = json!({
                "trigger": {"event": event, "call_id": call.id, "at": row.at},
                "call": call_view,
                "contact": contact.as_ref().map(variables::contact).unwrap_or_else(|| json!({})),
                "objects": objects,
            });
            out.executions.push(Execution::new(&a, event, context, self.now()));
        }
        Ok(out)
    }
}
