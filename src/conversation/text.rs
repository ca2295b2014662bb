//! A conversation in text, for `voxd chat`, simulations and tests: it drives the [`Engine`]'s
//! event API with typed (or simulated) callee turns, runs each job to its end before going on, and
//! treats a line as played when the next thing happens (text has no playback time), at the time
//! it was said. Calls go through a session over a leg instead (`crate::session`).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{
    analysis::Analysis,
    brain::Brain,
    context::CallContext,
    engine::{Action, EndReason, Engine, Event, UtteranceId},
    script::{Script, Step},
    tools::Tools,
    transcript::Turn,
};
use crate::clock::Clock;

pub struct Conversation {
    engine: Engine,
    brain: Arc<dyn Brain>,
    tools: Arc<Tools>,
    clock: Arc<dyn Clock>,
    /// Lines said and not yet reported played, with when they were said and whether the callee may
    /// talk over them.
    unplayed: Vec<(UtteranceId, DateTime<Utc>, bool)>,
}

impl Conversation {
    /// Starts the script's main flow and runs it to its first question (or its end).
    pub async fn start(
        script: Arc<Script>,
        brain: Arc<dyn Brain>,
        tools: Arc<Tools>,
        clock: Arc<dyn Clock>,
        vars: Value,
        context: CallContext,
    ) -> Self {
        let (engine, actions) = Engine::start(script, vars, context, clock.now());
        let mut c = Conversation {
            engine,
            brain,
            tools,
            clock,
            unplayed: Vec::new(),
        };
        c.carry_out(actions).await;
        c
    }

    /// Carries out actions, running jobs to their end and feeding their results back.
    async fn carry_out(&mut self, actions: Vec<Action>) {
        let mut queue: std::collections::VecDeque<Action> = actions.into();
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Say { id, interruptible, .. } => self.unplayed.push((id, self.clock.now(), interruptible)),
                Action::StopSpeaking => self.unplayed.clear(),
                Action::HangUp => {}
                // No line to hand over in a text conversation: the transfer is taken as done.
                Action::Transfer { job, .. } => {
                    let result = crate::conversation::engine::JobResult::Transferred(Ok(()));
                    queue.extend(self.engine.handle(self.clock.now(), Event::Done { job, result }));
                }
                Action::Run(job) => {
                    let id = job.id;
                    let mut pieces = Vec::new();
                    let done = job.run(&*self.brain, &self.tools, |p| pieces.push(p)).await;
                    for text in pieces {
                        queue.extend(self.engine.handle(self.clock.now(), Event::Piece { job: id, text }));
                    }
                    queue.extend(self.engine.handle(self.clock.now(), done));
                }
            }
        }
    }

    /// Reports every line said as played, at the time it was said.
    fn played(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        for (id, at, _) in std::mem::take(&mut self.unplayed) {
            actions.extend(self.engine.handle(at, Event::Played(id)));
        }
        actions
    }

    async fn feed(&mut self, event: Event) {
        let mut actions = self.played();
        actions.extend(self.engine.handle(self.clock.now(), event));
        self.carry_out(actions).await;
    }

    /// The callee said something (nothing: time passes).
    pub async fn hear(&mut self, text: &str) {
        if text.trim().is_empty() {
            return self.tick().await;
        }
        self.feed(Event::Heard(text.to_owned())).await;
    }

    /// The callee talked over the assistant's last line: a voice step's line is cut (marked
    /// interrupted); tool and function steps' lines play on. Then the words are heard.
    pub async fn interrupt(&mut self, text: &str) {
        let mut actions = Vec::new();
        if let Some(&(id, _, _)) = self.unplayed.iter().rev().find(|(_, _, i)| *i) {
            actions.extend(self.engine.handle(
                self.clock.now(),
                Event::BargeIn {
                    utterance: id,
                    played_ms: 0,
                },
            ));
        }
        self.carry_out(actions).await;
        self.hear(text).await;
    }

    /// Time passed: the engine's timer fires if its deadline is reached.
    pub async fn tick(&mut self) {
        let mut actions = self.played();
        if self.engine.next_deadline().is_some_and(|d| d <= self.clock.now()) {
            actions.extend(self.engine.handle(self.clock.now(), Event::Timer));
        }
        self.carry_out(actions).await;
    }

    /// The callee hung up.
    pub fn hang_up(&mut self) {
        self.unplayed.clear();
        let _ = self.engine.handle(self.clock.now(), Event::HangUp);
    }

    pub fn is_over(&self) -> bool {
        self.engine.is_over()
    }

    pub fn end_reason(&self) -> Option<&EndReason> {
        self.engine.end_reason()
    }

    pub fn transcript(&self) -> &[Turn] {
        self.engine.transcript()
    }

    pub fn path(&self) -> &[String] {
        self.engine.path()
    }

    /// How the main flow ended, when it ended by `end_flow`.
    pub fn flow_outcome(&self) -> Option<super::script::Outcome> {
        self.engine.flow_outcome()
    }

    pub fn variables(&self) -> &Value {
        self.engine.variables()
    }

    pub fn current_step(&self) -> Option<&Step> {
        self.engine.current_step()
    }

    pub async fn analyse(&self) -> Analysis {
        self.engine.analyse(&*self.brain).await
    }
}
