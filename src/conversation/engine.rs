//! The conversation engine: a deterministic state machine over a Script's flows, with a flow stack.
//!
//! enter step → speak (variables filled in) → hear the callee → the brain says which condition
//! holds → move. Function, tool and flow steps run without waiting for the callee. Time comes from
//! an injected [`Clock`], so silence and duration limits are tested by moving time, not sleeping.

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::{
    analysis::Analysis,
    brain::{AnalyseRequest, Brain, BrainError, DecideRequest, Decision},
    context::CallContext,
    functions::{self, FunctionContext},
    script::{Condition, Outcome, Script, Step, StepType},
    tools::Tools,
    transcript::{Role, Turn},
    vars,
};
use crate::clock::Clock;

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
    /// The brain or a step failed; the conversation ended cleanly anyway.
    Failed(String),
}

impl EndReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            EndReason::FlowEnded(_) | EndReason::AssistantHangup => "ai hangup",
            EndReason::UserHangup => "user hangup",
            EndReason::MaxDuration => "max duration",
            EndReason::Silence => "silence timeout",
            EndReason::Failed(_) => "failed",
        }
    }
}

struct Frame {
    flow: String,
    step: usize,
}

/// Unclear answers in a row after which the assistant stops asking and ends the call politely.
const MAX_UNCLEAR: u32 = 3;

/// Most automatic moves (function, tool, flow steps) in a row before the engine calls it a loop.
const MAX_AUTOMATIC_MOVES: usize = 100;

pub struct Conversation {
    script: Arc<Script>,
    brain: Arc<dyn Brain>,
    tools: Arc<Tools>,
    clock: Arc<dyn Clock>,
    vars: Value,
    stack: Vec<Frame>,
    transcript: Vec<Turn>,
    path: Vec<String>,
    answers: HashMap<String, String>,
    started: DateTime<Utc>,
    last_activity: DateTime<Utc>,
    prompted: bool,
    /// Unclear answers in a row on the current step.
    unclear: u32,
    ended: Option<EndReason>,
    context: CallContext,
}

