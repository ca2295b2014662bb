//! A session runs one live call: it starts the engine, feeds it what happens on the leg (the
//! callee's words, barge-ins, playback, DTMF, hang-up, the engine's own deadlines) and carries out
//! what the engine asks (speak, stop, hang up, run a job). The same code runs every carrier's legs.
//!
//! Jobs (brain decisions, worded lines, tools) run beside the leg, so the callee can speak again
//! while the brain thinks and the engine supersedes the decision in flight; their pieces and
//! results come back through a channel. On a leg with virtual time (`sim`) each job runs to its end
//! first instead: a simulated callee waits for the reply, and virtual time must not pass meanwhile.

use std::{collections::VecDeque, sync::Arc};

use serde_json::Value;
use tokio::{sync::mpsc, task::JoinSet};

use crate::{
    carrier::{Leg, LegEvent, Listening},
    conversation::{
        brain::Brain,
        context::CallContext,
        engine::{Action, Engine, Event, JobResult},
        script::Script,
        tools::Tools,
        transcript::{Role, Turn},
        vars,
    },
};

/// What a conversation needs besides its leg.
pub struct Setup {
    pub script: Arc<Script>,
    /// `contact`, `call`, `objects` and `custom` for the script.
    pub variables: Value,
    pub context: CallContext,
    pub brain: Arc<dyn Brain>,
    pub tools: Arc<Tools>,
}

fn to_event(e: LegEvent) -> Event {
    match e {
        LegEvent::Heard(t) => Event::Heard(t),
        LegEvent::Utterance { text, started_at } => Event::Utterance { text, started_at },
        LegEvent::Partial(t) => Event::Partial(t),
        LegEvent::BargeIn { utterance, played_ms } => Event::BargeIn { utterance, played_ms },
        LegEvent::Played(id) => Event::Played(id),
        LegEvent::Dtmf(d) => Event::Dtmf(d),
        LegEvent::HungUp => Event::HangUp,
        LegEvent::Dropped => Event::Dropped,
        LegEvent::Deadline => Event::Timer,
    }
}

/// What the engine waits to hear now.
fn listening(engine: &Engine, script: &Script) -> Listening {
    let step = engine.current_step();
    let mut keywords = script.settings.keywords.clone();
    if let Some(step) = step {
        keywords.extend(step.conditions.iter().flat_map(|c| c.keywords.iter().cloned()));
    }
    Listening {
        eagerness: step.map(|s| s.eagerness).unwrap_or_default(),
        callee_turns: engine.transcript().iter().filter(|t| t.role == Role::User).count(),
        keywords,
    }
}

/// Runs the script over the leg until the conversation ends; the engine, for its transcript and
/// analysis.
pub async fn converse(leg: &mut dyn Leg, setup: Setup) -> Engine {
    let Setup {
        script,
        variables,
        context,
        brain,
        tools,
    } = setup;
    let (mut engine, actions) = Engine::start(script.clone(), variables, context, leg.now());
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    let mut jobs = JoinSet::new();
    let mut queue: VecDeque<Action> = actions.into();
    loop {
        // Carry out what the engine asked, feeding back what jobs run inline report.
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Say {
                    id,
                    text,
                    interruptible,
                } => leg.say(id, &text, interruptible).await,
                Action::StopSpeaking => leg.stop_speaking().await,
                Action::HangUp => leg.hang_up().await,
                Action::Transfer { job, to } => {
                    let result = JobResult::Transferred(leg.transfer(&to).await);
                    queue.extend(engine.handle(leg.now(), Event::Done { job, result }));
                }
                Action::Run(job) if leg.virtual_time() => {
                    let id = job.id;
                    let mut pieces = Vec::new();
                    let done = job.run(&*brain, &tools, |p| pieces.push(p)).await;
                    for text in pieces {
                        queue.extend(engine.handle(leg.now(), Event::Piece { job: id, text }));
                    }
                    queue.extend(engine.handle(leg.now(), done));
                }
                Action::Run(job) => {
                    let (tx, brain, tools) = (tx.clone(), brain.clone(), tools.clone());
                    jobs.spawn(async move {
                        let id = job.id;
                        let pieces = tx.clone();
                        let done = job
                            .run(&*brain, &tools, move |text| {
                                let _ = pieces.send(Event::Piece { job: id, text });
                            })
                            .await;
                        let _ = tx.send(done);
                    });
                }
            }
        }
        if engine.is_over() {
            break;
        }
        leg.listen(listening(&engine, &script));
        let deadline = engine.next_deadline();
        let event = if leg.virtual_time() {
            to_event(leg.next_event(deadline).await)
        } else {
            tokio::select! {
                // A job's news first: it may make what the leg reports next moot.
                biased;
                Some(e) = rx.recv() => e,
                e = leg.next_event(deadline) => to_event(e),
            }
        };
        queue.extend(engine.handle(leg.now(), event));
    }
    // Jobs still running are moot now.
    jobs.abort_all();
    engine
}

/// Leaves the script's voicemail message (variables filled in) on a leg a machine answered, then
/// hangs up; the transcript.
pub async fn leave_voicemail(leg: &mut dyn Leg, script: &Script, variables: &Value) -> Vec<Turn> {
    let message = script
        .voicemail_message
        .as_deref()
        .map(|m| vars::render(m, variables))
        .unwrap_or_default();
    let started = leg.now();
    if !message.trim().is_empty() {
        leg.say(1, &message, false).await;
        // Until it has played (bounded by the script's maximum duration).
        let until = started + chrono::Duration::seconds(script.settings.max_duration_seconds as i64);
        loop {
            match leg.next_event(Some(until)).await {
                LegEvent::Played(1) | LegEvent::Deadline | LegEvent::HungUp | LegEvent::Dropped => break,
                _ => {}
            }
        }
    }
    leg.hang_up().await;
    vec![Turn {
        role: Role::Assistant,
        text: message,
        start_ms: 0,
        step: None,
        interrupted: false,
    }]
}
