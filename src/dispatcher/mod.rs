//! The dispatcher: takes due calls from the calls table under a lease, places them through the
//! carrier, records each transition, analyses answered calls and applies the retry policy.
//! Several dispatchers (processes) can share one PostgreSQL: leases make sure no call is dialled
//! twice at once, and a call whose worker died is recovered when its lease runs out.

use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use async_trait::async_trait;
use futures_util::FutureExt;
use serde_json::json;
use uuid::Uuid;

use crate::{
    carrier::{Carrier, Dial, Leg, Placed, ProgressSink},
    clock::Clock,
    conversation::{
        brain::{rules, Brain},
        context::CallContext,
        engine::EndReason,
        script::Script,
        tools::Tools,
    },
    do_not_call,
    domain::call::{CallStatus, Progress},
    session,
    store::{calls::Call, Db},
};

/// How long an analysis may take and still be recorded in the same write as the attempt's end.
const PROCESSING_GRACE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
pub struct DispatcherSettings {
    /// Names this worker in leases (host and process id by default).
    pub owner: String,
    /// How long a claim lasts without renewal.
    pub lease: Duration,
    /// Calls taken per pass.
    pub batch: i64,
    /// Time between passes when idle.
    pub poll: Duration,
    /// Default per-team concurrent-call limit (a team's own setting wins).
    pub max_concurrent_calls: i64,
    /// Most calls each caller id places per second (carriers police this); 0: no limit.
    pub calls_per_second_per_number: u32,
}

impl DispatcherSettings {
    fn number_interval_ms(&self) -> i64 {
        match self.calls_per_second_per_number {
            0 => 0,
            cps => (1000 / i64::from(cps)).max(1),
        }
    }
}

impl Default for DispatcherSettings {
    fn default() -> Self {
        DispatcherSettings {
            owner: format!("{}-{}", hostname(), std::process::id()),
            lease: Duration::from_secs(120),
            batch: 100,
            poll: Duration::from_millis(100),
            max_concurrent_calls: 10,
            calls_per_second_per_number: 10,
        }
    }
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "voxd".into())
}

#[derive(Clone)]
pub struct Dispatcher {
    db: Db,
    clock: Arc<dyn Clock>,
    carrier: Arc<dyn Carrier>,
    brain: Arc<dyn Brain>,
    tools: Arc<Tools>,
    settings: Arc<DispatcherSettings>,
}

struct LeaseSink {
    db: Db,
    clock: Arc<dyn Clock>,
    call_id: Uuid,
    owner: String,
}

#[async_trait]
impl ProgressSink for LeaseSink {
    async fn progress_steps(&self, steps: &[Progress]) -> bool {
        match self
            .db
            .record_progress(self.call_id, &self.owner, steps, self.clock.now())
            .await
        {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(call_id = %self.call_id, error = %e, "could not record call progress");
                false
            }
        }
    }
}

