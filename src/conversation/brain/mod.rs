//! Brains decide what the callee meant, word the assistant's turns, answer from the knowledge base
//! and analyse finished conversations. `rules` is deterministic and offline (the default);
//! `openai` speaks any OpenAI-compatible chat-completions endpoint; `hybrid` lets `rules` answer
//! where it is sure and asks `openai` for the rest.

pub mod hybrid;
pub mod openai;
pub mod rules;

use async_trait::async_trait;
use serde::Serialize;

use super::{
    analysis::Analysis,
    script::{Script, Step},
    transcript::Turn,
};

/// What the callee's words mean at a voice step.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// The condition at this index (into the step's conditions) holds.
    Condition(usize),
    /// An off-script question: answer it and stay on the step.
    Answer(String),
    /// The callee wants the call over (do not call me, goodbye): say this and hang up.
    EndCall(String),
    /// Nothing matched: ask again.
    Unclear,
}

/// Everything a brain may use to decide.
#[derive(Clone, Copy)]
pub struct DecideRequest<'a> {
    pub script: &'a Script,
    pub step: &'a Step,
    pub utterance: &'a str,
    pub transcript: &'a [Turn],
    /// Whether the brain should be sure before choosing (used by `hybrid`).
    pub only_if_sure: bool,
}

/// Everything a brain may use to analyse a finished conversation.
#[derive(Clone, Copy)]
pub struct AnalyseRequest<'a> {
    pub script: &'a Script,
    pub transcript: &'a [Turn],
    /// Step ids in the order they were entered.
    pub path: &'a [String],
    /// The callee's reply at each voice step (last one wins).
    pub answers: &'a std::collections::HashMap<String, String>,
    /// The condition taken at each answered voice step, in order: (step id, its `when` wording,
    /// or `otherwise`).
    pub choices: &'a [(String, String)],
    /// The call's variables (`contact.*`, `custom.*`, …).
    pub vars: &'a serde_json::Value,
    pub end_reason: &'a str,
    /// Whether the main flow ended with `end_flow: success` (None: it ended otherwise).
    pub flow_succeeded: Option<bool>,
    /// The call's moment in the callee's zone: what "tomorrow" and "3pm" are read against.
    pub now: chrono::DateTime<chrono_tz::Tz>,
}

#[derive(Debug, thiserror::Error, Serialize)]
pub enum BrainError {
    #[error("brain unavailable: {0}")]
    Unavailable(String),
    #[error("brain replied with something unusable: {0}")]
    Malformed(String),
}

#[async_trait]
pub trait Brain: Send + Sync {
    /// `rules`, `openai` or `hybrid`: results say which brain produced them.
    fn name(&self) -> &'static str;

    async fn decide(&self, req: DecideRequest<'_>) -> Result<Decision, BrainError>;

    /// Words an instructional step script ("Ask whether …") as something to say. Verbatim
    /// scripts ("Say: …") never reach the brain.
    async fn compose(&self, script: &Script, instruction: &str, transcript: &[Turn]) -> Result<String, BrainError>;

    /// [`Brain::compose`], handing each sentence to `piece` as soon as it is known, so speech can
    /// start before the reply is complete; returns the whole text. By default the reply is
    /// composed whole, then given sentence by sentence.
    async fn compose_stream(
        &self,
        script: &Script,
        instruction: &str,
        transcript: &[Turn],
        piece: &mut (dyn FnMut(String) + Send),
    ) -> Result<String, BrainError> {
        let text = self.compose(script, instruction, transcript).await?;
        for s in sentences(&text) {
            piece(s);
        }
        Ok(text)
    }

    async fn analyse(&self, req: AnalyseRequest<'_>) -> Result<Analysis, BrainError>;
}

/// Splits text after each `.`, `?` or `!` that ends a sentence (followed by a space or the end).
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        let ends = matches!(b, b'.' | b'?' | b'!') && bytes.get(i + 1).is_none_or(|n| n.is_ascii_whitespace());
        if ends {
            let s = text[start..=i].trim();
            if !s.is_empty() {
                out.push(s.to_owned());
            }
            start = i + 1;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest.to_owned());
    }
    out
}

/// How much of a streamed text is complete sentences: the byte offset after the last one.
pub fn complete_sentences_end(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut end = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(b, b'.' | b'?' | b'!') && bytes.get(i + 1).is_some_and(|n| n.is_ascii_whitespace()) {
            end = i + 1;
        }
    }
    end
}

/// A brain by name, with the OpenAI-compatible settings from the environment when it needs them;
/// its requests are timed into the metrics.
pub fn from_name(name: &str) -> Result<std::sync::Arc<dyn Brain>, String> {
    let brain: std::sync::Arc<dyn Brain> = match name {
        "rules" => std::sync::Arc::new(rules::RulesBrain),
        "openai" => std::sync::Arc::new(openai::OpenAiBrain::from_env()?),
        "hybrid" => std::sync::Arc::new(hybrid::HybridBrain::new(openai::OpenAiBrain::from_env()?)),
        other => return Err(format!("unknown brain `{other}` (rules, openai, hybrid)")),
    };
    Ok(std::sync::Arc::new(Timed(brain)))
}

/// A brain whose requests are timed into `voxd_brain_seconds` (by brain and operation).
pub struct Timed(pub std::sync::Arc<dyn Brain>);

impl Timed {
    async fn time<T>(&self, operation: &str, f: impl std::future::Future<Output = T>) -> T {
        let m = &crate::metrics::METRICS;
        crate::metrics::timed(&m.brain, &[self.0.name(), operation], f).await
    }
}

#[async_trait]
impl Brain for Timed {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    async fn decide(&self, req: DecideRequest<'_>) -> Result<Decision, BrainError> {
        self.time("decide", self.0.decide(req)).await
    }

    async fn compose(&self, script: &Script, instruction: &str, transcript: &[Turn]) -> Result<String, BrainError> {
        self.time("compose", self.0.compose(script, instruction, transcript))
            .await
    }

    async fn compose_stream(
        &self,
        script: &Script,
        instruction: &str,
        transcript: &[Turn],
        piece: &mut (dyn FnMut(String) + Send),
    ) -> Result<String, BrainError> {
        self.time("compose", self.0.compose_stream(script, instruction, transcript, piece))
            .await
    }

    async fn analyse(&self, req: AnalyseRequest<'_>) -> Result<Analysis, BrainError> {
        self.time("analyse", self.0.analyse(req)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_where_they_end() {
        assert_eq!(
            sentences("Hi John. Is now a good time? Great!"),
            ["Hi John.", "Is now a good time?", "Great!"]
        );
        assert_eq!(sentences("It costs $1.2m. Ok"), ["It costs $1.2m.", "Ok"]);
        assert_eq!(sentences(""), Vec::<String>::new());
        assert_eq!(complete_sentences_end("One. Two"), 4);
        assert_eq!(complete_sentences_end("One. Two."), 4);
    }
}
