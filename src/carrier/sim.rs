//! The simulated carrier. Nothing rings: the outcome of each attempt follows a documented rule, and
//! an answered call is a [`SimLeg`] whose far end is a simulated callee, over which the session
//! runs the script in virtual time (a five-minute call takes milliseconds). Results say they were
//! simulated.
//!
//! Outcome rule: the contact's metadata `sim_outcome` if set (`answered`, `voicemail`,
//! `no_answer`, `busy`, `rejected`, `failure`, `drop`), else the last digit of the number dialled:
//!
//! | last digit | outcome | status | end reason |
//! |---|---|---|---|
//! | 0–4 | answered | completed (or hang-up, failed) | from the conversation |
//! | 5 | voicemail | voicemail | voicemail |
//! | 6 | no answer | rang-out | no answer |
//! | 7 | busy | User unavailable | busy |
//! | 8 | rejected | User rejected | rejected |
//! | 9 | network failure | failed | failed |
//! | (`drop`) | answered, then the line drops after the first exchange | dropout | dropout |
//!
//! The callee is `sim_persona` from the contact's metadata: a stock persona's name (`cooperative`,
//! the default, and the others of `Persona::STOCK`) or a JSON persona object.

use std::{collections::VecDeque, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Carrier, Dial, Leg, LegEvent, Placed, ProgressSink};
use crate::{
    conversation::{
        engine::UtteranceId,
        persona::{Action, Persona, ANSWER_SECS, INTERRUPT_SECS},
    },
    domain::call::{CallStatus, Progress},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimOutcome {
    Answered,
    Voicemail,
    NoAnswer,
    Busy,
    Rejected,
    Failure,
    Drop,
}

impl SimOutcome {
    pub fn for_call(to_number: &str, metadata: &serde_json::Map<String, Value>) -> Self {
        if let Some(o) = metadata.get("sim_outcome").and_then(Value::as_str) {
            match o {
                "answered" => return SimOutcome::Answered,
                "voicemail" => return SimOutcome::Voicemail,
                "no_answer" => return SimOutcome::NoAnswer,
                "busy" => return SimOutcome::Busy,
                "rejected" => return SimOutcome::Rejected,
                "failure" => return SimOutcome::Failure,
                "drop" => return SimOutcome::Drop,
                _ => {}
            }
        }
        match to_number.chars().last().and_then(|c| c.to_digit(10)) {
            Some(5) => SimOutcome::Voicemail,
            Some(6) => SimOutcome::NoAnswer,
            Some(7) => SimOutcome::Busy,
            Some(8) => SimOutcome::Rejected,
            Some(9) => SimOutcome::Failure,
            _ => SimOutcome::Answered,
        }
    }
}

fn persona(metadata: &serde_json::Map<String, Value>) -> Persona {
    match metadata.get("sim_persona") {
        Some(Value::String(name)) => Persona::stock(name).unwrap_or_else(|| {
            tracing::warn!(persona = %name, "unknown sim_persona; using cooperative");
            Persona::cooperative()
        }),
        Some(v @ Value::Object(_)) => serde_json::from_value(v.clone()).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "sim_persona is not a persona; using cooperative");
            Persona::cooperative()
        }),
        _ => Persona::cooperative(),
    }
}

/// Delays of the simulated network (zero in tests and benchmarks).
#[derive(Debug, Clone, Copy, Default)]
pub struct SimDelays {
    pub ring: Duration,
    pub answer: Duration,
}

pub struct SimCarrier {
    pub delays: SimDelays,
}

#[async_trait]
impl Carrier for SimCarrier {
    fn name(&self) -> &'static str {
        "sim"
    }

    async fn place(&self, dial: Dial, sink: &dyn ProgressSink) -> Placed {
        let outcome = if dial.answered {
            SimOutcome::Answered
        } else {
            SimOutcome::for_call(&dial.to_number, &dial.hints)
        };
        let gone = || Placed::not_connected(CallStatus::Failed, "api_ended");
        if outcome == SimOutcome::Failure {
            return Placed::not_connected(CallStatus::Failed, "failed");
        }
        // With no delays, an answered call rings and is answered in the same instant: one report.
        let instant = self.delays.ring.is_zero()
            && self.delays.answer.is_zero()
            && matches!(outcome, SimOutcome::Answered | SimOutcome::Voicemail | SimOutcome::Drop);
        if instant {
            if !sink.progress_steps(&[Progress::Ringing, Progress::InProgress]).await {
                return gone();
            }
        } else {
            if !sink.progress(Progress::Ringing).await {
                return gone();
            }
            if !self.delays.ring.is_zero() {
                tokio::time::sleep(self.delays.ring).await;
            }
            match outcome {
                SimOutcome::NoAnswer => return Placed::not_connected(CallStatus::RangOut, "no answer"),
                SimOutcome::Busy => return Placed::not_connected(CallStatus::UserUnavailable, "busy"),
                SimOutcome::Rejected => return Placed::not_connected(CallStatus::UserRejected, "rejected"),
                _ => {}
            }
            if !self.delays.answer.is_zero() {
                tokio::time::sleep(self.delays.answer).await;
            }
            if !sink.progress(Progress::InProgress).await {
                return gone();
            }
        }
        let leg = SimLeg::new(dial.started_at, persona(&dial.hints), outcome == SimOutcome::Drop);
        match outcome {
            SimOutcome::Voicemail => Placed::Voicemail(Box::new(leg)),
            _ => Placed::Answered(Box::new(leg)),
        }
    }
}

