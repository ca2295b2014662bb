//! Simulated callees. A persona answers the assistant by rule (keywords in what the assistant just
//! said) or from a list of lines, and can stay silent, hang up, or interrupt. `simulate` runs a whole
//! conversation against one, moving an injected clock, with a bounded number of turns.

use std::{collections::VecDeque, sync::Arc};

use chrono::Duration;
use serde::Deserialize;

use super::{text::Conversation, transcript::Role};
use crate::clock::ManualClock;

/// A reply chosen when the assistant's last line contains any of `when` (case-insensitive).
#[derive(Debug, Clone, Deserialize)]
pub struct Rule {
    pub when: Vec<String>,
    pub say: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Persona {
    pub name: String,
    /// Checked first, in order.
    pub rules: Vec<Rule>,
    /// Said in order when no rule matches.
    pub lines: VecDeque<String>,
    /// Said when no rule matches and the lines are used up; none = silence.
    pub fallback: Option<String>,
    /// Hangs up instead of answering the n-th assistant turn (1-based).
    pub hang_up_at: Option<usize>,
    /// Never says anything.
    pub silent: bool,
    /// Talks over the assistant instead of waiting for it to finish.
    pub interrupts: bool,
    /// Assistant turns heard so far.
    #[serde(skip)]
    pub heard: usize,
}

/// What the persona does after the assistant speaks.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Say(String),
    Silence,
    HangUp,
}

impl Persona {
    pub fn respond(&mut self, assistant_said: &str) -> Action {
        self.heard += 1;
        if self.hang_up_at.is_some_and(|n| self.heard >= n) {
            return Action::HangUp;
        }
        if self.silent {
            return Action::Silence;
        }
        let said = assistant_said.to_lowercase();
        if let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.when.iter().any(|w| said.contains(&w.to_lowercase())))
        {
            return Action::Say(rule.say.clone());
        }
        if let Some(line) = self.lines.pop_front() {
            return Action::Say(line);
        }
        self.fallback.clone().map_or(Action::Silence, Action::Say)
    }

    /// Says yes to everything and gives the details asked for.
    pub fn cooperative() -> Self {
        Persona {
            name: "cooperative".into(),
            fallback: Some("Yes, sure.".into()),
            ..Default::default()
        }
    }

    pub fn unsure() -> Self {
        Persona {
            name: "unsure".into(),
            fallback: Some("Hmm, I'm not sure really.".into()),
            ..Default::default()
        }
    }

    pub fn silent() -> Self {
        Persona {
            name: "silent".into(),
            silent: true,
            ..Default::default()
        }
    }

    pub fn hangs_up_early() -> Self {
        Persona {
            name: "hangs up early".into(),
            hang_up_at: Some(1),
            ..Default::default()
        }
    }

    /// Asks `question` first, then cooperates.
    pub fn off_topic(question: &str) -> Self {
        Persona {
            name: "off-topic question".into(),
            lines: VecDeque::from([question.to_owned()]),
            fallback: Some("Yes, sure.".into()),
            ..Default::default()
        }
    }
}

/// Seconds a simulated callee takes to answer (here and on the `sim` carrier's leg).
pub const ANSWER_SECS: i64 = 3;
/// Seconds into the assistant's line at which an interrupting callee talks over it.
pub const INTERRUPT_SECS: i64 = 1;

/// Runs the conversation against the persona until it ends or `max_turns` callee turns have passed.
pub async fn simulate(
    conversation: &mut Conversation,
    persona: &mut Persona,
    clock: &Arc<ManualClock>,
    max_turns: usize,
) {
    let mut turns = 0;
    let mut seen_assistant = 0;
    while !conversation.is_over() && turns < max_turns {
        let assistant_turns: Vec<String> = conversation
            .transcript()
            .iter()
            .filter(|t| t.role == Role::Assistant)
            .map(|t| t.text.clone())
            .collect();
        let last = assistant_turns.last().cloned().unwrap_or_default();
        let fresh = assistant_turns.len() > seen_assistant;
        seen_assistant = assistant_turns.len();
        let action = if fresh { persona.respond(&last) } else { Action::Silence };
        match action {
            Action::Say(text) if persona.interrupts => {
                clock.advance(Duration::seconds(INTERRUPT_SECS));
                conversation.interrupt(&text).await;
                turns += 1;
            }
            Action::Say(text) => {
                clock.advance(Duration::seconds(ANSWER_SECS));
                conversation.hear(&text).await;
                turns += 1;
            }
            Action::HangUp => conversation.hang_up(),
            Action::Silence => {
                // Wait a second at a time until the assistant speaks again or gives up.
                for _ in 0..600 {
                    clock.advance(Duration::seconds(1));
                    conversation.tick().await;
                    let spoke = conversation
                        .transcript()
                        .iter()
                        .filter(|t| t.role == Role::Assistant)
                        .count()
                        > seen_assistant;
                    if conversation.is_over() || spoke {
                        break;
                    }
                }
                turns += 1;
            }
        }
    }
    if !conversation.is_over() {
        conversation.hang_up();
    }
}
