//! The conversation engine: a deterministic, event-driven state machine over a Script's flows,
//! with a flow stack. It does no I/O and never waits: the caller (a session over a call leg, the
//! text driver of `voxd chat` and tests) feeds it [`Event`]s with the time they happened and
//! carries out the [`Action`]s it returns — say this, stop speaking, hang up, run this job (a brain
//! decision, the wording of a line, a tool). A job's result comes back as an event; a job the
//! callee made obsolete by speaking again is superseded, its result ignored when it arrives.
//! [`Engine::next_deadline`] says when the engine wants a [`Event::Timer`].
//!
//! enter step → speak (variables filled in) → hear the callee → the brain says which condition
//! holds → move. Function steps run at once; tool steps run as jobs and cannot be interrupted.
//! Silence is counted from the end of playback, not from when a line was produced.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::{
    analysis::Analysis,
    brain::{AnalyseRequest, Brain, BrainError, DecideRequest, Decision},
    context::CallContext,
    functions::{self, FunctionContext},
    script::{Condition, Outcome, Script, Step, StepType, ToolConfig},
    tools::Tools,
    transcript::{Role, Turn},
    vars,
};

/// Why a conversation ended. `as_str` gives the call's `end_reason`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum EndReason {
    /// The main flow reached `end_flow`.
    FlowEnded(Outcome),
    /// The assistant hung up (`end_call`, or the callee asked not to be called).
    AssistantHangup,
    UserHangup,
    MaxDuration,
    Silence,
    /// The line dropped mid-call.
    Dropped,
    /// The brain or a step failed; the conversation ended cleanly anyway.
    Failed(String),
    /// A `transfer_call` step handed the call to someone else.
    Transferred,
}

impl EndReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::FlowEnded(_) | EndReason::AssistantHangup => "ai hangup",
            EndReason::UserHangup => "user hangup",
            EndReason::MaxDuration => "max duration",
            EndReason::Silence => "silence timeout",
            EndReason::Dropped => "dropout",
            EndReason::Failed(_) => "failed",
            EndReason::Transferred => "transferred",
        }
    }
}

/// Names one thing the assistant says (a line, or one sentence of a streamed reply).
pub type UtteranceId = u64;
/// Names one job; results of jobs no longer awaited are ignored.
pub type JobId = u64;

/// What happened on the call.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The callee's final words for an utterance.
    Heard(String),
    /// The same from live audio: the words and when the callee started saying them (the turn's
    /// time is the audio's, not the moment recognition finished).
    Utterance { text: String, started_at: DateTime<Utc> },
    /// Words recognised so far of an utterance still going on (not acted on; kept for display).
    Partial(String),
    /// The callee started speaking while `utterance` played, `played_ms` into it.
    BargeIn { utterance: UtteranceId, played_ms: u64 },
    /// An utterance finished playing.
    Played(UtteranceId),
    /// The deadline of [`Engine::next_deadline`] passed.
    Timer,
    /// A key pressed (RFC 4733 or SIP INFO), `0`–`9`, `*`, `#`.
    Dtmf(char),
    /// The callee hung up.
    HangUp,
    /// The line dropped.
    Dropped,
    /// A sentence of a job's reply, before the job is done.
    Piece { job: JobId, text: String },
    /// A job finished.
    Done { job: JobId, result: JobResult },
}

/// What the engine asks of whoever drives it.
#[derive(Debug, Clone)]
pub enum Action {
    /// Speak this; report [`Event::Played`] (or [`Event::BargeIn`]) with its id.
    Say {
        id: UtteranceId,
        text: String,
        /// Voice steps can be talked over; lines of tool and function steps cannot.
        interruptible: bool,
    },
    /// Stop what is playing and drop what is queued.
    StopSpeaking,
    /// End the call (after what was said has played).
    HangUp,
    /// Run this job and report its pieces and result.
    Run(Job),
    /// Hand the call to `to` (E.164 or a SIP URI) once what was said has played; report
    /// [`Event::Done`] with [`JobResult::Transferred`] under `job`.
    Transfer { job: JobId, to: String },
}

/// Work the engine needs done outside it.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: JobId,
    pub work: Work,
}