impl Dispatcher {
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        carrier: Arc<dyn Carrier>,
        brain: Arc<dyn Brain>,
        tools: Arc<Tools>,
        settings: DispatcherSettings,
    ) -> Self {
        Dispatcher {
            db,
            clock,
            carrier,
            brain,
            tools,
            settings: Arc::new(settings),
        }
    }

    /// One pass: claims due calls and runs them all to their end. Returns how many were claimed.
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        let mut running = tokio::task::JoinSet::new();
        let n = self.claim_into(&mut running).await?;
        while running.join_next().await.is_some() {}
        Ok(n)
    }

    /// Claims due calls and starts each in `running`; returns how many.
    async fn claim_into(&self, running: &mut tokio::task::JoinSet<()>) -> anyhow::Result<usize> {
        let s = &self.settings;
        let lease = s.lease.as_millis() as i64;
        let claim = self
            .db
            .claim_due_calls(
                self.clock.now(),
                &s.owner,
                lease,
                s.batch,
                s.max_concurrent_calls,
                s.number_interval_ms(),
            )
            .await?;
        if claim.recovered > 0 || claim.expired > 0 {
            tracing::info!(
                recovered = claim.recovered,
                expired = claim.expired,
                "calls settled by the dispatcher"
            );
        }
        let n = claim.claimed.len();
        let now_ms = self.clock.now().timestamp_millis();
        for call in &claim.claimed {
            let late = (now_ms - call.due_ms).max(0) as f64 / 1000.0;
            crate::metrics::METRICS.dispatch_lateness.observe(late);
        }
        for call in claim.claimed {
            let me = self.clone();
            running.spawn(async move {
                let id = call.id;
                // A panic while a call runs ends that attempt as failed (recorded) instead of
                // leaving it to be recovered, and retried, when its lease runs out.
                match AssertUnwindSafe(me.run_call(call)).catch_unwind().await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(call_id = %id, error = ?e, "call attempt failed"),
                    Err(panic) => {
                        let error = crate::panic_message(&*panic);
                        tracing::error!(call_id = %id, %error, "call attempt panicked");
                        let result = json!({"error": format!("the call failed unexpectedly: {error}")});
                        let (owner, now) = (&me.settings.owner, me.clock.now());
                        if let Err(e) = me
                            .db
                            .finish_attempt(id, owner, "failed", "worker error", None, result, now)
                            .await
                        {
                            tracing::warn!(call_id = %id, error = %e, "could not record the failed attempt");
                        }
                    }
                }
            });
        }
        Ok(n)
    }

    /// Passes until `stop` resolves: calls run in the background while the next passes take more
    /// (up to each team's limit); an idle pass waits `poll`, or less when a call ends. On stop, calls
    /// in flight get 10 s to finish; any still running are recovered through their leases later.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut running = tokio::task::JoinSet::new();
        loop {
            let claimed = match self.claim_into(&mut running).await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "dispatch pass failed");
                    0
                }
            };
            // A full batch: more may be due at once, look again. Otherwise wait for a call to end
            // (a line frees) or for the next poll, then reap every other call that ended meanwhile,
            // so that one pass refills all the lines freed since the last. (Measured: a pass after
            // every claim made many one-call passes under a burst, each a write transaction, once
            // the due query stopped sorting every waiting call.)
            let full = claimed as i64 >= self.settings.batch;
            tokio::select! {
                // A stop is answered between full batches too.
                biased;
                _ = &mut stop => {
                    // Let short calls finish; what is still running after that is recovered by lease.
                    let _ = tokio::time::timeout(Duration::from_secs(10), async {
                        while running.join_next().await.is_some() {}
                    })
                    .await;
                    return;
                }
                _ = std::future::ready(()), if full => {}
                _ = tokio::time::sleep(self.settings.poll) => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
            }
            while running.try_join_next().is_some() {}
        }
    }

    /// The same dispatcher under another lease owner name.
    pub fn with_owner(mut self, owner: &str) -> Self {
        let mut settings = (*self.settings).clone();
        settings.owner = owner.to_owned();
        self.settings = Arc::new(settings);
        self
    }

    /// Runs a call this worker already holds the lease of (used by `voxd simulate inbound`).
    pub async fn run_claimed(&self, call: Call) -> anyhow::Result<()> {
        self.run_call(call).await
    }

    /// The owner name this worker's leases carry.
    pub fn owner(&self) -> &str {
        &self.settings.owner
    }

    /// Lease length of this worker's claims.
    pub fn lease(&self) -> std::time::Duration {
        self.settings.lease
    }

    /// A call offered to one of the team's numbers, answered by `script`: created as an inbound
    /// call already under this worker's lease (the caller becomes the contact), for
    /// [`Dispatcher::run_joined`] once its media is up. The one way live inbound calls begin.
    pub async fn create_inbound(
        &self,
        team: &crate::store::teams::Team,
        to_number: &str,
        script: Uuid,
        caller: Option<String>,
    ) -> Result<Call, crate::calls::CreateCallError> {
        use crate::calls;
        let lease_until_ms = chrono::Utc::now().timestamp_millis() + self.settings.lease.as_millis() as i64;
        let contact = crate::domain::contact::ContactInput {
            phone_number: caller.unwrap_or_default(),
            ..Default::default()
        };
        let new = calls::NewCall::new(
            calls::Kind::Inbound {
                to_number: to_number.to_owned(),
                lease_owner: self.settings.owner.clone(),
                lease_until_ms,
            },
            script,
            calls::Callee::Upsert(Box::new(contact)),
        );
        let created = calls::create(&self.db, &calls::TeamScope::from(team), new, chrono::Utc::now()).await?;
        Ok(created.call)
    }

    /// Runs a web call the browser joined (already `in_progress` under this worker's lease) on
    /// its leg, then records it like any other call: analysis, result, events, webhooks.
    pub async fn run_joined(&self, call: Call, leg: Box<dyn Leg>, carrier: &'static str) -> anyhow::Result<()> {
        self.attempt(call, Connect::Joined(leg, carrier)).await
    }

    async fn run_call(&self, call: Call) -> anyhow::Result<()> {
        self.attempt(call, Connect::Place).await
    }

    async fn attempt(&self, call: Call, connect: Connect) -> anyhow::Result<()> {
        let owner = self.settings.owner.clone();
        let script = self
            .db
            .get_script_version(call.team_id, call.script_id, call.script_version)
            .await?
            .map(|s| Arc::new(s.definition.0))
            .ok_or_else(|| anyhow::anyhow!("script {} version {} is gone", call.script_id, call.script_version));
        let script: Arc<Script> = match script {
            Ok(s) => s,
            Err(e) => {
                self.db
                    .finish_attempt(
                        call.id,
                        &owner,
                        "failed",
                        "script missing",
                        None,
                        json!({}),
                        self.clock.now(),
                    )
                    .await?;
                return Err(e);
            }
        };
        // The team's region and zone as they are now; the callee's zone was fixed at creation.
        let team = self.db.get_team(call.team_id).await?;
        let context = team.as_ref().map_or_else(CallContext::default, |t| {
            CallContext::from_settings(&t.region, &t.timezone, &call.timezone)
        });
        let contact = match call.contact_id {
            Some(id) => self.db.get_contact(call.team_id, id).await?,
            None => None,
        };
        // The same variables automations see (`contact.*`, `call.*`, `objects.<type>.*`, `custom.*`).
        let variables = crate::calls::variables::for_script(&self.db, &call, contact.as_ref()).await?;
        // Hints for the carrier: the contact's metadata with the call's own on top.
        let mut hints = contact.as_ref().map(|c| c.metadata.0.clone()).unwrap_or_default();
        hints.extend(call.metadata.0.clone());
        let dial = Dial {
            call_id: call.id,
            team_id: call.team_id,
            to_number: call.to_number.clone().unwrap_or_default(),
            from_number: call.from_number.clone().unwrap_or_default(),
            hints,
            answered: call.call_type == "inbound",
            started_at: self.clock.now(),
        };
        let sink = LeaseSink {
            db: self.db.clone(),
            clock: self.clock.clone(),
            call_id: call.id,
            owner: owner.clone(),
        };
        // Keep the lease alive while the call lasts, however long that is.
        let heartbeat = {
            let (db, clock, lease, owner, id) = (
                self.db.clone(),
                self.clock.clone(),
                self.settings.lease,
                owner.clone(),
                call.id,
            );
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(lease / 3);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let until = clock.now().timestamp_millis() + lease.as_millis() as i64;
                    if !matches!(db.extend_lease(id, &owner, until).await, Ok(true)) {
                        return;
                    }
                }
            })
        };
        // A number put on the do-not-call list after the call was scheduled: it ends here, not
        // ringing, and is not tried again.
        let suppressed =
            call.call_type == "outbound" && do_not_call::is_listed(&self.db, call.team_id, &dial.to_number).await?;
        // The carrier connects (or not); the session runs the conversation over the leg.
        let (placed, carrier) = match connect {
            Connect::Place if suppressed => (
                Placed::NotConnected {
                    status: CallStatus::Failed,
                    end_reason: "do_not_call".into(),
                },
                "none",
            ),
            Connect::Place => {
                let carrier = self.carrier.carrier_for(&dial).await;
                (self.carrier.place(dial, &sink).await, carrier)
            }
            Connect::Joined(leg, carrier) => (Placed::Answered(leg), carrier),
        };
        let attempt = match placed {
            Placed::NotConnected { status, end_reason } => Attempt {
                status,
                end_reason,
                transcript: Vec::new(),
                engine: None,
                simulated: carrier == "sim",
                recording_url: None,
            },
            Placed::Voicemail(mut leg) => {
                let transcript = session::leave_voicemail(&mut *leg, &script, &variables).await;
                leg.close().await;
                Attempt {
                    status: CallStatus::Voicemail,
                    end_reason: "voicemail".into(),
                    transcript,
                    engine: None,
                    simulated: leg.simulated(),
                    recording_url: leg.recording_url(),
                }
            }
            Placed::Answered(mut leg) => {
                let setup = session::Setup {
                    script: script.clone(),
                    variables,
                    context,
                    brain: self.brain.clone(),
                    tools: self.tools.clone(),
                };
                let engine = session::converse(&mut *leg, setup).await;
                leg.close().await;
                let (status, end_reason) = match (leg.outcome(), engine.end_reason()) {
                    (Some(outcome), _) => outcome,
                    (None, r) => match r {
                        Some(EndReason::Dropped) => (CallStatus::Dropout, "dropout".to_owned()),
                        Some(EndReason::UserHangup) => (CallStatus::HangUp, "user hangup".to_owned()),
                        Some(EndReason::Failed(_)) => (CallStatus::Failed, "failed".to_owned()),
                        Some(r) => (CallStatus::Completed, r.as_str().to_owned()),
                        None => (CallStatus::Completed, "ai hangup".to_owned()),
                    },
                };
                Attempt {
                    status,
                    end_reason,
                    transcript: engine.transcript().to_vec(),
                    simulated: leg.simulated(),
                    recording_url: leg.recording_url(),
                    engine: Some(engine),
                }
            }
        };
        heartbeat.abort();
        // "Don't call me again" puts the number on the list (the number the call was with: a web
        // call's browser is not the contact's phone).
        let with = match call.call_type.as_str() {
            "outbound" => call.to_number.as_deref(),
            "inbound" => call.from_number.as_deref(),
            _ => None,
        };
        if let Some(number) = with.filter(|_| rules::asked_not_to_be_called(&attempt.transcript)) {
            if let Err(e) = do_not_call::requested_on_call(&self.db, call.team_id, number, call.id).await {
                tracing::error!(call_id = %call.id, error = %e, "the callee asked not to be called again, and listing the number failed");
            }
        }
        // An analysis that is done within the grace is recorded with the attempt's end, its
        // `processing` step included, in one write; a longer one shows `processing` while it runs.
        let (analysis, processing_at) = match &attempt.engine {
            Some(engine) => {
                let since = self.clock.now();
                let analyse = engine.analyse(&*self.brain);
                tokio::pin!(analyse);
                match tokio::time::timeout(PROCESSING_GRACE, &mut analyse).await {
                    Ok(done) => (Some(done), Some(since)),
                    Err(_) => {
                        if !sink.progress(Progress::Processing).await {
                            return Ok(());
                        }
                        (Some(analyse.await), None)
                    }
                }
            }
            None => (None, None),
        };
        let duration_seconds = attempt.transcript.last().map_or(0, |t| t.start_ms / 1000);
        let result = json!({
            "attempt": call.attempts,
            "carrier": carrier,
            "simulated": attempt.simulated,
            "transcript": attempt.transcript,
            "duration_seconds": duration_seconds,
            "recording_url": attempt.recording_url,
            "analysis": analysis,
        });
        let now = self.clock.now();
        let retry = if suppressed {
            None
        } else {
            call.retry_policy
                .0
                .next_attempt(call.attempts as u32, attempt.status, now)
        };
        let status = attempt.status.as_str();
        if !self
            .db
            .finish_processed_attempt(
                call.id,
                &owner,
                processing_at,
                status,
                &attempt.end_reason,
                retry,
                result,
                now,
            )
            .await?
        {
            tracing::warn!(call_id = %call.id, "lease lost before the attempt was recorded");
        } else {
            tracing::info!(call_id = %call.id, attempt = call.attempts, status, end_reason = %attempt.end_reason, retry = retry.is_some(), "call attempt ended");
        }
        Ok(())
    }
}

/// How an attempt reaches its callee.
enum Connect {
    /// The carrier places the call.
    Place,
    /// The callee is already on this leg (a browser joined a web call), through this carrier.
    Joined(Box<dyn Leg>, &'static str),
}

/// How one attempt went, whatever the carrier.
struct Attempt {
    status: CallStatus,
    end_reason: String,
    transcript: Vec<crate::conversation::transcript::Turn>,
    /// The conversation, when someone answered: it is analysed.
    engine: Option<crate::conversation::engine::Engine>,
    simulated: bool,
    recording_url: Option<String>,
}
