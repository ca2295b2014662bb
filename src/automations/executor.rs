//! Runs executions. Each step's outcome is committed (step row, context, progress) before the next
//! step starts, under the execution's lease, so a worker that dies is resumed elsewhere at the first
//! step without a committed outcome. A create-call step commits the id of the call it is about to
//! place before placing it, and places it with that id: run again, it finds the call instead of
//! placing a second one.

use std::{collections::HashMap, panic::AssertUnwindSafe, time::Instant};

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use phonenumber::country;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::{
    events::{deliveries_for, envelope},
    notify::{Notification, SendError},
    Runner,
};
use crate::{
    calls::{self, variables, CallObject, Callee, Kind, NewCall},
    domain::call::Progress,
    domain::{
        automation::{as_text, evaluate, get_path, render, render_value, set_path, MatchOn, Step, Transform},
        contact::{ContactInput, ValidContact},
        phone,
    },
    objects, outbound,
    store::{
        automations::{ExecChange, Execution, ExecutionStep},
        objects::Upsert,
        teams::Team,
        WriteError,
    },
};

/// What running a step came to.
enum Outcome {
    Done {
        input: Value,
        output: Value,
    },
    /// A condition: which branch runs.
    Branch {
        input: Value,
        output: Value,
        taken: bool,
    },
    /// A create-call step checked its call; it is written once its id is committed.
    Place {
        input: Value,
        call: Box<calls::Prepared>,
    },
    /// The step's call has not ended yet.
    Waiting {
        call_id: Uuid,
    },
    /// Worth another try later (network, 5xx, 429, the database).
    Transient {
        input: Value,
        error: String,
    },
    /// Another try would fail the same way.
    Permanent {
        input: Value,
        error: String,
    },
}

/// A failure worth retrying later (the database, a timeout).
fn transient(input: Value, e: impl std::fmt::Display) -> Outcome {
    Outcome::Transient {
        input,
        error: e.to_string(),
    }
}

fn permanent(input: Value, e: impl std::fmt::Display) -> Outcome {
    Outcome::Permanent {
        input,
        error: e.to_string(),
    }
}

impl Runner {
    /// Claims due executions and runs each to its next wait or its end.
    pub(crate) async fn execute_due(&self) -> anyhow::Result<usize> {
        let now_ms = self.now().timestamp_millis();
        let batch = self.settings.concurrency as i64;
        let claimed = self
            .db
            .claim_executions(now_ms, &self.owner, self.lease_ms(), batch)
            .await?;
        let n = claimed.len();
        let mut running = tokio::task::JoinSet::new();
        for e in claimed {
            let me = self.clone();
            running.spawn(async move {
                let id = e.id;
                if let Err(err) = me.execute(e).await {
                    tracing::warn!(execution_id = %id, error = %err, "execution interrupted; it resumes when its lease expires");
                }
            });
        }
        while running.join_next().await.is_some() {}
        Ok(n)
    }

