//! The simulated carrier. Nothing rings: the outcome of each attempt follows a documented rule, and
//! answered calls run the script through the conversation engine against a simulated callee, in
//! virtual time (a five-minute call takes milliseconds). Results say they were simulated.
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
//! The callee is `sim_persona` from the contact's metadata (`cooperative`, the default; `unsure`,
//! `silent`, `hangs_up`, `interrupts`), or a JSON persona object.

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use serde_json::Value;

use super::{AttemptOutcome, Carrier, Dial, ProgressSink};
use crate::{
    clock::ManualClock,
    conversation::{
        engine::{Conversation, EndReason},
        persona::{simulate, Persona},
        transcript::{Role, Turn},
        vars,
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
        Some(Value::String(name)) => match name.as_str() {
            "unsure" => Persona::unsure(),
            "silent" => Persona::silent(),
            "hangs_up" => Persona::hangs_up_early(),
            "interrupts" => Persona {
                interrupts: true,
                ..Persona::cooperative()
            },
            _ => Persona::cooperative(),
        },
        Some(v @ Value::Object(_)) => serde_json::from_value(v.clone()).unwrap_or_else(|_| Persona::cooperative()),
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

    async fn place(&self, dial: Dial, sink: &dyn ProgressSink) -> AttemptOutcome {
        let outcome = SimOutcome::for_call(&dial.to_number, &dial.contact_metadata);
        let ended = |status: CallStatus, reason: &str, transcript: Vec<Turn>| AttemptOutcome {
            status,
            end_reason: reason.to_owned(),
            duration_seconds: transcript.last().map_or(0, |t| t.start_ms / 1000),
            transcript,
            conversation: None,
            recording_url: None,
            simulated: true,
        };
        if outcome == SimOutcome::Failure {
            return ended(CallStatus::Failed, "failed", Vec::new());
        }
        // With no delays, an answered call rings and is answered in the same instant: one report.
        let instant = self.delays.ring.is_zero()
            && self.delays.answer.is_zero()
            && matches!(outcome, SimOutcome::Answered | SimOutcome::Voicemail | SimOutcome::Drop);
        if instant {
            if !sink.progress_steps(&[Progress::Ringing, Progress::InProgress]).await {
                return ended(CallStatus::Failed, "api_ended", Vec::new());
            }
        } else {
            if !sink.progress(Progress::Ringing).await {
                return ended(CallStatus::Failed, "api_ended", Vec::new());
            }
            if !self.delays.ring.is_zero() {
                tokio::time::sleep(self.delays.ring).await;
            }
            match outcome {
                SimOutcome::NoAnswer => return ended(CallStatus::RangOut, "no answer", Vec::new()),
                SimOutcome::Busy => return ended(CallStatus::UserUnavailable, "busy", Vec::new()),
                SimOutcome::Rejected => return ended(CallStatus::UserRejected, "rejected", Vec::new()),
                _ => {}
            }
            if !self.delays.answer.is_zero() {
                tokio::time::sleep(self.delays.answer).await;
            }
            if !sink.progress(Progress::InProgress).await {
                return ended(CallStatus::Failed, "api_ended", Vec::new());
            }
        }
        if outcome == SimOutcome::Voicemail {
            let message = dial
                .script
                .voicemail_message
                .as_deref()
                .map(|m| vars::render(m, &dial.variables))
                .unwrap_or_default();
            let transcript = vec![Turn {
                role: Role::Assistant,
                text: message,
                start_ms: 0,
                step: None,
                interrupted: false,
            }];
            return ended(CallStatus::Voicemail, "voicemail", transcript);
        }
        let clock = Arc::new(ManualClock::new(dial.started_at));
        let mut conversation = Conversation::start(
            dial.script,
            dial.brain,
            dial.tools,
            clock.clone(),
            dial.variables,
            dial.context,
        )
        .await;
        let mut callee = persona(&dial.contact_metadata);
        let max_turns = if outcome == SimOutcome::Drop { 1 } else { 200 };
        simulate(&mut conversation, &mut callee, &clock, max_turns).await;
        let (status, reason) = match (outcome, conversation.end_reason()) {
            (SimOutcome::Drop, _) => (CallStatus::Dropout, "dropout".to_owned()),
            (_, Some(EndReason::UserHangup)) => (CallStatus::HangUp, "user hangup".to_owned()),
            (_, Some(EndReason::Failed(_))) => (CallStatus::Failed, "failed".to_owned()),
            (_, Some(r)) => (CallStatus::Completed, r.as_str().to_owned()),
            (_, None) => (CallStatus::Completed, "ai hangup".to_owned()),
        };
        let transcript = conversation.transcript().to_vec();
        AttemptOutcome {
            status,
            end_reason: reason,
            duration_seconds: transcript.last().map_or(0, |t| t.start_ms / 1000),
            transcript,
            conversation: Some(conversation),
            recording_url: None,
            simulated: true,
        }
    }
}