#[derive(Debug, Clone)]
pub enum Work {
    /// What the callee's words mean at a voice step.
    Decide {
        script: Arc<Script>,
        step: Box<Step>,
        utterance: String,
        transcript: Vec<Turn>,
    },
    /// The words for an instruction ("Ask whether …"); may arrive sentence by sentence.
    Compose {
        script: Arc<Script>,
        instruction: String,
        transcript: Vec<Turn>,
    },
    /// A tool step's request.
    Tool {
        tool: ToolConfig,
        inputs: BTreeMap<String, String>,
        vars: Value,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    Decided(Result<Decision, String>),
    /// The whole text (pieces already reported are its beginning).
    Composed(Result<String, String>),
    Tool {
        success: bool,
        outputs: serde_json::Map<String, Value>,
    },
    /// The line took the transfer, or why not.
    Transferred(Result<(), String>),
}

impl Job {
    /// Runs the job with `brain` and `tools`, handing each sentence of a composed reply to `piece`
    /// as it is produced; the event that reports the result.
    pub async fn run(self, brain: &dyn Brain, tools: &Tools, mut piece: impl FnMut(String) + Send) -> Event {
        let result = match self.work {
            Work::Decide {
                script,
                step,
                utterance,
                transcript,
            } => {
                let req = DecideRequest {
                    script: &script,
                    step: &step,
                    utterance: &utterance,
                    transcript: &transcript,
                    only_if_sure: false,
                };
                JobResult::Decided(brain.decide(req).await.map_err(|e| e.to_string()))
            }
            Work::Compose {
                script,
                instruction,
                transcript,
            } => {
                let composed = brain
                    .compose_stream(&script, &instruction, &transcript, &mut piece)
                    .await
                    .map_err(|e: BrainError| e.to_string());
                JobResult::Composed(composed)
            }
            Work::Tool { tool, inputs, vars } => {
                let r = tools.run(&tool, &inputs, &vars).await;
                JobResult::Tool {
                    success: r.success,
                    outputs: r.outputs,
                }
            }
        };
        Event::Done { job: self.id, result }
    }
}

struct Frame {
    flow: String,
    step: usize,
}

/// What a pending job's result is for.
#[derive(Debug, Clone)]
enum Awaiting {
    /// The decision on what the callee said at this voice step.
    Decision { step: String },
    /// The line of the current voice step; `prefix` is said before it (a re-ask).
    Line { prefix: Option<String>, streamed: String },
    /// The current tool step's request.
    Tool,
    /// The current `transfer_call` step's hand-over.
    Transfer,
}

/// Unclear answers in a row after which the assistant stops asking and ends the call politely.
const MAX_UNCLEAR: u32 = 3;

/// Most automatic moves (function, tool, flow steps) in a row before the engine calls it a loop.
const MAX_AUTOMATIC_MOVES: usize = 100;

pub struct Engine {
    script: Arc<Script>,
    context: CallContext,
    vars: Value,
    stack: Vec<Frame>,
    transcript: Vec<Turn>,
    path: Vec<String>,
    answers: HashMap<String, String>,
    /// The condition taken at each answered voice step: (step id, its `when`, or `otherwise`).
    choices: Vec<(String, String)>,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
    /// The job whose result the engine waits for.
    pending: Option<(JobId, Awaiting)>,
    /// Said and not yet played, with whether each may be interrupted.
    playing: Vec<(UtteranceId, bool)>,
    /// Since when nothing has been said or played, while the engine waits for the callee.
    quiet_since: Option<DateTime<Utc>>,
    prompted: bool,
    /// Unclear answers in a row on the current step.
    unclear: u32,
    /// The assistant turn a streamed reply is being written into.
    streaming_turn: Option<usize>,
    ended: Option<EndReason>,
    hung_up: bool,
    next_id: u64,
    actions: Vec<Action>,
    /// Callee's words not yet decided on, while a decision on earlier words is superseded.
    unheard: Vec<String>,
}

impl Engine {
    /// Starts the script's main flow at `now` and runs it to its first question (or its end).
    /// `vars` holds the `contact`, `call`, `objects` and `custom` namespaces; the script's `custom`
    /// defaults fill the gaps. `context` says where the call happens (region, time zones).
    pub fn start(
        script: Arc<Script>,
        mut vars: Value,
        context: CallContext,
        now: DateTime<Utc>,
    ) -> (Self, Vec<Action>) {
        for (k, v) in &script.custom {
            if vars::lookup(&vars, &format!("custom.{k}")).is_none() {
                vars::set(&mut vars, &format!("custom.{k}"), v.clone());
            }
        }
        let mut e = Engine {
            stack: vec![Frame {
                flow: script.main_flow_id.clone(),
                step: 0,
            }],
            script,
            context,
            vars,
            transcript: Vec::new(),
            path: Vec::new(),
            answers: HashMap::new(),
            choices: Vec::new(),
            started: now,
            now,
            pending: None,
            playing: Vec::new(),
            quiet_since: None,
            prompted: false,
            unclear: 0,
            streaming_turn: None,
            ended: None,
            hung_up: false,
            next_id: 1,
            actions: Vec::new(),
            unheard: Vec::new(),
        };
        e.enter();
        e.settle();
        let actions = std::mem::take(&mut e.actions);
        (e, actions)
    }