impl Conversation {
    /// Starts the script's main flow and runs it to its first question (or its end). `vars` holds
    /// the `contact`, `call` and `custom` namespaces; the script's `custom` defaults fill the gaps.
    /// `context` says where the call happens (region, time zones).
    pub async fn start(
        script: Arc<Script>,
        brain: Arc<dyn Brain>,
        tools: Arc<Tools>,
        clock: Arc<dyn Clock>,
        mut vars: Value,
        context: CallContext,
    ) -> Self {
        for (k, v) in &script.custom {
            if vars::lookup(&vars, &format!("custom.{k}")).is_none() {
                vars::set(&mut vars, &format!("custom.{k}"), v.clone());
            }
        }
        let now = clock.now();
        let mut c = Conversation {
            stack: vec![Frame {
                flow: script.main_flow_id.clone(),
                step: 0,
            }],
            script,
            brain,
            tools,
            clock,
            vars,
            transcript: Vec::new(),
            path: Vec::new(),
            answers: HashMap::new(),
            started: now,
            last_activity: now,
            prompted: false,
            unclear: 0,
            ended: None,
            context,
        };
        c.enter().await;
        c
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

    /// The step the conversation waits on.
    pub fn current_step(&self) -> Option<&Step> {
        let frame = self.stack.last()?;
        self.script.flow(&frame.flow)?.steps.get(frame.step)
    }

    /// The date where the callee is.
    fn today(&self) -> chrono::NaiveDate {
        self.clock
            .now()
            .with_timezone(&self.context.callee_timezone)
            .date_naive()
    }

    fn elapsed_ms(&self) -> i64 {
        (self.clock.now() - self.started).num_milliseconds()
    }

    fn say(&mut self, text: String) {
        if text.trim().is_empty() {
            return;
        }
        let step = self.current_step().map(|s| s.id.clone());
        self.transcript.push(Turn {
            role: Role::Assistant,
            text,
            start_ms: self.elapsed_ms(),
            step,
            interrupted: false,
        });
        self.last_activity = self.clock.now();
    }

    fn end(&mut self, reason: EndReason) {
        if self.ended.is_none() {
            tracing::debug!(reason = reason.as_str(), "conversation ended");
            self.ended = Some(reason);
        }
    }

    /// The callee said something.
    pub async fn hear(&mut self, text: &str) {
        if self.is_over() {
            return;
        }
        let text = text.trim();
        if text.is_empty() {
            return self.tick();
        }
        let step = self.current_step().map(|s| s.id.clone());
        if let Some(id) = &step {
            self.answers.insert(id.clone(), text.to_owned());
        }
        self.transcript.push(Turn {
            role: Role::User,
            text: text.to_owned(),
            start_ms: self.elapsed_ms(),
            step,
            interrupted: false,
        });
        self.last_activity = self.clock.now();
        self.prompted = false;
        if self.over_time() {
            return;
        }
        let Some(step) = self.current_step().cloned() else {
            return self.end(EndReason::Failed("no current step".into()));
        };
        let decision = self
            .brain
            .decide(DecideRequest {
                script: &self.script,
                step: &step,
                utterance: text,
                transcript: &self.transcript,
                only_if_sure: false,
            })
            .await;
        if !matches!(decision, Ok(Decision::Unclear)) {
            self.unclear = 0;
        }
        match decision {
            Ok(Decision::Condition(i)) => match step.conditions.get(i) {
                Some(c) => self.take(c.clone()).await,
                None => self.end(EndReason::Failed(format!(
                    "brain chose condition {i}, which does not exist"
                ))),
            },
            Ok(Decision::Answer(answer)) => self.say(answer),
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
                let again = self.speakable(&step).await;
                match again {
                    Ok(line) => self.say(format!("Sorry, I didn't quite catch that. {line}")),
                    Err(e) => self.fail(e),
                }
            }
            Err(e) => self.fail(e),
        }
    }

    /// The callee talked over the assistant. A voice step's last line is marked interrupted (the
    /// brain reasons on the transcript, as it would on a call); tool and function steps cannot be
    /// interrupted, so their lines stand. Then the words are heard as usual.
    pub async fn interrupt(&mut self, text: &str) {
        if self.current_step().is_some_and(|s| s.step_type == StepType::Voice) {
            if let Some(last) = self.transcript.iter_mut().rev().find(|t| t.role == Role::Assistant) {
                last.interrupted = true;
            }
        }
        self.hear(text).await;
    }

    /// The callee hung up.
    pub fn hang_up(&mut self) {
        self.end(EndReason::UserHangup);
    }

    /// Time passed with nothing said: prompts, then ends the call, per the step's silence
    /// tolerance; ends it at the script's maximum duration.
    pub fn tick(&mut self) {
        if self.is_over() || self.over_time() {
            return;
        }
        let Some((prompt, shutdown)) = self.current_step().and_then(|s| s.silence_tolerance.timers()) else {
            return;
        };
        let quiet = (self.clock.now() - self.last_activity).num_seconds();
        if self.prompted && quiet >= (shutdown - prompt) as i64 {
            self.say(self.script.settings.silence_goodbye.clone());
            self.end(EndReason::Silence);
        } else if !self.prompted && quiet >= prompt as i64 {
            self.say(self.script.settings.silence_prompt.clone());
            self.prompted = true;
        }
    }

    fn over_time(&mut self) -> bool {
        let limit = self.script.settings.max_duration_seconds as i64;
        if (self.clock.now() - self.started).num_seconds() >= limit {
            self.say("I'm afraid we're out of time, so I'll let you go. Goodbye.".into());
            self.end(EndReason::MaxDuration);
            true
        } else {
            false
        }
    }

    fn fail(&mut self, e: BrainError) {
        tracing::warn!(error = %e, "conversation failed");
        self.say("Sorry, I'm having technical trouble, so I'll have to end the call. Goodbye.".into());
        self.end(EndReason::Failed(e.to_string()));
    }