/// Callee turns after which a simulated call is over whatever the script does.
const MAX_TURNS: usize = 200;

/// A leg whose far end is a persona speaking text, in virtual time: playback takes no time, the
/// callee answers the assistant's latest words a few seconds later (or talks over them, or stays
/// silent until the engine's next deadline), and nothing waits on a real clock.
pub struct SimLeg {
    now: DateTime<Utc>,
    persona: Persona,
    /// Lines said since the callee last reacted: (id, text, interruptible).
    fresh: Vec<(UtteranceId, String, bool)>,
    /// What happens next, with when.
    queue: VecDeque<(DateTime<Utc>, LegEvent)>,
    turns: usize,
    /// The line drops after the callee's first turn (`sim_outcome: drop`).
    drops: bool,
    ended: bool,
}

impl SimLeg {
    pub fn new(now: DateTime<Utc>, persona: Persona, drops: bool) -> Self {
        SimLeg {
            now,
            persona,
            fresh: Vec::new(),
            queue: VecDeque::new(),
            turns: 0,
            drops,
            ended: false,
        }
    }

    /// The callee reacts to the assistant's latest words.
    fn react(&mut self) {
        let fresh = std::mem::take(&mut self.fresh);
        let Some((last_id, last, interruptible)) = fresh.last().cloned() else {
            return;
        };
        let now = self.now;
        let played = |queue: &mut VecDeque<_>, ids: &[(UtteranceId, String, bool)]| {
            for (id, _, _) in ids {
                queue.push_back((now, LegEvent::Played(*id)));
            }
        };
        if self.turns >= MAX_TURNS {
            played(&mut self.queue, &fresh);
            self.queue.push_back((now, LegEvent::HungUp));
            return;
        }
        match self.persona.respond(&last) {
            Action::Say(text) if self.persona.talks_over() && interruptible => {
                played(&mut self.queue, &fresh[..fresh.len() - 1]);
                let at = now + chrono::Duration::seconds(INTERRUPT_SECS);
                self.queue.push_back((
                    at,
                    LegEvent::BargeIn {
                        utterance: last_id,
                        played_ms: (INTERRUPT_SECS * 1000) as u64,
                    },
                ));
                self.heard(at, text);
            }
            Action::Say(text) => {
                played(&mut self.queue, &fresh);
                self.heard(now + chrono::Duration::seconds(ANSWER_SECS), text);
            }
            Action::HangUp => {
                played(&mut self.queue, &fresh);
                self.queue.push_back((now, LegEvent::HungUp));
            }
            Action::Silence => played(&mut self.queue, &fresh),
        }
    }

    fn heard(&mut self, at: DateTime<Utc>, text: String) {
        self.turns += 1;
        self.queue.push_back((at, LegEvent::Heard(text)));
        if self.drops {
            self.queue.push_back((at, LegEvent::Dropped));
        }
    }
}

#[async_trait]
impl Leg for SimLeg {
    async fn next_event(&mut self, deadline: Option<DateTime<Utc>>) -> LegEvent {
        if self.queue.is_empty() {
            self.react();
        }
        if let Some((at, event)) = self.queue.pop_front() {
            // The engine's deadline comes first if it is earlier than the callee's answer.
            if let Some(d) = deadline.filter(|d| *d < at) {
                self.queue.push_front((at, event));
                self.now = d.max(self.now);
                return LegEvent::Deadline;
            }
            self.now = at.max(self.now);
            return event;
        }
        match deadline {
            Some(d) if !self.ended => {
                self.now = d.max(self.now);
                LegEvent::Deadline
            }
            // Nothing will ever happen again: the callee gives up.
            _ => LegEvent::HungUp,
        }
    }

    async fn say(&mut self, id: UtteranceId, text: &str, interruptible: bool) {
        self.fresh.push((id, text.to_owned(), interruptible));
    }

    async fn stop_speaking(&mut self) {
        self.fresh.clear();
    }

    async fn hang_up(&mut self) {
        self.ended = true;
    }

    /// Simulated: nothing rings anywhere, so the hand-over always works (results say simulated).
    async fn transfer(&mut self, _to: &str) -> Result<(), String> {
        self.ended = true;
        Ok(())
    }

    fn now(&self) -> DateTime<Utc> {
        self.now
    }

    fn virtual_time(&self) -> bool {
        true
    }

    fn simulated(&self) -> bool {
        true
    }
}
