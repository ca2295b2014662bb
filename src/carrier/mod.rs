//! Carriers place calls. `sim` (the default) simulates the telephone network offline and
//! deterministically; real providers will implement the same trait.

pub mod sim;

use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

use crate::{
    conversation::{
        brain::Brain, context::CallContext, engine::Conversation, script::Script, tools::Tools, transcript::Turn,
    },
    domain::call::{CallStatus, Progress},
};

/// What a carrier needs to place one call attempt.
pub struct Dial {
    pub call_id: uuid::Uuid,
    pub to_number: String,
    pub from_number: String,
    pub script: Arc<Script>,
    /// `contact`, `call` and `custom` variables for the script.
    pub variables: Value,
    /// Contact metadata (the sim carrier reads `sim_outcome` and `sim_persona` from it).
    pub contact_metadata: serde_json::Map<String, Value>,
    pub brain: Arc<dyn Brain>,
    pub tools: Arc<Tools>,
    /// Where the call happens: the team's region and zone, the callee's zone.
    pub context: CallContext,
    /// When the attempt started (the dispatcher's clock): a simulated call's time starts there.
    pub started_at: chrono::DateTime<chrono::Utc>,
}

/// Where a carrier reports progress as the call moves (ringing, in progress).
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

/// How an attempt ended.
pub struct AttemptOutcome {
    pub status: CallStatus,
    pub end_reason: String,
    pub transcript: Vec<Turn>,
    /// The conversation, when the call was answered: the dispatcher analyses it.
    pub conversation: Option<Conversation>,
    pub duration_seconds: i64,
    pub recording_url: Option<String>,
    /// True for the `sim` carrier: nothing rang anywhere.
    pub simulated: bool,
}

#[async_trait]
pub trait Carrier: Send + Sync {
    fn name(&self) -> &'static str;
    async fn place(&self, dial: Dial, sink: &dyn ProgressSink) -> AttemptOutcome;
}