    async fn execute(&self, e: Execution) -> anyhow::Result<()> {
        // Claimed again and again without a step committed: its worker keeps dying on it. Stop
        // instead of taking the next worker down too.
        if e.pickups > self.settings.max_pickups {
            let error = format!(
                "picked up {} times without finishing a step (its worker stopped each time); dead-lettered",
                e.pickups - 1
            );
            let now = self.now();
            let (ctx, done) = (e.context.0.clone(), e.steps_done);
            return self
                .finish(&e, "Dead Letter", Some(error), ctx, done, Vec::new(), now)
                .await;
        }
        let team = self
            .db
            .get_team(e.team_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("team of execution {} is gone", e.id))?;
        let mut rows: HashMap<String, ExecutionStep> = self
            .db
            .execution_steps(e.id)
            .await?
            .into_iter()
            .map(|r| (r.step_key.clone(), r))
            .collect();
        let mut position = rows.values().map(|r| r.position + 1).max().unwrap_or(0);
        let mut ctx = e.context.0.clone();
        let mut done = e.steps_done;
        let steps = e.steps.0.clone();
        // Depth-first over the step tree: (steps, key prefix, next index).
        let mut stack: Vec<(&[Step], String, usize)> = vec![(steps.as_slice(), String::new(), 0)];
        // Rows of finished steps not committed yet (see `acts_outside`).
        let mut pending: Vec<ExecutionStep> = Vec::new();
        while let Some(top) = stack.last_mut() {
            let Some(step) = top.0.get(top.2) else {
                stack.pop();
                continue;
            };
            let key = format!("{}{}", top.1, top.2);
            top.2 += 1;
            let prev = rows.remove(&key);
            if let Some(r) = &prev {
                if r.status == "Completed" || r.status == "Skipped" {
                    if let (Step::Condition { then, otherwise, .. }, "Completed") = (step, r.status.as_str()) {
                        let branch = r
                            .output
                            .as_ref()
                            .and_then(|o| o.0.get("branch"))
                            .and_then(Value::as_str);
                        let (list, name) = if branch == Some("then") {
                            (then, "then")
                        } else {
                            (otherwise, "otherwise")
                        };
                        stack.push((list.as_slice(), format!("{key}.{name}."), 0));
                    }
                    continue;
                }
            }
            let started = prev.as_ref().and_then(|r| r.started_at).unwrap_or_else(|| self.now());
            let clock = Instant::now();
            let attempts = prev.as_ref().map_or(0, |r| r.attempts) + 1;
            let pos = prev.as_ref().map_or_else(
                || {
                    position += 1;
                    position - 1
                },
                |r| r.position,
            );
            // A panic in a step fails the step (recorded, retryable) instead of the worker.
            let outcome = AssertUnwindSafe(self.run_step(&e, &team, step, prev.as_ref(), &mut ctx))
                .catch_unwind()
                .await
                .unwrap_or_else(|panic| {
                    let error = format!("the step failed unexpectedly: {}", crate::panic_message(&*panic));
                    tracing::error!(execution_id = %e.id, step = %key, %error, "step panicked");
                    permanent(Value::Null, error)
                });
            let now = self.now();
            let mut row = ExecutionStep {
                execution_id: e.id,
                step_key: key.clone(),
                position: pos,
                step_type: step.type_name().into(),
                name: step.name().map(str::to_owned),
                status: "Completed".into(),
                input: None,
                output: None,
                error: None,
                attempts,
                started_at: Some(started),
                finished_at: Some(now),
                duration_ms: Some(
                    (now - started)
                        .num_milliseconds()
                        .max(clock.elapsed().as_millis() as i64),
                ),
            };
            let lease_until = now.timestamp_millis() + self.lease_ms();
            let continued = |ctx: &Value, done: i32| ExecChange::Continue {
                context: ctx.clone(),
                steps_done: done,
                lease_until_ms: lease_until,
            };
            match outcome {
                Outcome::Done { input, output } => {
                    row.input = Some(sqlx::types::Json(input));
                    row.output = Some(sqlx::types::Json(output));
                    done += 1;
                    pending.push(row);
                    // A step that acted outside is committed at once, so that a crash does not
                    // repeat it; pure steps ride along with the next commit (run again, they give
                    // the same result). The last step's commit is the finishing one.
                    let more = stack.iter().any(|(list, _, i)| *i < list.len());
                    if step.acts_outside() && more {
                        let rows = std::mem::take(&mut pending);
                        if !self
                            .db
                            .commit_step(e.id, &self.owner, &rows, continued(&ctx, done), now)
                            .await?
                        {
                            return lost(&e);
                        }
                    }
                }
                Outcome::Branch { input, output, taken } => {
                    let Step::Condition { then, otherwise, .. } = step else {
                        unreachable!("only conditions branch")
                    };
                    row.input = Some(sqlx::types::Json(input));
                    row.output = Some(sqlx::types::Json(output));
                    done += 1;
                    let (run, run_name, skip, skip_name) = if taken {
                        (then, "then", otherwise, "otherwise")
                    } else {
                        (otherwise, "otherwise", then, "then")
                    };
                    pending.push(row);
                    skipped(
                        skip,
                        &format!("{key}.{skip_name}."),
                        e.id,
                        now,
                        &mut position,
                        &mut pending,
                    );
                    stack.push((run.as_slice(), format!("{key}.{run_name}."), 0));
                }
                Outcome::Place { input, call } => {
                    row.status = "Processing".into();
                    row.finished_at = None;
                    row.duration_ms = None;
                    row.input = Some(sqlx::types::Json(input));
                    row.output = Some(sqlx::types::Json(json!({"call_id": call.id()})));
                    let mut failed = row.clone();
                    pending.push(row);
                    let rows = std::mem::take(&mut pending);
                    if !self
                        .db
                        .commit_step(e.id, &self.owner, &rows, continued(&ctx, done), now)
                        .await?
                    {
                        return lost(&e);
                    }
                    let call_id = call.id();
                    if self.db.call_by_id(call_id).await?.is_none() {
                        match calls::insert(&self.db, &calls::TeamScope::from(&team), *call).await {
                            Ok(created) => {
                                set_path(&mut ctx, "contact", variables::contact(&created.contact));
                                tracing::info!(execution_id = %e.id, %call_id, "automation placed a call");
                            }
                            // The database is away: the execution resumes here when its lease runs out.
                            Err(err) if err.is_transient() => return Err(err.into()),
                            Err(err) => {
                                failed.status = "Failed".into();
                                failed.finished_at = Some(now);
                                failed.error = Some(err.to_string());
                                let error = format!("step {key} (create_call): {err}");
                                return self
                                    .finish(&e, "Failed", Some(error), ctx, done, vec![failed], now)
                                    .await;
                            }
                        }
                    }
                    return self.wait(&e, call_id, ctx, done, Vec::new(), now).await;
                }
                Outcome::Waiting { call_id } => return self.wait(&e, call_id, ctx, done, pending, now).await,
                Outcome::Transient { input, error } => {
                    row.status = "Failed".into();
                    row.input = Some(sqlx::types::Json(input));
                    row.error = Some(error.clone());
                    pending.push(row);
                    if attempts >= self.settings.step_attempts {
                        let error = format!("step {key} failed {attempts} times; last: {error}");
                        return self
                            .finish(&e, "Dead Letter", Some(error), ctx, done, pending, now)
                            .await;
                    }
                    let due_ms = now.timestamp_millis() + self.settings.backoff(attempts).as_millis() as i64;
                    tracing::info!(execution_id = %e.id, step = %key, attempts, %error, "step failed; will retry");
                    let change = ExecChange::Retry {
                        due_ms,
                        context: ctx,
                        steps_done: done,
                    };
                    if !self.db.commit_step(e.id, &self.owner, &pending, change, now).await? {
                        return lost(&e);
                    }
                    return Ok(());
                }
                Outcome::Permanent { input, error } => {
                    row.status = "Failed".into();
                    row.input = Some(sqlx::types::Json(input));
                    row.error = Some(error.clone());
                    pending.push(row);
                    let error = format!("step {key} ({}): {error}", step.type_name());
                    return self.finish(&e, "Failed", Some(error), ctx, done, pending, now).await;
                }
            }
        }
        let now = self.now();
        self.finish(&e, "Completed", None, ctx, done, pending, now).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn wait(
        &self,
        e: &Execution,
        call_id: Uuid,
        ctx: Value,
        done: i32,
        rows: Vec<ExecutionStep>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let change = ExecChange::Wait {
            call_id,
            context: ctx,
            steps_done: done,
        };
        if !self.db.commit_step(e.id, &self.owner, &rows, change, now).await? {
            return lost(e);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        e: &Execution,
        status: &'static str,
        error: Option<String>,
        ctx: Value,
        done: i32,
        rows: Vec<ExecutionStep>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let deliveries = if status == "Completed" {
            Vec::new()
        } else {
            let data =
                json!({"execution_id": e.id, "automation_id": e.automation_id, "status": status, "error": error});
            let payload = envelope("execution.failed", now, data);
            deliveries_for(self, e.team_id, "execution.failed", &e.id.to_string(), 0, &payload).await?
        };
        match status {
            "Completed" => tracing::info!(execution_id = %e.id, steps = done, "execution completed"),
            _ => {
                tracing::warn!(execution_id = %e.id, status, error = error.as_deref().unwrap_or(""), "execution failed")
            }
        }
        let change = ExecChange::Finish {
            status,
            error,
            context: ctx,
            steps_done: done,
            deliveries,
        };
        if !self.db.commit_step(e.id, &self.owner, &rows, change, now).await? {
            return lost(e);
        }
        Ok(())
    }

    async fn run_step(
        &self,
        e: &Execution,
        team: &Team,
        step: &Step,
        prev: Option<&ExecutionStep>,
        ctx: &mut Value,
    ) -> Outcome {
        match step {
            Step::Transform { mappings, .. } => {
                let mut out = Map::new();
                for m in mappings {
                    let value = get_path(ctx, &m.source).cloned().unwrap_or(Value::Null);
                    let value = match m.transform.as_deref().map(Transform::parse) {
                        None => value,
                        Some(Ok(t)) => match t.apply(&value) {
                            Ok(v) => v,
                            Err(err) => return permanent(json!({"source": m.source}), format!("{}: {err}", m.source)),
                        },
                        Some(Err(err)) => return permanent(Value::Null, err),
                    };
                    let target = m.target.strip_prefix("mapped.").unwrap_or(&m.target);
                    set_path(ctx, &format!("mapped.{target}"), value.clone());
                    out.insert(target.to_owned(), value);
                }
                Outcome::Done {
                    input: json!({"mappings": mappings.len()}),
                    output: Value::Object(out),
                }
            }
            Step::Condition {
                field, operator, value, ..
            } => {
                let left = get_path(ctx, field).cloned();
                let taken = evaluate(*operator, left.as_ref(), value.as_ref());
                Outcome::Branch {
                    input: json!({"field": field, "operator": operator, "value": value, "actual": left}),
                    output: json!({"result": taken, "branch": if taken { "then" } else { "otherwise" }}),
                    taken,
                }
            }
            Step::UpsertContact { match_on, fields, .. } => self.upsert_contact(team, *match_on, fields, ctx).await,
            Step::UpsertObject { object_type, data, .. } => self.upsert_object(team, object_type, data, ctx).await,
            Step::CreateCall { .. } => self.create_call(e, team, step, prev, ctx).await,
            Step::Destination {
                method,
                url,
                headers,
                body,
                ..
            } => {
                let body = body.clone().or_else(|| Some(ctx.clone()));
                match self.http(method, url, headers, body.as_ref(), ctx).await {
                    Ok((input, status, answer)) => Outcome::Done {
                        input,
                        output: json!({"status": status, "body": answer}),
                    },
                    Err(o) => o,
                }
            }
            Step::Source {
                method,
                url,
                headers,
                body,
                ..
            } => match self.http(method, url, headers, body.as_ref(), ctx).await {
                Ok((input, status, answer)) => {
                    if !(answer.is_object() || answer.is_array()) {
                        return permanent(input, "the source did not answer with a JSON object or array");
                    }
                    match (ctx.get_mut("source").and_then(Value::as_object_mut), answer.as_object()) {
                        (Some(existing), Some(new)) => existing.extend(new.clone()),
                        _ => set_path(ctx, "source", answer.clone()),
                    }
                    Outcome::Done {
                        input,
                        output: json!({"status": status, "body": answer}),
                    }
                }
                Err(o) => o,
            },
            Step::Notification {
                channel,
                to,
                subject,
                body,
                ..
            } => {
                let n = Notification {
                    channel: *channel,
                    to: render(to, ctx).trim().to_owned(),
                    subject: subject.as_ref().map(|s| render(s, ctx)),
                    body: render(body, ctx),
                };
                let input = json!({"channel": channel, "to": n.to, "subject": n.subject, "body": n.body});
                if n.to.is_empty() {
                    return permanent(input, "`to` is empty in this context");
                }
                match self.notifier.send(&n).await {
                    Ok(()) => Outcome::Done {
                        input,
                        output: json!({"sent": true}),
                    },
                    Err(SendError::Transient(error)) => Outcome::Transient { input, error },
                    Err(SendError::Permanent(error)) => Outcome::Permanent { input, error },
                }
            }
        }
    }

    async fn upsert_contact(
        &self,
        team: &Team,
        match_on: MatchOn,
        fields: &std::collections::BTreeMap<String, String>,
        ctx: &mut Value,
    ) -> Outcome {
        let values: Map<String, Value> = fields
            .iter()
            .map(|(f, p)| (f.clone(), get_path(ctx, p).cloned().unwrap_or(Value::Null)))
            .collect();
        let input = Value::Object(values.clone());
        let text = |f: &str| Some(as_text(values.get(f))).filter(|s| !s.trim().is_empty());
        let mut input_contact = crate::domain::contact::ContactInput {
            phone_number: text("phone_number").unwrap_or_default(),
            first_name: text("first_name"),
            last_name: text("last_name"),
            email: text("email"),
            title: text("title"),
            company: text("company"),
            address: text("address"),
            location: text("location"),
            timezone: text("timezone"),
            metadata: None,
        };
        if match_on == MatchOn::Email {
            let Some(email) = input_contact.email.clone() else {
                return permanent(input, "the email to match on is empty");
            };
            // A contact found by email keeps its phone number; the update goes to it.
            match self.db.contact_id_by_email(team.id, &email).await {
                Ok(Some((_, phone))) => input_contact.phone_number = phone,
                Ok(None) => {}
                Err(e) => return transient(input, e),
            }
        }
        let valid: ValidContact = match input_contact.validate(region(team), "") {
            Ok(v) => v,
            Err(e) => return permanent(input, e),
        };
        match self.db.upsert_contact_by_phone(team.id, valid, self.now()).await {
            Ok((contact, created)) => {
                let view = variables::contact(&contact);
                set_path(ctx, "contact", view.clone());
                Outcome::Done {
                    input,
                    output: json!({"contact_id": contact.id, "created": created}),
                }
            }
            Err(e) => transient(input, e),
        }
    }

    async fn upsert_object(
        &self,
        team: &Team,
        type_name: &str,
        mappings: &std::collections::BTreeMap<String, String>,
        ctx: &mut Value,
    ) -> Outcome {
        let mut data = json!({});
        for (field, path) in mappings {
            set_path(&mut data, field, get_path(ctx, path).cloned().unwrap_or(Value::Null));
        }
        let input = json!({"object_type": type_name, "data": data});
        let map = data.as_object().cloned().unwrap_or_default();
        let type_ref = objects::TypeRef {
            name: Some(type_name),
            id: None,
        };
        // The same rule as upsert-object: size, key, schema by the type's mode.
        let checked = match objects::check(&self.db, team.id, "", type_ref, map, None).await {
            Ok(c) => c,
            Err(objects::ObjectError::Store(err)) => return transient(input, err),
            Err(objects::ObjectError::UnknownType) => {
                return permanent(input, format!("object type `{type_name}` does not exist"))
            }
            Err(objects::ObjectError::Violations { errors, .. }) => {
                let list = serde_json::to_string(&errors).unwrap_or_default();
                return permanent(input, format!("data does not match the `{type_name}` schema: {list}"));
            }
            Err(err) => {
                return permanent(
                    input,
                    format!("data cannot be checked against the `{type_name}` schema: {err}"),
                )
            }
        };
        let contact_id = get_path(ctx, "contact.id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        let upsert = Upsert {
            object_type: &checked.object_type,
            key: checked.key.clone(),
            data: checked.data.clone(),
            contact_id,
        };
        match self.db.upsert_object(upsert, self.now()).await {
            Ok((id, created, _)) => {
                set_path(
                    ctx,
                    &format!("objects.{type_name}"),
                    variables::object(id, checked.data),
                );
                Outcome::Done {
                    input,
                    output: json!({"object_id": id, "created": created, "violations": checked.violations}),
                }
            }
            Err(WriteError::Refused(refusal)) => permanent(input, format!("{refusal:?}")),
            Err(WriteError::Store(e)) => transient(input, e),
        }
    }

    async fn create_call(
        &self,
        e: &Execution,
        team: &Team,
        step: &Step,
        prev: Option<&ExecutionStep>,
        ctx: &mut Value,
    ) -> Outcome {
        let Step::CreateCall {
            script_id,
            from_number,
            to,
            scheduled_time,
            variables: vars,
            retry_policy,
            calling_window,
            object,
            ..
        } = step
        else {
            unreachable!("create_call is given create-call steps")
        };
        let committed = prev
            .and_then(|r| r.output.as_ref())
            .and_then(|o| o.0.get("call_id"))
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok());
        let input = json!({"script_id": script_id, "from_number": from_number, "to": get_path(ctx, to)});
        if let Some(call_id) = committed {
            match self.db.call_by_id(call_id).await {
                Ok(Some(call)) if matches!(call.progress, Progress::Ended | Progress::Cancelled) => {
                    set_path(ctx, "call", variables::call(&call));
                    return Outcome::Done {
                        input,
                        output: json!({"call_id": call.id, "status": call.status, "progress": call.progress}),
                    };
                }
                Ok(Some(_)) => return Outcome::Waiting { call_id },
                // Committed but never placed (the worker died in between): place it now, same id.
                Ok(None) => {}
                Err(err) => return transient(input, err),
            }
        }
        let scheduled = match scheduled_time.as_deref().map(|p| as_text(get_path(ctx, p))) {
            Some(t) if !t.is_empty() => match DateTime::parse_from_rfc3339(&t) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => return permanent(input, format!("scheduled_time `{t}` is not an ISO 8601 time")),
            },
            _ => None,
        };
        let object = match object {
            None => None,
            Some(path) => {
                let id = get_path(ctx, &format!("{path}.id"))
                    .and_then(Value::as_str)
                    .and_then(|s| Uuid::parse_str(s).ok());
                match id {
                    None => return permanent(input, format!("{path} holds no object")),
                    Some(id) => Some(CallObject::Existing(id)),
                }
            }
        };
        let callee = Callee::Upsert(Box::new(ContactInput {
            phone_number: as_text(get_path(ctx, to)),
            ..Default::default()
        }));
        let new = NewCall {
            id: Some(committed.unwrap_or_else(crate::domain::new_id)),
            object,
            scheduled_time: scheduled,
            calling_window: calling_window.clone(),
            retry_policy: retry_policy.clone(),
            metadata: json!({"automation_id": e.automation_id, "execution_id": e.id})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            variables: vars
                .iter()
                .map(|(k, p)| (k.clone(), get_path(ctx, p).cloned().unwrap_or(Value::Null)))
                .collect(),
            ..NewCall::new(
                Kind::Outbound {
                    from_number: from_number.clone(),
                },
                *script_id,
                callee,
            )
        };
        match calls::prepare(&self.db, &calls::TeamScope::from(team), new, self.now()).await {
            Ok(prepared) => Outcome::Place {
                input,
                call: Box::new(prepared),
            },
            Err(err) if err.is_transient() => transient(input, err),
            Err(err) => permanent(input, err),
        }
    }

