//! The `hybrid` brain: `rules` answers where it is sure (a clear yes or no matching a condition,
//! call me later, do not call me, who is this, a question the knowledge base answers) and only the
//! rest goes to the language model. Small local models are slow and miss exactly those intents.

use async_trait::async_trait;

use super::{openai::OpenAiBrain, rules, AnalyseRequest, Brain, BrainError, DecideRequest, Decision};
use crate::conversation::{
    analysis::Analysis,
    script::{Script, ThinkingEffort},
    transcript::Turn,
};

pub struct HybridBrain {
    model: OpenAiBrain,
}

impl HybridBrain {
    pub fn new(model: OpenAiBrain) -> Self {
        HybridBrain { model }
    }
}

#[async_trait]
impl Brain for HybridBrain {
    fn name(&self) -> &'static str {
        "hybrid"
    }

    /// The step's thinking effort chooses who reads the callee: `fast`, rules alone (their best
    /// reading, no model round-trip); `normal`, rules where sure and the model for the rest;
    /// `deep`, the model every turn, except that a stop request rules are sure of (do not call
    /// me, goodbye) is never argued with.
    async fn decide(&self, req: DecideRequest<'_>) -> Result<Decision, BrainError> {
        let rules_only = |only_if_sure| rules::decide(&DecideRequest { only_if_sure, ..req });
        let model = || {
            self.model.decide(DecideRequest {
                only_if_sure: false,
                ..req
            })
        };
        match req.step.thinking_effort {
            ThinkingEffort::Fast => Ok(rules_only(false)),
            ThinkingEffort::Normal => match rules_only(true) {
                Decision::Unclear => model().await,
                decided => Ok(decided),
            },
            ThinkingEffort::Deep => match rules_only(true) {
                stop @ Decision::EndCall(_) => Ok(stop),
                _ => model().await,
            },
        }
    }

    async fn compose(&self, script: &Script, instruction: &str, transcript: &[Turn]) -> Result<String, BrainError> {
        self.model.compose(script, instruction, transcript).await
    }

    async fn compose_stream(
        &self,
        script: &Script,
        instruction: &str,
        transcript: &[Turn],
        piece: &mut (dyn FnMut(String) + Send),
    ) -> Result<String, BrainError> {
        self.model.compose_stream(script, instruction, transcript, piece).await
    }

    async fn analyse(&self, req: AnalyseRequest<'_>) -> Result<Analysis, BrainError> {
        match self.model.analyse(AnalyseRequest { ..req }).await {
            Ok(mut a) => {
                a.brain = "hybrid".into();
                Ok(a)
            }
            // The model is gone: the rules analysis is better than none, and says it is rules'.
            Err(e) => {
                tracing::warn!(error = %e, "model analysis failed; using rules");
                Ok(rules::analyse(&req, "hybrid (rules fallback)"))
            }
        }
    }
}