    pub fn is_over(&self) -> bool {
        self.ended.is_some()
    }

    pub fn end_reason(&self) -> Option<&EndReason> {
        self.ended.as_ref()
    }

    pub fn transcript(&self) -> &[Turn] {
        &self.transcript
    }

    /// Step ids in the order they were entered.
    pub fn path(&self) -> &[String] {
        &self.path
    }

    pub fn variables(&self) -> &Value {
        &self.vars
    }

    /// Whether a job's result is awaited.
    pub fn is_waiting_for_job(&self) -> bool {
        self.pending.is_some()
    }

    /// The step the conversation is on.
    pub fn current_step(&self) -> Option<&Step> {
        let frame = self.stack.last()?;
        self.script.flow(&frame.flow)?.steps.get(frame.step)
    }

    /// When the engine next wants [`Event::Timer`]: the script's maximum duration, and while it
    /// waits for the callee with nothing playing, the silence prompt or goodbye.
    pub fn next_deadline(&self) -> Option<DateTime<Utc>> {
        if self.is_over() {
            return None;
        }
        let limit = self.started + Duration::seconds(self.script.settings.max_duration_seconds as i64);
        let silence = self.quiet_since.and_then(|since| {
            let (prompt, shutdown) = self.current_step()?.silence_tolerance.timers()?;
            let wait = if self.prompted { shutdown - prompt } else { prompt };
            Some(since + Duration::seconds(wait as i64))
        });
        Some(silence.map_or(limit, |s| s.min(limit)))
    }

    /// Feeds one event that happened at `now`; the actions to carry out, in order.
    pub fn handle(&mut self, now: DateTime<Utc>, event: Event) -> Vec<Action> {
        // Time only moves forward; a playback report may carry an earlier time (when it ended).
        let at = now;
        self.now = now.max(self.now);
        if self.is_over() {
            // Playback reports still arrive while the goodbye plays out.
            if let Event::Played(id) = event {
                self.playing.retain(|(p, _)| *p != id);
            }
            return Vec::new();
        }
        match event {
            Event::Heard(text) => self.heard(&text, None),
            Event::Utterance { text, started_at } => self.heard(&text, Some(started_at)),
            Event::Dtmf(digit) => self.heard(&digit.to_string(), None),
            Event::Partial(_) => {}
            Event::BargeIn { utterance, played_ms } => self.barge_in(utterance, played_ms),
            Event::Played(id) => {
                self.playing.retain(|(p, _)| *p != id);
                // Silence counts from the end of playback.
                if self.playing.is_empty() && self.pending.is_none() {
                    self.quiet_since = Some(at);
                }
            }
            Event::Timer => self.timer(),
            Event::HangUp => {
                self.hung_up = true;
                self.end(EndReason::UserHangup);
            }
            Event::Dropped => {
                self.hung_up = true;
                self.end(EndReason::Dropped);
            }
            Event::Piece { job, text } => self.piece(job, text),
            Event::Done { job, result } => self.done(job, result),
        }
        self.settle();
        std::mem::take(&mut self.actions)
    }

    fn elapsed_ms(&self) -> i64 {
        (self.now - self.started).num_milliseconds()
    }