    /// Sends a step's HTTP request. Ok: (input, status, answer); Err: the failed outcome.
    async fn http(
        &self,
        method: &str,
        url: &str,
        headers: &std::collections::BTreeMap<String, String>,
        body: Option<&Value>,
        ctx: &Value,
    ) -> Result<(Value, u16, Value), Outcome> {
        let url = render(url, ctx);
        let body = body.map(|b| render_value(b, ctx));
        let input = json!({"method": method, "url": url, "body": body});
        let parsed =
            outbound::check_url(&url, self.settings.allow_private_network).map_err(|e| permanent(input.clone(), e))?;
        let method = method
            .parse::<reqwest::Method>()
            .map_err(|e| permanent(input.clone(), e))?;
        let mut req = self.http.request(method, parsed);
        for (k, v) in headers {
            req = req.header(k, render(v, ctx));
        }
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = match outbound::send(req).await {
            Ok(r) => r,
            Err(outbound::SendError::Refused(error)) => return Err(Outcome::Permanent { input, error }),
            Err(outbound::SendError::Failed(error)) => return Err(Outcome::Transient { input, error }),
        };
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap_or_default();
        let answer = serde_json::from_slice::<Value>(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).into_owned()));
        match status {
            200..=299 => Ok((input, status, answer)),
            408 | 429 | 500..=599 => Err(Outcome::Transient {
                input,
                error: format!("HTTP {status}"),
            }),
            _ => Err(permanent(input, format!("HTTP {status}: {}", as_text(Some(&answer))))),
        }
    }
}

