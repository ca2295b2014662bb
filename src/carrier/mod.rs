//! Carriers place calls and hand back a [`Leg`]: the connection to the callee. A carrier reports
//! the call's progress (ringing, answered) through a [`ProgressSink`] and knows nothing of
//! scripts or brains; the session (`crate::session`) runs the conversation over whatever leg it
//! gets, the same code for every carrier. `sim` (the default) simulates the telephone network
//! offline and deterministically: its far end is a persona speaking text.

pub mod sim;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::{
    conversation::engine::UtteranceId,
    domain::call::{CallStatus, Progress},
};

/// What a carrier needs to place one call attempt.
pub struct Dial {
    pub call_id: uuid::Uuid,
    pub team_id: uuid::Uuid,
    pub to_number: String,
    pub from_number: String,
    /// Hints for the carrier: the `sim` carrier reads `sim_outcome` and `sim_persona` (the call's
    /// metadata over its contact's).
    pub hints: serde_json::Map<String, Value>,
    /// The call is inbound: the callee's side is already connected.
    pub answered: bool,
    /// When the attempt started (the dispatcher's clock).
    pub started_at: DateTime<Utc>,
}

#[async_trait]
pub trait ProgressSink: Send + Sync {
    /// False when the call was taken away (lease lost): the carrier should hang up.
    async fn progress(&self, progress: Progress) -> bool {
        self.progress_steps(&[progress]).await
    }

    /// Transitions that happened back to back (ringing, then answered at once), in order: the
    /// sink may record them in one write, each still its own event. False as for `progress`.
    async fn progress_steps(&self, steps: &[Progress]) -> bool;
}

/// How placing a call came out.
pub enum Placed {
    /// A person answered (progress `in_progress` was reported): the conversation runs on the leg.
    Answered(Box<dyn Leg>),
    /// A machine answered: the session leaves the script's voicemail message on the leg.
    Voicemail(Box<dyn Leg>),
    /// Nobody answered, or the network failed.
    NotConnected { status: CallStatus, end_reason: String },
}

impl Placed {
    /// Not connected, with the status and the reason the call's events will show.
    pub fn not_connected(status: CallStatus, end_reason: impl Into<String>) -> Placed {
        Placed::NotConnected {
            status,
            end_reason: end_reason.into(),
        }
    }
}

/// What the far end of a leg did.
#[derive(Debug, Clone, PartialEq)]
pub enum LegEvent {
    /// The callee's final words of an utterance (recognised speech, or text for `sim`).
    Heard(String),
    /// Recognised speech with the moment the callee started saying it (live audio).
    Utterance {
        text: String,
        started_at: DateTime<Utc>,
    },
    /// Words recognised so far of an utterance still going on.
    Partial(String),
    /// The callee started speaking while `utterance` played, `played_ms` into it.
    BargeIn {
        utterance: UtteranceId,
        played_ms: u64,
    },
    /// An utterance finished playing.
    Played(UtteranceId),
    Dtmf(char),
    /// The callee hung up.
    HungUp,
    /// The line dropped.
    Dropped,
    /// The deadline asked for passed with nothing else happening.
    Deadline,
}

/// One live call: the callee's side comes in as events, the assistant's side goes out as speech.
#[async_trait]
pub trait Leg: Send {
    /// The next thing that happens, or [`LegEvent::Deadline`] once `deadline` passes first.
    async fn next_event(&mut self, deadline: Option<DateTime<Utc>>) -> LegEvent;

    /// Speaks `text` (queued after what is already playing); reports `Played(id)` when done.
    async fn say(&mut self, id: UtteranceId, text: &str, interruptible: bool);

    /// Stops what is playing and drops what is queued.
    async fn stop_speaking(&mut self);

    /// Ends the call from this side, after what is queued has played.
    async fn hang_up(&mut self);

    /// The leg's clock: the moment events happen (virtual for `sim`).
    fn now(&self) -> DateTime<Utc>;

    /// True when time on this leg is simulated: the session then runs each job to its end before
    /// asking for the next event (a simulated callee waits for the reply, and virtual time does
    /// not pass while the brain thinks).
    fn virtual_time(&self) -> bool {
        false
    }

    /// Nothing rang anywhere (the `sim` carrier): results say so.
    fn simulated(&self) -> bool {
        false
    }

    /// Where the recording of this leg is served, once there is one.
    fn recording_url(&self) -> Option<String> {
        None
    }

    /// What the current step expects of the callee, for a leg that listens to audio: how soon a
    /// pause ends their turn, and words recognition should expect. Called as the step changes.
    fn listen(&mut self, _listening: Listening) {}

    /// Frees what the leg holds once the conversation is over (a goodbye still playing plays out,
    /// a recording is written).
    async fn close(&mut self) {}

    /// Hands the call to `to` (E.164 or a SIP URI) once what was queued has played: Ok when the
    /// far end took the transfer (the call is no longer ours), else why not.
    async fn transfer(&mut self, _to: &str) -> Result<(), String> {
        Err("this line cannot hand calls over".into())
    }

    /// An outcome the far side decided that overrides the conversation's (a web call ended through
    /// the API: `completed` / `api_ended` unless the request said otherwise).
    fn outcome(&self) -> Option<(CallStatus, String)> {
        None
    }
}

/// See [`Leg::listen`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listening {
    pub eagerness: crate::conversation::script::Eagerness,
    /// Turns the callee has taken so far (the first ones end sooner: greetings are short).
    pub callee_turns: usize,
    pub keywords: Vec<String>,
}

#[async_trait]
pub trait Carrier: Send + Sync {
    fn name(&self) -> &'static str;

    /// The carrier that would place this call: a carrier that hands some calls to another says
    /// which (results record it, and `sim` makes them `simulated`).
    async fn carrier_for(&self, _dial: &Dial) -> &'static str {
        self.name()
    }

    async fn place(&self, dial: Dial, sink: &dyn ProgressSink) -> Placed;
}