    /// The date where the callee is.
    fn today(&self) -> chrono::NaiveDate {
        self.now.with_timezone(&self.context.callee_timezone).date_naive()
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Starts the silence count when the engine waits on the callee with nothing playing.
    fn settle(&mut self) {
        let waiting = !self.is_over() && self.pending.is_none() && self.playing.is_empty();
        match (waiting, self.quiet_since) {
            (true, None) => self.quiet_since = Some(self.now),
            (false, _) => self.quiet_since = None,
            _ => {}
        }
        if self.is_over() && !self.hung_up {
            self.hung_up = true;
            self.actions.push(Action::HangUp);
        }
    }

    fn interruptible(&self) -> bool {
        self.current_step().is_some_and(|s| s.step_type == StepType::Voice)
    }

    fn say(&mut self, text: String) {
        if text.trim().is_empty() {
            return;
        }
        let step = self.current_step().map(|s| s.id.clone());
        self.transcript.push(Turn {
            role: Role::Assistant,
            text: text.clone(),
            start_ms: self.elapsed_ms(),
            step,
            interrupted: false,
        });
        self.speak(text);
    }

    /// Queues speech without a turn of its own (a streamed piece joins its reply's turn).
    fn speak(&mut self, text: String) {
        let id = self.id();
        let interruptible = self.interruptible();
        self.playing.push((id, interruptible));
        self.actions.push(Action::Say {
            id,
            text,
            interruptible,
        });
    }

    fn run(&mut self, work: Work, awaiting: Awaiting) {
        let id = self.id();
        self.pending = Some((id, awaiting));
        self.actions.push(Action::Run(Job { id, work }));
    }

    fn end(&mut self, reason: EndReason) {
        if self.ended.is_none() {
            tracing::debug!(reason = reason.as_str(), "conversation ended");
            self.ended = Some(reason);
            self.pending = None;
        }
    }

    fn fail(&mut self, e: impl std::fmt::Display) {
        tracing::warn!(error = %e, "conversation failed");
        self.say("Sorry, I'm having technical trouble, so I'll have to end the call. Goodbye.".into());
        self.end(EndReason::Failed(e.to_string()));
    }

    fn over_time(&mut self) -> bool {
        let limit = self.script.settings.max_duration_seconds as i64;
        if (self.now - self.started).num_seconds() >= limit {
            self.say("I'm afraid we're out of time, so I'll let you go. Goodbye.".into());
            self.end(EndReason::MaxDuration);
            true
        } else {
            false
        }
    }

    fn heard(&mut self, text: &str, started_at: Option<DateTime<Utc>>) {
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        let step = self.current_step().map(|s| s.id.clone());
        let start_ms = started_at.map_or(self.elapsed_ms(), |at| {
            (at - self.started).num_milliseconds().clamp(0, self.elapsed_ms())
        });
        self.transcript.push(Turn {
            role: Role::User,
            text: text.to_owned(),
            start_ms,
            step: step.clone(),
            interrupted: false,
        });
        self.prompted = false;
        if self.over_time() {
            return;
        }
        let Some(step) = self.current_step().cloned() else {
            return self.end(EndReason::Failed("no current step".into()));
        };
        if step.step_type != StepType::Voice {
            // Tool steps run to their end whatever is said meanwhile.
            return;
        }
        // Words said while an earlier decision (or the step's line) was on its way supersede it:
        // the decision is taken on everything the callee said since the last one.
        match self.pending.take() {
            Some((_, Awaiting::Decision { .. })) => {}
            Some((_, Awaiting::Line { .. })) => self.streaming_turn = None,
            Some(other) => {
                self.pending = Some(other);
                return;
            }
            None => self.unheard.clear(),
        }
        self.unheard.push(text.to_owned());
        let utterance = self.unheard.join(" ");
        self.answers.insert(step.id.clone(), utterance.clone());
        let work = Work::Decide {
            script: self.script.clone(),
            step: Box::new(step.clone()),
            utterance,
            transcript: self.transcript.clone(),
        };
        self.run(work, Awaiting::Decision { step: step.id });
    }

    fn barge_in(&mut self, utterance: UtteranceId, played_ms: u64) {
        let Some(&(_, interruptible)) = self.playing.iter().find(|(id, _)| *id == utterance) else {
            return;
        };
        if !interruptible {
            return;
        }
        self.actions.push(Action::StopSpeaking);
        self.playing.clear();
        if let Some(last) = self.transcript.iter_mut().rev().find(|t| t.role == Role::Assistant) {
            last.interrupted = true;
        }
        // A line still being worded will not be heard: the callee's words decide what comes next.
        if matches!(self.pending, Some((_, Awaiting::Line { .. }))) {
            self.pending = None;
            self.streaming_turn = None;
        }
        tracing::debug!(utterance, played_ms, "callee barged in");
    }

    /// Time passed: prompts, then ends the call, per the step's silence tolerance (counted from the
    /// end of playback); ends it at the script's maximum duration.
    fn timer(&mut self) {
        if self.over_time() {
            return;
        }
        let Some(since) = self.quiet_since else { return };
        let Some((prompt, shutdown)) = self.current_step().and_then(|s| s.silence_tolerance.timers()) else {
            return;
        };
        let quiet = (self.now - since).num_seconds();
        if self.prompted && quiet >= (shutdown - prompt) as i64 {
            self.say(self.script.settings.silence_goodbye.clone());
            self.end(EndReason::Silence);
        } else if !self.prompted && quiet >= prompt as i64 {
            self.say(self.script.settings.silence_prompt.clone());
            self.prompted = true;
        }
    }

    fn piece(&mut self, job: JobId, text: String) {
        let Some((id, Awaiting::Line { prefix, streamed })) = &mut self.pending else {
            return;
        };
        if *id != job || text.trim().is_empty() {
            return;
        }
        let mut spoken = text.trim().to_owned();
        if streamed.is_empty() {
            if let Some(p) = prefix.take() {
                spoken = format!("{p} {spoken}");
            }
        }
        if !streamed.is_empty() {
            streamed.push(' ');
        }
        streamed.push_str(text.trim());
        match self.streaming_turn {
            Some(i) => {
                let turn = &mut self.transcript[i];
                turn.text.push(' ');
                turn.text.push_str(&spoken);
                self.speak(spoken);
            }
            None => {
                self.say(spoken);
                self.streaming_turn = Some(self.transcript.len() - 1);
            }
        }
    }

    fn done(&mut self, job: JobId, result: JobResult) {
        let Some((id, _)) = &self.pending else { return };
        if *id != job {
            return; // superseded
        }
        let (_, awaiting) = self.pending.take().expect("checked above");
        match (awaiting, result) {
            (Awaiting::Decision { step }, JobResult::Decided(decision)) => self.decided(&step, decision),
            (Awaiting::Line { prefix, streamed }, JobResult::Composed(Ok(text))) => {
                // Pieces already said are the reply's beginning; say only what is left.
                let rest = if streamed.is_empty() {
                    text.trim().to_owned()
                } else {
                    text.trim()
                        .strip_prefix(streamed.as_str())
                        .unwrap_or("")
                        .trim()
                        .to_owned()
                };
                let rest = match (streamed.is_empty(), prefix) {
                    (true, Some(p)) => format!("{p} {rest}"),
                    _ => rest,
                };
                if !rest.is_empty() {
                    match self.streaming_turn {
                        Some(i) => {
                            self.transcript[i].text.push(' ');
                            self.transcript[i].text.push_str(&rest);
                            self.speak(rest);
                        }
                        None => self.say(rest),
                    }
                }
                self.streaming_turn = None;
            }
            (Awaiting::Line { .. }, JobResult::Composed(Err(e))) => {
                self.streaming_turn = None;
                self.fail(e)
            }
            (Awaiting::Tool, JobResult::Tool { success, outputs }) => {
                let Some(step) = self.current_step().cloned() else {
                    return self.end(EndReason::Failed("step not found".into()));
                };
                self.record_outputs(&step, success, &outputs);
                let outcome = if success { Outcome::Success } else { Outcome::Fail };
                if self.apply_outcome(&step, outcome) {
                    self.enter();
                }
            }
            (Awaiting::Transfer, JobResult::Transferred(result)) => {
                let Some(step) = self.current_step().cloned() else {
                    return self.end(EndReason::Failed("step not found".into()));
                };
                let outputs = match &result {
                    Ok(()) => serde_json::Map::new(),
                    Err(why) => json!({ "error": why }).as_object().cloned().unwrap_or_default(),
                };
                self.record_outputs(&step, result.is_ok(), &outputs);
                match result {
                    // The call is someone else's now: nobody hangs it up.
                    Ok(()) => {
                        self.hung_up = true;
                        self.end(EndReason::Transferred);
                    }
                    Err(why) => {
                        tracing::info!(step = %step.id, %why, "transfer refused");
                        if self.apply_outcome(&step, Outcome::Fail) {
                            self.enter();
                        }
                    }
                }
            }
            (_, other) => self.fail(format!("a job answered with the wrong kind of result: {other:?}")),
        }
    }

    fn decided(&mut self, step_id: &str, decision: Result<Decision, String>) {
        self.unheard.clear();
        let Some(step) = self.current_step().cloned().filter(|s| s.id == step_id) else {
            return;
        };
        if !matches!(decision, Ok(Decision::Unclear)) {
            self.unclear = 0;
        }
        match decision {
            Ok(Decision::Condition(i)) => match step.conditions.get(i) {
                Some(c) => {
                    let wording = c.when.clone().unwrap_or_else(|| "otherwise".into());
                    self.choices.push((step.id.clone(), wording));
                    if self.take(c.clone()) {
                        self.enter();
                    }
                }
                None => self.end(EndReason::Failed(format!(
                    "brain chose condition {i}, which does not exist"
                ))),
            },
            // Answer, then return to the step: its question is asked again after the answer.
            Ok(Decision::Answer(answer)) => self.speak_step(&step, Some(answer)),
            Ok(Decision::EndCall(goodbye)) => {
                self.say(goodbye);
                self.end(EndReason::AssistantHangup);
            }
            Ok(Decision::Unclear) if self.unclear + 1 >= MAX_UNCLEAR => {
                self.say(
                    "I'm sorry, I'm having trouble understanding, so I'll have someone follow up with you. Goodbye."
                        .into(),
                );
                self.end(EndReason::AssistantHangup);
            }
            Ok(Decision::Unclear) => {
                self.unclear += 1;
                self.speak_step(&step, Some("Sorry, I didn't quite catch that.".into()));
            }
            Err(e) => self.fail(e),
        }
    }

    /// Says a voice step's line: a verbatim script as it is, an instruction worded by the brain.
    fn speak_step(&mut self, step: &Step, prefix: Option<String>) {
        let script = step.script.as_deref().unwrap_or_default();
        let rendered = vars::render(script, &self.vars);
        match rendered.strip_prefix("Say:").or_else(|| rendered.strip_prefix("say:")) {
            Some(verbatim) => {
                let line = verbatim.trim();
                self.say(prefix.map_or_else(|| line.to_owned(), |p| format!("{p} {line}")));
            }
            None => {
                let work = Work::Compose {
                    script: self.script.clone(),
                    instruction: rendered,
                    transcript: self.transcript.clone(),
                };
                self.run(
                    work,
                    Awaiting::Line {
                        prefix,
                        streamed: String::new(),
                    },
                );
            }
        }
    }

    /// Runs from the current step until a voice step has spoken, a tool is running, or the
    /// conversation ends.
    fn enter(&mut self) {
        for _ in 0..MAX_AUTOMATIC_MOVES {
            if self.is_over() {
                return;
            }
            let Some(step) = self.current_step().cloned() else {
                return self.end(EndReason::Failed("step not found".into()));
            };
            self.path.push(step.id.clone());
            match step.step_type {
                StepType::Voice => return self.speak_step(&step, None),
                StepType::Flow => {
                    let flow = step.flow.clone().unwrap_or_default();
                    self.stack.push(Frame { flow, step: 0 });
                }
                StepType::Function | StepType::Tool => {
                    if let Some(line) = step.script.as_deref().filter(|s| !s.trim().is_empty()) {
                        let line = vars::render(line.trim_start_matches("Say:").trim(), &self.vars);
                        self.say(line);
                    }
                    let inputs: BTreeMap<String, String> = step
                        .input
                        .iter()
                        .map(|(k, v)| (k.clone(), vars::render(v, &self.vars)))
                        .collect();
                    if step.function.as_deref() == Some(functions::TRANSFER) {
                        match functions::transfer_target(&inputs, self.context.region) {
                            Some(to) => {
                                let job = self.id();
                                self.pending = Some((job, Awaiting::Transfer));
                                self.actions.push(Action::Transfer { job, to });
                                return;
                            }
                            None => {
                                self.record_outputs(&step, false, &Default::default());
                                if self.apply_outcome(&step, Outcome::Fail) {
                                    continue;
                                }
                                return;
                            }
                        }
                    }
                    if step.step_type == StepType::Tool {
                        let Some(tool) = step.tool.clone() else {
                            self.record_outputs(&step, false, &Default::default());
                            if self.apply_outcome(&step, Outcome::Fail) {
                                continue;
                            }
                            return;
                        };
                        let work = Work::Tool {
                            tool,
                            inputs,
                            vars: self.vars.clone(),
                        };
                        return self.run(work, Awaiting::Tool);
                    }
                    let (success, outputs) = match step.function.as_deref().and_then(functions::lookup) {
                        Some(f) => {
                            let ctx = FunctionContext {
                                today: self.today(),
                                region: self.context.region,
                            };
                            let r = f(&inputs, &ctx);
                            (r.success, r.outputs)
                        }
                        None => (false, Default::default()),
                    };
                    self.record_outputs(&step, success, &outputs);
                    let outcome = if success { Outcome::Success } else { Outcome::Fail };
                    if !self.apply_outcome(&step, outcome) {
                        return;
                    }
                }
            }
        }
        self.end(EndReason::Failed(
            "the script moved through 100 steps without speaking".into(),
        ));
    }

    /// A function or tool step's outputs go to the variables its `output` names.
    fn record_outputs(&mut self, step: &Step, success: bool, outputs: &serde_json::Map<String, Value>) {
        for (name, target) in &step.output {
            let value = outputs.get(name).cloned().unwrap_or(Value::Null);
            vars::set(&mut self.vars, target, value);
        }
        vars::set(&mut self.vars, &format!("custom.{}_ok", step.id), json!(success));
    }

    /// Moves on from a non-voice step by its outcome. False when the conversation cannot go on.
    fn apply_outcome(&mut self, step: &Step, outcome: Outcome) -> bool {
        let chosen = step
            .conditions
            .iter()
            .find(|c| c.outcome == Some(outcome))
            .or_else(|| step.conditions.iter().find(|c| c.otherwise))
            .cloned();
        match chosen {
            Some(c) => self.take(c),
            None => {
                self.end(EndReason::Failed(format!(
                    "step `{}` has no condition for {outcome:?}",
                    step.id
                )));
                false
            }
        }
    }

    /// Applies a condition's action. True when the conversation continues at a (new) current step.
    fn take(&mut self, c: Condition) -> bool {
        if let Some(say) = &c.say {
            let line = vars::render(say, &self.vars);
            self.say(line);
        }
        if c.end_call {
            self.end(EndReason::AssistantHangup);
            return false;
        }
        if let Some(next) = &c.next {
            let frame = self.stack.last_mut().expect("a frame while running");
            let flow = self.script.flow(&frame.flow).expect("validated flow");
            match flow.steps.iter().position(|s| &s.id == next) {
                Some(i) => {
                    frame.step = i;
                    return true;
                }
                None => {
                    self.end(EndReason::Failed(format!("step `{next}` not found")));
                    return false;
                }
            }
        }
        let outcome = c.end_flow.unwrap_or(Outcome::Fail);
        if self.stack.len() == 1 {
            self.end(EndReason::FlowEnded(outcome));
            return false;
        }
        // A sub-flow ended: back to the parent's flow step, which moves on by the outcome.
        self.stack.pop();
        let Some(parent) = self.current_step().cloned() else {
            self.end(EndReason::Failed("parent step not found".into()));
            return false;
        };
        self.apply_outcome(&parent, outcome)
    }

    /// The analysis of the finished conversation by `brain`; a failing brain yields a minimal
    /// analysis that says so rather than none.
    pub async fn analyse(&self, brain: &dyn Brain) -> Analysis {
        let end_reason = self.ended.as_ref().map_or("in progress", EndReason::as_str);
        let req = AnalyseRequest {
            script: &self.script,
            transcript: &self.transcript,
            path: &self.path,
            answers: &self.answers,
            choices: &self.choices,
            vars: &self.vars,
            end_reason,
            flow_succeeded: self.flow_outcome().map(|o| o == Outcome::Success),
            now: self.now.with_timezone(&self.context.callee_timezone),
        };
        match brain.analyse(req).await {
            Ok(a) => a,
            Err(e) => Analysis {
                brain: brain.name().into(),
                summary: format!("Analysis failed: {e}"),
                objectives: Vec::new(),
                structured_data: super::analysis::typed_data(&self.script, &Default::default()),
                success_evaluation: super::analysis::SuccessEvaluation::Unsuccessful,
                rating: 1,
            },
        }
    }

    /// The outcome the main flow ended with, if it ended by `end_flow`.
    pub fn flow_outcome(&self) -> Option<Outcome> {
        match self.ended {
            Some(EndReason::FlowEnded(o)) => Some(o),
            _ => None,
        }
    }
}