/// Skipped rows for every step of a branch not taken, nested ones included.
fn skipped(
    steps: &[Step],
    prefix: &str,
    execution_id: Uuid,
    at: DateTime<Utc>,
    position: &mut i32,
    out: &mut Vec<ExecutionStep>,
) {
    for (i, s) in steps.iter().enumerate() {
        let key = format!("{prefix}{i}");
        out.push(ExecutionStep {
            execution_id,
            step_key: key.clone(),
            position: *position,
            step_type: s.type_name().into(),
            name: s.name().map(str::to_owned),
            status: "Skipped".into(),
            input: None,
            output: None,
            error: None,
            attempts: 0,
            started_at: None,
            finished_at: Some(at),
            duration_ms: None,
        });
        *position += 1;
        if let Step::Condition { then, otherwise, .. } = s {
            skipped(then, &format!("{key}.then."), execution_id, at, position, out);
            skipped(otherwise, &format!("{key}.otherwise."), execution_id, at, position, out);
        }
    }
}

fn region(team: &Team) -> country::Id {
    phone::parse_region(&team.region).unwrap_or(country::Id::AU)
}

fn lost(e: &Execution) -> anyhow::Result<()> {
    tracing::warn!(execution_id = %e.id, "lost the execution's lease; another worker has it");
    Ok(())
}