    /// What a voice step says: verbatim scripts as they are, instructions worded by the brain.
    async fn speakable(&self, step: &Step) -> Result<String, BrainError> {
        let script = step.script.as_deref().unwrap_or_default();
        let rendered = vars::render(script, &self.vars);
        match rendered.strip_prefix("Say:").or_else(|| rendered.strip_prefix("say:")) {
            Some(verbatim) => Ok(verbatim.trim().to_owned()),
            None => self.brain.compose(&self.script, &rendered, &self.transcript).await,
        }
    }

    /// Runs from the current step until a voice step has spoken (or the conversation ends).
    async fn enter(&mut self) {
        for _ in 0..MAX_AUTOMATIC_MOVES {
            if self.is_over() {
                return;
            }
            let Some(step) = self.current_step().cloned() else {
                return self.end(EndReason::Failed("step not found".into()));
            };
            self.path.push(step.id.clone());
            match step.step_type {
                StepType::Voice => {
                    match self.speakable(&step).await {
                        Ok(line) => self.say(line),
                        Err(e) => self.fail(e),
                    }
                    return;
                }
                StepType::Flow => {
                    let flow = step.flow.clone().unwrap_or_default();
                    self.stack.push(Frame { flow, step: 0 });
                }
                StepType::Function | StepType::Tool => {
                    if let Some(line) = step.script.as_deref().filter(|s| !s.trim().is_empty()) {
                        let line = vars::render(line.trim_start_matches("Say:").trim(), &self.vars);
                        self.say(line);
                    }
                    let success = self.run_action(&step).await;
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

    /// Runs a function or tool step; outputs go to the variables its `output` names.
    async fn run_action(&mut self, step: &Step) -> bool {
        let inputs = step
            .input
            .iter()
            .map(|(k, v)| (k.clone(), vars::render(v, &self.vars)))
            .collect();
        let (success, outputs) = match step.step_type {
            StepType::Function => {
                let Some(f) = step.function.as_deref().and_then(functions::lookup) else {
                    return false;
                };
                let ctx = FunctionContext {
                    today: self.today(),
                    region: self.context.region,
                };
                let r = f(&inputs, &ctx);
                (r.success, r.outputs)
            }
            _ => match &step.tool {
                Some(tool) => {
                    let r = self.tools.run(tool, &inputs, &self.vars).await;
                    (r.success, r.outputs)
                }
                None => (false, Default::default()),
            },
        };
        for (name, target) in &step.output {
            let value = outputs.get(name).cloned().unwrap_or(Value::Null);
            vars::set(&mut self.vars, target, value);
        }
        vars::set(&mut self.vars, &format!("custom.{}_ok", step.id), json!(success));
        success
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
            Some(c) => self.take_sync(c),
            None => {
                self.end(EndReason::Failed(format!(
                    "step `{}` has no condition for {outcome:?}",
                    step.id
                )));
                false
            }
        }
    }

    /// Takes a condition from a voice step, then runs on to the next question.
    async fn take(&mut self, c: Condition) {
        if self.take_sync(c) {
            self.enter().await;
        }
    }

    /// Applies a condition's action. True when the conversation continues at a (new) current step.
    fn take_sync(&mut self, c: Condition) -> bool {
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

    /// The analysis of the finished conversation by the brain; a failing brain yields a minimal
    /// analysis that says so rather than none.
    pub async fn analyse(&self) -> Analysis {
        let end_reason = self.ended.as_ref().map_or("in progress", EndReason::as_str);
        let req = AnalyseRequest {
            script: &self.script,
            transcript: &self.transcript,
            path: &self.path,
            answers: &self.answers,
            end_reason,
            flow_succeeded: self.flow_outcome().map(|o| o == Outcome::Success),
            today: self.today(),
        };
        match self.brain.analyse(req).await {
            Ok(a) => a,
            Err(e) => Analysis {
                brain: self.brain.name().into(),
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
